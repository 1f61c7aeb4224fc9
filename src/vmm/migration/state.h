/*
 * state.h: a machine's migration state as its devices see it (QEMU's
 * migration/misc.h), below the migration stream so that a device model
 * can cancel a migration without including it.
 */
#pragma once

#include <stdbool.h>

#include "machine_state.h"

/* migration_is_setup_or_active(): a migration of @m is under way.  Any
 * thread. */
bool migration__active(vmm_machine *m);

/* vfio_set_migration_error() -> migrate_set_error(): cancel the migration
 * of @m under way, if any, for this reason; the first reason wins.  Any
 * thread: the migration sees it between rounds, before stop-and-copy and
 * before END. */
void migration__set_error(vmm_machine *m, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* migrate_init() and migrate_fd_cleanup(): the machine is migrating from
 * now on, and no longer (a cancel still pending is dropped). */
void migration_state__begin(vmm_machine *m);
void migration_state__end(vmm_machine *m);
/* migration_has_failed(): FALSE with G_IO_ERROR_CANCELLED and the reason
 * when a device cancelled the migration. */
gboolean migration_state__check_cancel(vmm_machine *m, GError **error);

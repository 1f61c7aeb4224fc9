/*
 * state.c: whether a machine is migrating, and the reason that cancels
 * it (QEMU's migration/misc.h: migration_is_setup_or_active(),
 * migrate_set_error()).  Devices below the migration code read and set
 * it; migration/outgoing.c and incoming.c begin and end it.
 */
#include "migration/state.h"

#include <gio/gio.h>
#include <stdarg.h>

/* Guards every machine's migration_active and migration_cancel: the
 * guest maps through its vIOMMU on threads of its own. */
static GMutex mig_machine_lock;

bool
migration__active(vmm_machine *m)
{
    bool active;

    g_mutex_lock(&mig_machine_lock);
    active = m->migration_active;
    g_mutex_unlock(&mig_machine_lock);
    return active;
}

void
migration__set_error(vmm_machine *m, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_mutex_lock(&mig_machine_lock);
    if (m->migration_active && !m->migration_cancel)
        m->migration_cancel = g_steal_pointer(&msg);
    g_mutex_unlock(&mig_machine_lock);
    g_free(msg);
}

/* migrate_init(): the machine is migrating from now on. */
void
migration_state__begin(vmm_machine *m)
{
    g_mutex_lock(&mig_machine_lock);
    m->migration_active = true;
    g_clear_pointer(&m->migration_cancel, g_free);
    g_mutex_unlock(&mig_machine_lock);
}

/* migrate_fd_cleanup(): no longer migrating.  A cancel that came after
 * the last check (END was sent) has nothing left to stop. */
void
migration_state__end(vmm_machine *m)
{
    g_mutex_lock(&mig_machine_lock);
    m->migration_active = false;
    g_clear_pointer(&m->migration_cancel, g_free);
    g_mutex_unlock(&mig_machine_lock);
}

gboolean
migration_state__check_cancel(vmm_machine *m, GError **error)
{
    gboolean ok = TRUE;

    g_mutex_lock(&mig_machine_lock);
    if (m->migration_cancel) {
        g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, m->migration_cancel);
        ok = FALSE;
    }
    g_mutex_unlock(&mig_machine_lock);
    return ok;
}

/*
 * migration/devices.h: the device sections of a migration stream, from
 * the machine's savevm entries (migration/savevm.h), after QEMU's
 * qemu_savevm_state_setup/_iterate/_complete and qemu_loadvm_section_*.
 * migration/outgoing.c and incoming.c move the payloads; this file makes and consumes them.
 *
 * A DEVICE payload is {u32 id length, u32 flags} then the id (QEMU's
 * idstr, not NUL-terminated) and the device's bytes.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "migration/savevm.h"

#define MIG_DEVICE_COMPLETE 1u           /* flags: stop-and-copy data */
#define MIG_DEVICE_MAX_LEN (256u << 20)  /* a DEVICE record, at most */

/* save_setup on every entry; on failure the ones set up are cleaned up. */
gboolean mig_devices__save_setup(vmm_machine *m, GError **error);
/* Precopy data (@complete false) or the rest with the vCPUs stopped:
 * one payload (GByteArray *) per device that had bytes, into @out. */
gboolean mig_devices__save(vmm_machine *m, bool complete, GPtrArray *out,
                           GError **error);
gboolean mig_devices__sync_dirty(vmm_machine *m, savevm_dirty_fn mark, void *opaque,
                                 GError **error);
void mig_devices__save_cleanup(vmm_machine *m, bool failed);

gboolean mig_devices__load_setup(vmm_machine *m, GError **error);
gboolean mig_devices__load(vmm_machine *m, const guint8 *payload, gsize len,
                           GError **error);
gboolean mig_devices__load_complete(vmm_machine *m, GError **error);
void mig_devices__load_cleanup(vmm_machine *m, bool failed);

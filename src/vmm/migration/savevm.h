/*
 * migration/savevm.h: device state in a migration, after QEMU's SaveVMHandlers
 * (migration/savevm.c register_savevm_live()).  A device model registers
 * its handlers on the machine; migration/outgoing.c and incoming.c call them on the source and
 * the destination and carries their bytes in DEVICE records, named by
 * the entry's id (QEMU's idstr).  Every handler is optional.
 *
 * Source, in order: save_setup when the migration starts (VFIO: RUNNING
 * -> PRE_COPY, DMA logging start); each round save_iterate (precopy
 * data) and sync_dirty (the guest pages the device wrote since the last
 * call: VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT); with the vCPUs stopped,
 * one last sync_dirty then save_complete (VFIO: -> STOP_COPY, read the
 * rest, -> STOP); then save_cleanup, with @failed when the migration
 * failed or was cancelled (VFIO: back to RUNNING).
 *
 * Destination: load_setup (VFIO: -> RESUMING), load_state for each
 * DEVICE record, load_complete after END (VFIO: RESUMING -> STOP; the
 * device runs again when the guest starts), load_cleanup.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct vmm_machine vmm_machine;

/* Mark guest physical pages [gpa, gpa + size) dirty. */
typedef void (*savevm_dirty_fn)(void *opaque, guint64 gpa, guint64 size);

typedef struct savevm_ops {
    gboolean (*save_setup)(void *opaque, GError **error);
    /* Append the precopy data ready now to @out (may append nothing). */
    gboolean (*save_iterate)(void *opaque, GByteArray *out, GError **error);
    gboolean (*sync_dirty)(void *opaque, savevm_dirty_fn mark, void *mark_opaque,
                           GError **error);
    /* vCPUs stopped: append the rest of the state to @out. */
    gboolean (*save_complete)(void *opaque, GByteArray *out, GError **error);
    void (*save_cleanup)(void *opaque, bool failed);

    gboolean (*load_setup)(void *opaque, GError **error);
    gboolean (*load_state)(void *opaque, const guint8 *data, gsize len,
                           GError **error);
    gboolean (*load_complete)(void *opaque, GError **error);
    void (*load_cleanup)(void *opaque, bool failed);

    /* qemu_add_vm_change_state_handler(): the guest starts or stops
     * (VFIO: STOP <-> RUNNING after a migration). */
    void (*vm_running)(void *opaque, bool running);
} savevm_ops;

typedef struct savevm_entry {
    char *id;                            /* unique in the machine, e.g. "vfio:hostdev0" */
    const savevm_ops *ops;
    void *opaque;
} savevm_entry;

/* register_savevm_live() / unregister_savevm(): @m->savevm keeps them in
 * registration order, which is the order state is saved and loaded. */
void savevm__register(vmm_machine *m, const char *id, const savevm_ops *ops,
                      void *opaque);
void savevm__unregister(vmm_machine *m, void *opaque);
savevm_entry *savevm__find(vmm_machine *m, const char *id);
void savevm_entry__free(savevm_entry *e);
/* vm_state_notify(): every entry's vm_running, in order (reverse when
 * stopping, as QEMU notifies). */
void savevm__vm_running(vmm_machine *m, bool running);

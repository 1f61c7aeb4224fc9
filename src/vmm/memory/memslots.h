/*
 * memory/memslots.h: the accelerator's memory listener and memslot table, after
 * QEMU's accel/kvm/kvm-all.c KVMMemoryListener, with seed 003's atomic
 * updates: region_add/region_del only queue, and commit applies every
 * delete, then every add, inhibiting vCPU ioctls only when an add
 * overlaps a delete (a resize or a split), so a running vCPU never sees
 * the hole between them.
 *
 * The slot table is the same for every accelerator; the backend does the
 * KVM_SET_USER_MEMORY_REGION (accel/kvm.c) or its software twin (accel/soft_accel.c).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/accel_blocker.h"
#include "memory/memory.h"

#define MEMSLOT_LOG_DIRTY_PAGES 1u       /* KVM_MEM_LOG_DIRTY_PAGES */

typedef struct memslot {
    int slot;                            /* index in the table = KVM slot id */
    bool used;
    guint64 start_addr;
    guint64 memory_size;
    void *ram;
    guint32 flags;
    unsigned long *dirty_bmap;           /* while logging */
    memory_region *mr;                   /* the RAM region behind it */
    guint64 offset;                      /* of start_addr within @mr */
} memslot;

typedef struct memslot_backend {
    const char *name;
    /* KVM_SET_USER_MEMORY_REGION: size 0 deletes the slot. */
    int (*set_region)(void *opaque, const memslot *slot, GError **error);
    /* KVM_GET_DIRTY_LOG into slot->dirty_bmap (pages of slot). */
    int (*get_dirty_log)(void *opaque, memslot *slot, GError **error);
    void *opaque;
} memslot_backend;

typedef struct memslots_stats {
    guint64 commits;
    guint64 inhibited_commits;
    guint64 ioctls;
    guint64 ioctl_ns;                    /* time inside set_region */
    guint64 commit_ns;                   /* time inside commit */
    guint64 errors;
} memslots_stats;

typedef struct memslots {
    memory_listener listener;
    GArray *slots;                       /* memslot, grows on demand */
    GHashTable *by_start;                /* start_addr -> slot index + 1 */
    GArray *free_ids;                    /* guint, slot indexes to reuse */
    unsigned nr_slots_max;               /* KVM_CAP_NR_MEMSLOTS */
    guint64 max_slot_size;               /* split larger sections */
    bool atomic;                         /* seed 003; false: as before it */
    GArray *transaction_add;             /* memory_region_section */
    GArray *transaction_del;
    accel_blocker *blocker;
    memslot_backend backend;
    memslots_stats stats;
    GError *first_error;                 /* a listener cannot return one */
} memslots;

void memslots__init(memslots *ms, const memslot_backend *backend,
                    accel_blocker *blocker, unsigned nr_slots_max,
                    guint64 max_slot_size, bool atomic);
void memslots__destroy(memslots *ms);

/* Count of slots in use, and lookup of the slot holding @gpa. */
guint memslots__used(const memslots *ms);
const memslot *memslots__find(const memslots *ms, guint64 gpa);

/* Move what KVM logged for every slot of RAM region @mr into
 * mr->dirty_bitmap (KVM_GET_DIRTY_LOG), without counting or clearing it;
 * migration reads and clears the bitmap itself. */
gboolean memslots__harvest_region(memslots *ms, memory_region *mr, GError **error);

/* Pages of RAM region @mr written since the last sync (KVM_GET_DIRTY_LOG
 * of its slots, plus what slots deleted meanwhile had logged); clears
 * them.  G_MAXUINT64 with @error when the log cannot be read. */
guint64 memslots__sync_dirty(memslots *ms, memory_region *mr, GError **error);

/* Whether some add overlaps some delete: seed 003's test of whether a
 * commit needs to inhibit vCPU ioctls.  Both arrays sorted by address. */
bool memslots__adds_overlap_dels(GArray *adds, GArray *dels);

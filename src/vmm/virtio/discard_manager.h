/*
 * virtio/discard_manager.h: who may discard guest RAM, with QEMU 6.0's semantics
 * (softmmu/physmem.c: ram_block_discard_disable() and friends).
 *
 * Four counters.  "Uncoordinated" discard is the balloon's madvise() that
 * nobody else hears about; "coordinated" discard is virtio-mem, which tells
 * a RamDiscardManager listener (VFIO) to unmap first.  Whoever holds a
 * disable is recorded as an inhibitor, so a report can say who and why.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* One holder of a disable.  Owned by the object that took it (a VFIO
 * group, the KVM accelerator, the locked memory backend). */
typedef struct discard_inhibitor {
    const char *code;            /* vfio-group, kvm-no-sync-mmu, memory-locked */
    int group;                   /* IOMMU group, or -1 */
    GPtrArray *devices;          /* char * aliases, may be empty */
} discard_inhibitor;

typedef struct discard_manager {
    GMutex lock;
    unsigned discard_required;
    unsigned coordinated_discard_required;
    unsigned discard_disabled;
    unsigned uncoordinated_discard_disabled;
    GPtrArray *inhibitors;       /* discard_inhibitor *, not owned */
} discard_manager;

void discard_manager__init(discard_manager *dm);
void discard_manager__destroy(discard_manager *dm);

/* Each returns 0 or -EBUSY, exactly as QEMU's ram_block_* functions. */
int discard_manager__disable(discard_manager *dm, bool state,
                             discard_inhibitor *who);
int discard_manager__uncoordinated_disable(discard_manager *dm, bool state,
                                           discard_inhibitor *who);
int discard_manager__require(discard_manager *dm, bool state);
int discard_manager__coordinated_require(discard_manager *dm, bool state);

/* The balloon asks this before every discard (qemu_balloon_is_inhibited). */
bool discard_manager__is_disabled(discard_manager *dm);
bool discard_manager__is_required(discard_manager *dm);

void discard_inhibitor__init(discard_inhibitor *who, const char *code, int group);
void discard_inhibitor__clear(discard_inhibitor *who);

/*
 * accel/kvm.h: the KVM accelerator: the VM on /dev/kvm, its capabilities, and
 * the memslot backend (KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "accel/accel_blocker.h"
#include "memory/memslots.h"

typedef struct kvm_accel {
    int kvm_fd;
    int vm_fd;
    unsigned nr_memslots;                /* KVM_CAP_NR_MEMSLOTS */
    bool sync_mmu;                       /* KVM_CAP_SYNC_MMU */
    accel_blocker blocker;
    memslots slots;
} kvm_accel;

/* Open @dev (NULL: /dev/kvm), create the VM and its memslot listener.
 * @max_slot_size 0 means no split. */
kvm_accel *kvm_accel__new(const char *dev, bool atomic, guint64 max_slot_size,
                          GError **error);
void kvm_accel__free(kvm_accel *kvm);

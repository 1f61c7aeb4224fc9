/*
 * accel/soft_accel.h: a software accelerator with KVM's memslot semantics, so
 * the memory API, the memslot layer and seed 003's atomic commit are
 * tested where /dev/kvm is missing.  Its slot table behaves like the
 * kernel's (a new slot may not overlap a used one: EEXIST), and its vCPU
 * threads run the guest program's algorithm in C, translating every
 * access through that table under the same ioctl blocker.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "accel/accel_blocker.h"
#include "accel/kvm_vcpu.h"
#include "memory/memslots.h"

typedef struct soft_slot {
    bool used;
    guint64 start, size;
    guint8 *hva;
} soft_slot;

typedef struct soft_vcpu soft_vcpu;

typedef struct soft_accel {
    GRWLock table_lock;
    GArray *table;                       /* soft_slot, by slot id */
    accel_blocker blocker;
    memslots slots;
} soft_accel;

soft_accel *soft_accel__new(unsigned nr_memslots, guint64 max_slot_size, bool atomic);
void soft_accel__free(soft_accel *sa);

/* The host address behind @gpa, as the "hardware" sees it now, or NULL. */
guint8 *soft_accel__translate(soft_accel *sa, guint64 gpa);

/* The "registers" of the guest algorithm: what a migration carries. */
typedef struct soft_vcpu_state {
    guint32 pass;                        /* the pass being written */
    guint64 next_page;                   /* its next own page */
} soft_vcpu_state;

/* A vCPU thread running the guest algorithm over params (accel/kvm_vcpu.h),
 * from its entry point, or from @state (a migrated vCPU; NULL: boot),
 * held to the dirty rate limit @tick_ns (accel/dirty_limit.h; 0: none). */
soft_vcpu *soft_vcpu__start(soft_accel *sa, guest_params *params,
                            kvm_vcpu_is_ram_fn is_ram, void *opaque,
                            const soft_vcpu_state *state, guint64 tick_ns);
kvm_vcpu_stats soft_vcpu__stop(soft_vcpu *vcpu);
/* The vCPU's state; only while the accelerator's ioctls are inhibited
 * (vm__pause), when the thread is between two "KVM_RUN"s. */
void soft_vcpu__save_state(soft_vcpu *vcpu, soft_vcpu_state *state);

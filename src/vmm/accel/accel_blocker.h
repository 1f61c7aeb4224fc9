/*
 * accel/accel_blocker.h: inhibit vCPU ioctls while memslots change, after QEMU's
 * accel/accel-blocker.c (seed 003, "accel: introduce accelerator blocker
 * API").  Each vCPU has its own lock and counter, so vCPUs never contend
 * with each other; an inhibitor takes every vCPU's lock, kicks the ones
 * inside an ioctl out (signal + immediate_exit) and waits until none is
 * left.  There is no global pause, and no lock is held across KVM_RUN.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct accel_blocker accel_blocker;

/* How to get a vCPU out of KVM_RUN: set immediate_exit, then signal it. */
typedef void (*accel_kick_fn)(void *vcpu_opaque);

typedef struct accel_vcpu_slot {
    GMutex lock;
    GCond cond;
    unsigned in_ioctl;           /* 0 or 1: inside KVM_RUN or another ioctl */
    bool blocked;                /* an inhibitor holds this vCPU */
    void *opaque;                /* passed to the kick function */
    guint64 kicks;
} accel_vcpu_slot;

struct accel_blocker {
    GMutex lock;                 /* protects the vCPU list, not the fast path */
    GPtrArray *vcpus;            /* accel_vcpu_slot * */
    accel_kick_fn kick;
    guint64 inhibits;            /* commits that inhibited */
    guint64 kicks;               /* vCPUs kicked out of an ioctl */
    gint64 inhibit_start_us;
    GArray *stall_us;            /* gint64 per inhibit, when non-NULL (bench) */
};

void accel_blocker__init(accel_blocker *b, accel_kick_fn kick);
void accel_blocker__destroy(accel_blocker *b);

accel_vcpu_slot *accel_blocker__add_vcpu(accel_blocker *b, void *opaque);
void accel_blocker__del_vcpu(accel_blocker *b, accel_vcpu_slot *slot);

/* vCPU thread, around every ioctl on the vCPU fd (KVM_RUN included).
 * begin waits while an inhibitor holds this vCPU. */
void accel_cpu_ioctl__begin(accel_vcpu_slot *slot);
void accel_cpu_ioctl__end(accel_vcpu_slot *slot);

/* The committing thread.  Returns once no vCPU is inside an ioctl and
 * none can enter one until inhibit_end. */
void accel_ioctl__inhibit_begin(accel_blocker *b);
void accel_ioctl__inhibit_end(accel_blocker *b);

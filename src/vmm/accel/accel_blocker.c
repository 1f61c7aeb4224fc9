/*
 * accel/accel_blocker.c: the vCPU ioctl inhibitor of seed 003.
 *
 * Deadlock freedom: a vCPU holds its own lock only for a few instructions
 * and never while inside KVM_RUN; the inhibitor takes the vCPU locks in
 * list order, one at a time, and never waits for anything a blocked vCPU
 * would need.  A vCPU inside KVM_RUN is kicked: immediate_exit covers the
 * window before it enters the guest, the signal the time it is in it.
 */
#include "accel/accel_blocker.h"

void
accel_blocker__init(accel_blocker *b, accel_kick_fn kick)
{
    *b = (accel_blocker){ 0 };
    g_mutex_init(&b->lock);
    b->vcpus = g_ptr_array_new();
    b->kick = kick;
}

void
accel_blocker__destroy(accel_blocker *b)
{
    g_ptr_array_unref(b->vcpus);
    g_mutex_clear(&b->lock);
}

accel_vcpu_slot *
accel_blocker__add_vcpu(accel_blocker *b, void *opaque)
{
    accel_vcpu_slot *slot = g_new0(accel_vcpu_slot, 1);

    g_mutex_init(&slot->lock);
    g_cond_init(&slot->cond);
    slot->opaque = opaque;
    g_mutex_lock(&b->lock);
    g_ptr_array_add(b->vcpus, slot);
    g_mutex_unlock(&b->lock);
    return slot;
}

void
accel_blocker__del_vcpu(accel_blocker *b, accel_vcpu_slot *slot)
{
    g_mutex_lock(&b->lock);
    g_ptr_array_remove(b->vcpus, slot);
    g_mutex_unlock(&b->lock);
    g_cond_clear(&slot->cond);
    g_mutex_clear(&slot->lock);
    g_free(slot);
}

void
accel_cpu_ioctl__begin(accel_vcpu_slot *slot)
{
    g_mutex_lock(&slot->lock);
    while (slot->blocked)
        g_cond_wait(&slot->cond, &slot->lock);
    slot->in_ioctl++;
    g_mutex_unlock(&slot->lock);
}

void
accel_cpu_ioctl__end(accel_vcpu_slot *slot)
{
    g_mutex_lock(&slot->lock);
    slot->in_ioctl--;
    g_cond_broadcast(&slot->cond);
    g_mutex_unlock(&slot->lock);
}

void
accel_ioctl__inhibit_begin(accel_blocker *b)
{
    g_mutex_lock(&b->lock);
    b->inhibits++;
    b->inhibit_start_us = g_get_monotonic_time();
    /* Stop new ioctls and kick every vCPU inside one first, then wait
     * for them all, so the kick latencies overlap instead of adding up
     * (QEMU's accel_ioctl_inhibit_begin kicks all, then waits).  A vCPU
     * that leaves KVM_RUN cannot re-enter behind the inhibitor's back. */
    for (guint i = 0; i < b->vcpus->len; i++) {
        accel_vcpu_slot *slot = g_ptr_array_index(b->vcpus, i);

        g_mutex_lock(&slot->lock);
        slot->blocked = true;
        if (slot->in_ioctl && b->kick) {
            slot->kicks++;
            b->kicks++;
            b->kick(slot->opaque);
        }
        g_mutex_unlock(&slot->lock);
    }
    for (guint i = 0; i < b->vcpus->len; i++) {
        accel_vcpu_slot *slot = g_ptr_array_index(b->vcpus, i);

        g_mutex_lock(&slot->lock);
        while (slot->in_ioctl)
            g_cond_wait(&slot->cond, &slot->lock);
        g_mutex_unlock(&slot->lock);
    }
    /* b->lock stays held until inhibit_end: vCPUs cannot be added. */
}

void
accel_ioctl__inhibit_end(accel_blocker *b)
{
    /* How long vCPUs could not run: from the first block to the release. */
    if (b->stall_us) {
        gint64 stall = g_get_monotonic_time() - b->inhibit_start_us;

        g_array_append_val(b->stall_us, stall);
    }
    for (guint i = 0; i < b->vcpus->len; i++) {
        accel_vcpu_slot *slot = g_ptr_array_index(b->vcpus, i);

        g_mutex_lock(&slot->lock);
        slot->blocked = false;
        g_cond_broadcast(&slot->cond);
        g_mutex_unlock(&slot->lock);
    }
    g_mutex_unlock(&b->lock);
}

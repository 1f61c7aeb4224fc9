/*
 * accel/dirty_limit.h: a vCPU's dirty rate limit, after QEMU's dirty-limit
 * (softmmu/dirtylimit.c): the vCPU thread, not the guest, sleeps so the
 * guest dirties memory at most at the given rate.  The guest program
 * ticks every pages_per_tick pages (GUEST_PORT_TICK); each tick takes
 * tick_ns of the vCPU's time budget.
 */
#pragma once

#include <glib.h>

/* Pages between two ticks: 64 KiB, a few hundred exits a second at the
 * rates the benchmark uses, and a rate error below one tick. */
#define DIRTY_LIMIT_PAGES_PER_TICK 16u

typedef struct dirty_limit {
    guint64 tick_ns;                     /* 0: no limit */
    guint64 next_ns;                     /* CLOCK_MONOTONIC: the budget's end */
} dirty_limit;

/* tick_ns for @rate bytes/s shared by @nr_vcpus vCPUs; 0 for rate 0. */
guint64 dirty_limit__tick_ns(guint64 rate, unsigned nr_vcpus);

/* A tick: sleep until the vCPU is within its budget.  A signal (a kick)
 * cuts the sleep short; the debt stays for the next tick. */
void dirty_limit__tick(dirty_limit *d);

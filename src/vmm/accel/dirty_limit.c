/*
 * accel/dirty_limit.c: the vCPU dirty rate limit (accel/dirty_limit.h).
 */
#include "accel/dirty_limit.h"

#include <time.h>

#define PAGE 4096ULL
#define NS_PER_S 1000000000ULL

guint64
dirty_limit__tick_ns(guint64 rate, unsigned nr_vcpus)
{
    guint64 per_vcpu;

    if (!rate)
        return 0;
    per_vcpu = MAX(rate / MAX(nr_vcpus, 1u), 1);
    return DIRTY_LIMIT_PAGES_PER_TICK * PAGE * NS_PER_S / per_vcpu;
}

static guint64
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (guint64)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

void
dirty_limit__tick(dirty_limit *d)
{
    struct timespec until;

    if (!d->tick_ns)
        return;
    /* Time the vCPU did not use (paused, slower than the rate) is not
     * saved up for a burst. */
    d->next_ns = MAX(d->next_ns, now_ns()) + d->tick_ns;
    until.tv_sec = d->next_ns / NS_PER_S;
    until.tv_nsec = d->next_ns % NS_PER_S;
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
}

/*
 * accel/kvm_vcpu.h: vCPU threads on /dev/kvm running the built-in guest program
 * (src/vmm/accel/guest_program.S), in 32-bit flat protected mode.
 *
 * Guest memory contract (guest physical addresses):
 *   GUEST_BOOT_BASE .. +GUEST_BOOT_SIZE  a small RAM region that never
 *       changes: the program at GUEST_PROGRAM_ADDR, one guest_params block
 *       per vCPU at GUEST_PARAMS_ADDR + id * sizeof(guest_params), a stack
 *       per vCPU below GUEST_STACK_TOP - id * GUEST_STACK_SIZE.
 *   [ram_start, ram_end)  the range every pass reads and writes, one
 *       32-bit word at the start of each page; vCPU i takes the pages
 *       i, i + nr_vcpus, i + 2 * nr_vcpus, ...; pages in
 *       [hole_start, hole_end) are skipped (an MMIO hole may be there).
 *
 * Each pass, for each of its pages, the guest reads the word, compares it
 * with the pass number it wrote there last time (0 before the first
 * pass), counts a mismatch in params.errors, and writes the new pass
 * number, and every pages_per_tick pages (if set) writes GUEST_PORT_TICK.
 * After each pass it writes its pass number to port
 * GUEST_PORT_PASS, then checks params.stop; when set, it writes
 * params.errors to GUEST_PORT_DONE and halts.
 */
#pragma once

#include <glib.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/accel_blocker.h"
#include "accel/dirty_limit.h"

#define GUEST_BOOT_BASE     0x0ULL
#define GUEST_BOOT_SIZE     0x100000ULL        /* 1 MiB */
#define GUEST_PROGRAM_ADDR  0x1000ULL
#define GUEST_PARAMS_ADDR   0x8000ULL
#define GUEST_STACK_TOP     0x80000ULL
#define GUEST_STACK_SIZE    0x1000ULL
#define GUEST_PORT_PASS     0x10
#define GUEST_PORT_DONE     0x11
#define GUEST_PORT_TICK     0x12

/* Read by the guest; 32-bit fields because the guest is 32-bit. */
typedef struct {
    uint32_t ram_start, ram_end;
    uint32_t hole_start, hole_end;
    uint32_t id, nr_vcpus;
    volatile uint32_t stop;              /* host sets it to end the run */
    volatile uint32_t errors;            /* guest: mismatches seen */
    volatile uint32_t pass;              /* guest: last completed pass */
    /* Dirty rate limit: every this many pages written the guest writes
     * GUEST_PORT_TICK, where the host holds the vCPU as long as the rate
     * asks (0: no limit, no tick). */
    uint32_t pages_per_tick;
    uint32_t reserved[6];
} guest_params;

/* Decides whether an MMIO exit address is RAM in the committed memory
 * map (a spurious fault) or really MMIO. */
typedef bool (*kvm_vcpu_is_ram_fn)(void *opaque, uint64_t gpa);

typedef struct kvm_vcpu_stats {
    guint64 passes;                      /* GUEST_PORT_PASS writes */
    guint64 guest_errors;                /* from GUEST_PORT_DONE */
    guint64 spurious_faults;             /* MMIO exits at RAM addresses */
    guint64 mmio_exits;                  /* all MMIO exits */
    guint64 run_calls;                   /* KVM_RUN invocations */
    guint64 eintr;                       /* KVM_RUN returned EINTR (kicked) */
} kvm_vcpu_stats;

typedef struct kvm_vcpu kvm_vcpu;

/* Copy the guest program into the boot region (host pointer to GPA 0). */
void guest_program__load(void *boot_hva);
/* Fill vCPU @id's params block in the boot region. */
void guest_params__init(void *boot_hva, unsigned id, unsigned nr_vcpus,
                        uint32_t ram_start, uint32_t ram_end,
                        uint32_t hole_start, uint32_t hole_end);
guest_params *guest_params__get(void *boot_hva, unsigned id);

/* KVM_CREATE_VCPU, mmap kvm_run, 32-bit flat protected mode registers. */
kvm_vcpu *kvm_vcpu__create(int vm_fd, unsigned id, accel_blocker *blocker,
                           kvm_vcpu_is_ram_fn is_ram, void *opaque,
                           GError **error);
/*
 * The architectural state a migration carries.  The guest program uses
 * no FPU, MSRs or interrupts, so registers and segment/control registers
 * are all of it (QEMU's x86 vmstate has much more).
 */
typedef struct kvm_vcpu_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
} kvm_vcpu_state;

/* Read the state of a vCPU whose thread is held out of KVM_RUN (the
 * accelerator's ioctls inhibited, vm__pause).  An I/O exit the thread
 * already handled completes only on the next KVM_RUN (the OUT's RIP is
 * advanced then), so one KVM_RUN with immediate_exit finishes it first,
 * as the KVM API documents for saving state. */
gboolean kvm_vcpu__save_state(kvm_vcpu *vcpu, kvm_vcpu_state *state, GError **error);
/* Before kvm_vcpu__start: run from @state instead of the entry point. */
gboolean kvm_vcpu__load_state(kvm_vcpu *vcpu, const kvm_vcpu_state *state,
                              GError **error);

/* The dirty rate limit: on each GUEST_PORT_TICK the vCPU thread sleeps
 * so that ticks come @tick_ns apart at most (QEMU's dirty-limit holds a
 * vCPU in the host the same way).  0: no limit.  Before starting. */
void kvm_vcpu__set_throttle(kvm_vcpu *vcpu, guint64 tick_ns);

/* Start the thread that loops on KVM_RUN. */
gboolean kvm_vcpu__start(kvm_vcpu *vcpu, GError **error);
/* Ask the guest to stop (params.stop, then GUEST_PORT_DONE), join the
 * thread; a guest that does not stop within @timeout_ms is kicked and the
 * thread still joined.  Returns the stats. */
kvm_vcpu_stats kvm_vcpu__stop(kvm_vcpu *vcpu, guest_params *params,
                              unsigned timeout_ms);
/* Close the vCPU fd and unmap kvm_run; the thread must be stopped. */
void kvm_vcpu__free(kvm_vcpu *vcpu);
/* Why the run loop ended on its own (KVM_RUN error, internal error, failed
 * entry, shutdown), or NULL. */
const char *kvm_vcpu__error(const kvm_vcpu *vcpu);
/* The accel_kick_fn to pass to accel_blocker__init: sets immediate_exit
 * and signals the vCPU thread out of KVM_RUN. */
void kvm_vcpu__kick(void *vcpu);

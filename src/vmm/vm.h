/*
 * vm.h: a small VM on the embedded VMM: a boot region with the guest
 * program, guest RAM laid out as a PC lays it out (pc.ram aliased below
 * the 3 GiB PCI hole and above 4 GiB, as QEMU's pc_memory_init does),
 * memory devices above it, vCPUs, and the memslot churn of seed 003.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "accel/kvm.h"
#include "accel/kvm_vcpu.h"
#include "memory/memory.h"
#include "accel/soft_accel.h"

typedef enum {
    VM_ACCEL_KVM,
    VM_ACCEL_SOFT,
} vm_accel;

typedef struct vm_memory_device {
    char *alias;
    guint64 size;                        /* plugged: dimm size, virtio-mem requested */
} vm_memory_device;

typedef struct vm_config {
    vm_accel accel;
    const char *kvm_device;              /* NULL: /dev/kvm */
    bool atomic;                         /* seed 003 atomic memslot updates */
    unsigned nr_vcpus;
    guint64 ram_size;                    /* pc.ram */
    GPtrArray *memory_devices;           /* vm_memory_device *, may be NULL */
    guint churn_pause_us;                /* between transactions: lets vCPUs run */
    bool log_dirty;                      /* KVM dirty logging on pc.ram */
    guint64 dirty_rate;                  /* bytes/s the guest dirties at most, all
                                          * vCPUs together (accel/dirty_limit.h); 0: as
                                          * fast as it can */
} vm_config;

typedef struct vm_result {
    guint64 transactions;
    guint64 commits;
    guint64 inhibited_commits;
    guint64 kicks;
    guint64 ioctls;
    guint64 ioctl_ns;
    guint64 commit_ns;
    guint slots_used;
    guint64 passes;
    guint64 spurious_faults;
    guint64 mmio_exits;
    guint64 guest_errors;
    guint64 checksum;                    /* sum of the words the guest wrote */
    guint64 checksum_expected;           /* from the passes the guest reported */
    bool checksum_ok;
    guint64 touched_bytes;
    guint64 dirty_pages;                 /* KVM_GET_DIRTY_LOG over the touched range */
    double seconds;
} vm_result;

typedef struct vm vm;

/* Map the memory and create the accelerator; refuses a VM bigger than
 * the host's memory. */
vm *vm__new(const vm_config *cfg, GError **error);
void vm__free(vm *v);

/* Run the guest on every vCPU for @seconds while the main thread keeps
 * changing the memory map: it punches an MMIO hole into the middle of the
 * RAM the guest touches and removes it, resizes low RAM, so slots split,
 * merge and resize.  At least @min_transactions are done. */
gboolean vm__run(vm *v, double seconds, guint64 min_transactions,
                 vm_result *result, GError **error);

/* The memslots and the blocker of the VM's accelerator. */
memslots *vm__memslots(vm *v);

/* Guest memory, for devices realized on it (VFIO maps it). */
address_space *vm__address_space(vm *v);
/* Boot the guest program on every vCPU without any churn, and stop it. */
gboolean vm__start(vm *v, GError **error);
void vm__stop(vm *v, vm_result *result);
/* Host address of guest page @gpa in pc.ram, or NULL. */
void *vm__ram_hva(vm *v, guint64 gpa);
/* pc.ram and the boot region (guest program, guest_params, stacks): the
 * RAM a migration carries. */
memory_region *vm__ram_region(vm *v);
memory_region *vm__boot_region(vm *v);
/* pause_all_vcpus()/resume_all_vcpus(): hold every vCPU out of KVM_RUN
 * (the accelerator's ioctl inhibitor) without ending the guest, which
 * resumes where it was.  Pause and resume from the same thread; no
 * memslot change that needs to inhibit may happen in between.  vm__stop
 * resumes a paused VM first. */
void vm__pause(vm *v);
void vm__resume(vm *v);
bool vm__started(vm *v);                 /* vm__start'ed, not yet stopped */
bool vm__paused(vm *v);
/*
 * vCPU state for a migration (QEMU's cpu vmstate): @v paused, started.
 * Appends {u32 accel, u32 nr_vcpus} then each vCPU's state.
 */
gboolean vm__save_cpus(vm *v, GByteArray *out, GError **error);
/* On a VM not started: the next vm__start resumes every vCPU from this
 * state, over the migrated guest_params, instead of booting it.  The
 * accelerator and the vCPU count must be the source's.  @data NULL:
 * forget a loaded state. */
gboolean vm__load_cpus(vm *v, const guint8 *data, gsize len, GError **error);
/* The offset of @gpa in pc.ram, for dirty pages reported by guest
 * physical address; false outside pc.ram. */
bool vm__ram_offset(vm *v, guint64 gpa, guint64 *offset);
/* The pc.ram range the guest program writes. */
void vm__touch_range(vm *v, guint64 *start, guint64 *end);
/* The pc.ram range the balloon may take pages from: below the end of low
 * RAM and above the RAM the guest program touches. */
void vm__balloon_range(vm *v, guint64 *start, guint64 *end);

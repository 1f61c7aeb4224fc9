/*
 * test-kvm-stress.c: seed 003 on this machine's real /dev/kvm.  Two vCPUs
 * run the guest program over RAM while the main thread performs at least
 * 10,000 memory transactions (an MMIO hole punched into the middle of the
 * RAM the guest touches and removed again, low RAM resized), so memslots
 * split, merge and resize under a running guest.
 *
 * Atomic commits: no spurious fault, the guest's RAM checksum intact.
 * Non-atomic (as before seed 003): the same test must see spurious
 * faults, which shows it can see the failure.
 */
#include <fcntl.h>
#include <glib.h>
#include <unistd.h>

#include "accel/kvm_vcpu.h"
#include "vm.h"

#define MiB (1024ULL * 1024)
#define TRANSACTIONS 10000

static bool
kvm_usable(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

static vm_result
run_stress(bool atomic, guint64 transactions)
{
    vm_config cfg = { .accel = VM_ACCEL_KVM, .atomic = atomic, .nr_vcpus = 2,
                      .ram_size = 256 * MiB, .churn_pause_us = 100 };
    g_autoptr(GError) err = NULL;
    vm *v = vm__new(&cfg, &err);
    vm_result r;

    g_assert_no_error(err);
    g_assert_true(vm__run(v, 0, transactions, &r, &err));
    g_assert_no_error(err);
    vm__free(v);
    g_test_message("%s: %" G_GUINT64_FORMAT " transactions in %.1f s, %" G_GUINT64_FORMAT
                   " inhibited commits, %" G_GUINT64_FORMAT " kicks, %" G_GUINT64_FORMAT
                   " passes, %" G_GUINT64_FORMAT " spurious faults, checksum %s",
                   atomic ? "atomic" : "non-atomic", r.transactions, r.seconds,
                   r.inhibited_commits, r.kicks, r.passes, r.spurious_faults,
                   r.checksum_ok ? "intact" : "BROKEN");
    return r;
}

static void
test_atomic(void)
{
    vm_result r;

    if (!kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return;
    }
    r = run_stress(true, TRANSACTIONS);
    g_assert_cmpuint(r.transactions, >=, TRANSACTIONS);
    g_assert_cmpuint(r.passes, >, 0);
    g_assert_cmpuint(r.spurious_faults, ==, 0);
    g_assert_cmpuint(r.guest_errors, ==, 0);
    g_assert_true(r.checksum_ok);
    /* Every transaction here overlaps: each one inhibited and kicked. */
    g_assert_cmpuint(r.inhibited_commits, >=, TRANSACTIONS);
    g_assert_cmpuint(r.kicks, >, 0);
}

static void
test_non_atomic_sees_faults(void)
{
    vm_result r;

    if (!kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return;
    }
    r = run_stress(false, TRANSACTIONS);
    g_assert_cmpuint(r.transactions, >=, TRANSACTIONS);
    g_assert_cmpuint(r.inhibited_commits, ==, 0);
    g_assert_cmpuint(r.spurious_faults, >, 0);
    g_assert_false(r.checksum_ok && r.guest_errors == 0);
}

/* Every vCPU of @v finished a pass (guest_params.pass, which the guest
 * writes itself). */
static bool
every_vcpu_passed(vm *v, unsigned nr_vcpus)
{
    for (unsigned i = 0; i < nr_vcpus; i++)
        if (guest_params__get(vm__boot_region(v)->ram, i)->pass == 0)
            return false;
    return true;
}

/* KVM_GET_DIRTY_LOG: the pages the guest wrote are reported dirty, the
 * log survives slot splits (a slot deleted while logging is synced).
 * Each vCPU writes only its own pages, so every page is written once
 * every vCPU finished a pass.  The run lasts a fixed time, then asks the
 * guests to stop at the end of their pass and kicks them out after 5 s;
 * under the churn a pass takes a good part of a second, and on a busy
 * machine a vCPU may not finish one: then the run is repeated, longer, on
 * a new VM. */
static void
test_dirty_log(void)
{
    vm_config cfg = { .accel = VM_ACCEL_KVM, .atomic = true, .nr_vcpus = 2,
                      .ram_size = 128 * MiB, .churn_pause_us = 100, .log_dirty = true };
    static const double seconds[] = { 0.3, 1, 3, 10 };
    g_autoptr(GError) err = NULL;
    vm *v = NULL;
    vm_result r;

    if (!kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return;
    }
    for (guint i = 0; i < G_N_ELEMENTS(seconds); i++) {
        g_clear_pointer(&v, vm__free);
        v = vm__new(&cfg, &err);
        g_assert_no_error(err);
        g_assert_true(vm__run(v, seconds[i], 0, &r, &err));
        g_assert_no_error(err);
        g_test_message("%.1f s: %" G_GUINT64_FORMAT " passes, %" G_GUINT64_FORMAT
                       " dirty pages of %" G_GUINT64_FORMAT, seconds[i], r.passes,
                       r.dirty_pages, r.touched_bytes / 4096);
        if (every_vcpu_passed(v, cfg.nr_vcpus))
            break;
    }
    g_assert_true(every_vcpu_passed(v, cfg.nr_vcpus));
    g_assert_cmpuint(r.passes, >, 0);
    /* The guest writes one word per page of the touched range, minus the
     * 1 MiB hole it skips. */
    g_assert_cmpuint(r.dirty_pages, >=, (r.touched_bytes - MiB) / 4096);
    g_assert_cmpuint(r.dirty_pages, <=, r.touched_bytes / 4096);
    vm__free(v);
}

/* KVM_CAP_NR_MEMSLOTS and KVM_CAP_SYNC_MMU, and KVM_SET_USER_MEMORY_REGION
 * split at a maximum slot size. */
static void
test_capabilities_and_split(void)
{
    g_autoptr(GError) err = NULL;
    kvm_accel *kvm = kvm_accel__new(NULL, true, 4 * MiB, &err);
    memory_region *root = memory_region__new_container("system", G_MAXUINT64);
    memory_region *ram = memory_region__new_ram("ram", 12 * MiB, 0, NULL);
    address_space *as = address_space__new("memory", root);

    g_assert_no_error(err);
    g_assert_cmpuint(kvm->nr_memslots, >=, 32);
    g_assert_true(kvm->sync_mmu);
    memory_listener__register(&kvm->slots.listener, as);
    memory_region__add_subregion(root, 16 * MiB, ram, 0);
    g_assert_cmpuint(memslots__used(&kvm->slots), ==, 3);
    g_assert_cmpuint(memslots__find(&kvm->slots, 24 * MiB)->memory_size, ==, 4 * MiB);
    g_assert_null(kvm->slots.first_error);
    kvm_accel__free(kvm);
    address_space__free(as);
    memory_region__del_subregion(root, ram);
    memory_region__free(ram);
    memory_region__free(root);
}

static guint
count_entries(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    guint n = 0;

    while (d && g_dir_read_name(d))
        n++;
    return n;
}

/* After vm__free, no thread and no file descriptor is left.  Since Linux
 * 6.13 KVM runs a worker (kvm-nx-lpage-recovery) in the process while the
 * VM fd is open; it leaves with the fd, so wait a little for it. */
static void
test_no_leak(void)
{
    vm_config cfg = { .accel = VM_ACCEL_KVM, .atomic = true, .nr_vcpus = 2,
                      .ram_size = 128 * MiB, .churn_pause_us = 100 };
    guint fds = count_entries("/proc/self/fd");
    g_autoptr(GError) err = NULL;
    vm *v;
    vm_result r;

    if (!kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return;
    }
    v = vm__new(&cfg, &err);
    g_assert_no_error(err);
    g_assert_true(vm__run(v, 0.2, 100, &r, &err));
    vm__free(v);
    for (int i = 0; i < 200 && count_entries("/proc/self/task") > 1; i++)
        g_usleep(10000);
    g_assert_cmpuint(count_entries("/proc/self/task"), ==, 1);
    g_assert_cmpuint(count_entries("/proc/self/fd"), ==, fds);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* meson's skip status: this machine has no usable /dev/kvm. */
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        g_print("no usable /dev/kvm: skipping the KVM tests\n");
        return 77;
    }
    g_test_add_func("/kvm/seed003-stress-atomic", test_atomic);
    g_test_add_func("/kvm/seed003-stress-non-atomic-sees-faults", test_non_atomic_sees_faults);
    g_test_add_func("/kvm/capabilities-and-split", test_capabilities_and_split);
    g_test_add_func("/kvm/dirty-log", test_dirty_log);
    g_test_add_func("/kvm/no-thread-or-fd-left", test_no_leak);
    return g_test_run();
}

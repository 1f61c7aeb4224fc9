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

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm/seed003-stress-atomic", test_atomic);
    g_test_add_func("/kvm/seed003-stress-non-atomic-sees-faults", test_non_atomic_sees_faults);
    return g_test_run();
}

/*
 * migration-rig.c: what the migration tests share: VMs running the guest
 * program, and the check that a source survived a failed migration.
 */
#include "migration-rig.h"

#include <fcntl.h>
#include <unistd.h>

bool
kvm_usable(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

vm_accel
best_accel(void)
{
    return kvm_usable() ? VM_ACCEL_KVM : VM_ACCEL_SOFT;
}


vm *
new_vm(vm_accel accel, guint64 ram_mib)
{
    vm_config cfg = { .accel = accel, .atomic = true, .nr_vcpus = 2,
                      .ram_size = ram_mib * MiB };
    g_autoptr(GError) err = NULL;
    vm *v = vm__new(&cfg, &err);

    g_assert_no_error(err);
    return v;
}

guest_params *
params_of(vm *v, unsigned id)
{
    return guest_params__get(vm__boot_region(v)->ram, id);
}

void
wait_passes(vm *v, guint32 passes)
{
    guint32 want[2] = { params_of(v, 0)->pass + passes, params_of(v, 1)->pass + passes };
    gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;

    while (params_of(v, 0)->pass < want[0] || params_of(v, 1)->pass < want[1]) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(2000);
    }
}

vm *
running_vm(vm_accel accel, guint64 ram_mib)
{
    g_autoptr(GError) err = NULL;
    vm *v = new_vm(accel, ram_mib);

    g_assert_true(vm__start(v, &err));
    g_assert_no_error(err);
    wait_passes(v, 2);
    return v;
}

/* The source after a refused or cancelled migration: running, not
 * logging, its guest going on with every page it checks intact. */
void
assert_source_runs(vm *src)
{
    vm_result r;

    g_assert_true(vm__started(src));
    g_assert_false(vm__paused(src));
    g_assert_false(vm__ram_region(src)->log_dirty);
    wait_passes(src, 2);
    vm__stop(src, &r);
    g_test_message("source afterwards: %" G_GUINT64_FORMAT " passes, checksum %s",
                   r.passes, r.checksum_ok ? "intact" : "BROKEN");
    g_assert_cmpuint(r.passes, >, 0);
    g_assert_cmpuint(r.guest_errors, ==, 0);
    g_assert_true(r.checksum_ok);
}

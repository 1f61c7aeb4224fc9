/*
 * migration-rig.c: what the migration tests share: VMs running the guest
 * program, and the check that a source survived a failed migration.
 */
#include "migration-rig.h"
#include "machine.h"
#include "vfio/device.h"

#include "vfio/soft.h"
#include "viommu.h"

#include <fcntl.h>
#include <sys/socket.h>
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
    return new_vm_rate(accel, ram_mib, 0);
}

vm *
new_vm_rate(vm_accel accel, guint64 ram_mib, guint64 dirty_rate)
{
    vm_config cfg = { .accel = accel, .atomic = true, .nr_vcpus = 2,
                      .ram_size = ram_mib * MiB, .dirty_rate = dirty_rate };
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

/* ------------------------------------------------------------------ */
/* The device model on a VM's memory                                   */

/* A q35 machine whose soft VFIO containers map @v's guest memory;
 * @with_viommu: an intel-iommu with interrupt remapping. */
vmm_machine *
machine_on(vm *v, vm_accel accel, bool iommu_pt, bool with_viommu)
{
    vmm_machine_config cfg = {
        .type = VMM_MACHINE_Q35, .kvm = accel == VM_ACCEL_KVM, .kvm_sync_mmu = true,
        .split_irqchip = true, .vfio_backend = &vfio_backend_soft,
        .compat = { .vfio_migration = true, .vfio_enable_migration_onoff = true,
                    .vfio_multi_device_p2p = true, .x_migration_iommu_pt = iommu_pt },
    };
    viommu_config io = { .model = VIOMMU_INTEL, .alias = "iommu0", .intremap = VMM_ON,
                         .caching_mode = VMM_ON };
    vmm_machine *m = vmm_machine__new(&cfg);

    m->memory = vm__address_space(v);
    vmm_machine__init_accel(m);
    if (with_viommu)
        m->iommu = viommu__realize(m, &io);
    g_assert_cmpuint(m->findings.errors->len, ==, 0);
    return m;
}

/* An mlx5_vfio_pci-like VF: migration, dirty tracking, P2P. */
vfio_device *
add_device(vmm_machine *m, const char *alias, int group, bool caps_migration,
           vfio_enable_migration enable, bool iommu_pt)
{
    vfio_device_config cfg = { .alias = alias, .host = group == 20 ? "0000:3b:00.1" : "0000:3b:00.2",
                               .kind = VFIO_KIND_PCI, .group = group,
                               .driver = caps_migration ? "mlx5_vfio_pci" : "vfio-pci",
                               .enable_migration = enable, .iommu_passthrough = iommu_pt,
                               .caps_migration = caps_migration,
                               .caps_dirty_tracking = caps_migration,
                               .caps_p2p = caps_migration };
    g_autoptr(GError) err = NULL;
    vfio_device *dev = vfio_device__realize(m, &cfg, &err);

    g_assert_no_error(err);
    return dev;
}

void
free_machine(vmm_machine *m)
{
    vmm_machine__free(m);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, 0);
}

/* ------------------------------------------------------------------ */
/* The destination's thread                                            */

static gpointer
receiver_main(gpointer data)
{
    receiver *rx = data;

    rx->ok = migration__receive_machine(rx->dst, rx->m, rx->fd, &rx->p, &rx->st, &rx->err);
    close(rx->fd);
    return NULL;
}

receiver *
receiver_start(vm *dst, vmm_machine *m, int fd, const migration_params *p)
{
    receiver *rx = g_new0(receiver, 1);

    rx->dst = dst;
    rx->m = m;
    rx->fd = fd;
    rx->p = p ? *p : (migration_params){ .timeout_ms = 20000 };
    rx->thread = g_thread_new("migration-rx", receiver_main, rx);
    return rx;
}

void
receiver_join(receiver *rx)
{
    if (rx->thread)
        g_thread_join(rx->thread);
    rx->thread = NULL;
}

void
receiver_free(receiver *rx)
{
    receiver_join(rx);
    g_clear_error(&rx->err);
    g_free(rx);
}

void
socket_pair(int sv[2])
{
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
}

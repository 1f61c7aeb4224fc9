/*
 * test-vmm.c: the VMM core's discard manager and VFIO group attach on their
 * own: QEMU 6.0's -EBUSY rules, and seed 000's "every error path drops the
 * disable again", proven by failing each backend step in turn.
 */
#include <errno.h>
#include <glib.h>

#include "virtio/balloon.h"
#include "virtio/discard_manager.h"
#include "machine.h"
#include "vfio/device.h"

/* softmmu/physmem.c: a hard disable and a require exclude each other; an
 * uncoordinated disable excludes only an uncoordinated require. */
static void
test_discard_manager_ebusy(void)
{
    discard_manager dm;
    discard_inhibitor who;

    discard_manager__init(&dm);
    discard_inhibitor__init(&who, "vfio-group", 7);

    g_assert_cmpint(discard_manager__coordinated_require(&dm, true), ==, 0);
    /* virtio-mem present: VFIO type1 may still attach... */
    g_assert_cmpint(discard_manager__uncoordinated_disable(&dm, true, &who), ==, 0);
    /* ...but a hard disable (KVM without sync MMU) may not. */
    g_assert_cmpint(discard_manager__disable(&dm, true, NULL), ==, -EBUSY);
    /* and nobody may require uncoordinated discard any more */
    g_assert_cmpint(discard_manager__require(&dm, true), ==, -EBUSY);
    g_assert_true(discard_manager__is_disabled(&dm));
    g_assert_true(discard_manager__is_required(&dm));
    g_assert_cmpuint(dm.inhibitors->len, ==, 1);

    g_assert_cmpint(discard_manager__uncoordinated_disable(&dm, false, &who), ==, 0);
    g_assert_cmpint(discard_manager__coordinated_require(&dm, false), ==, 0);
    g_assert_cmpuint(dm.inhibitors->len, ==, 0);
    g_assert_false(discard_manager__is_disabled(&dm));

    /* A require blocks a later uncoordinated disable. */
    g_assert_cmpint(discard_manager__require(&dm, true), ==, 0);
    g_assert_cmpint(discard_manager__uncoordinated_disable(&dm, true, &who), ==, -EBUSY);
    g_assert_cmpint(discard_manager__disable(&dm, true, NULL), ==, -EBUSY);
    g_assert_cmpint(discard_manager__require(&dm, false), ==, 0);
    /* A hard disable blocks a coordinated require (virtio-mem refuses). */
    g_assert_cmpint(discard_manager__disable(&dm, true, NULL), ==, 0);
    g_assert_cmpint(discard_manager__coordinated_require(&dm, true), ==, -EBUSY);
    g_assert_cmpint(discard_manager__disable(&dm, false, NULL), ==, 0);

    discard_inhibitor__clear(&who);
    discard_manager__destroy(&dm);
}

/* A backend that fails at step @fail_at and counts what is open, so a
 * leaked group or container shows up. */
enum { STEP_GROUP_OPEN, STEP_CONTAINER_OPEN, STEP_SET_CONTAINER, STEP_SET_IOMMU,
       STEP_LISTENER, STEP_LAST };
static int fail_at = -1;
static int open_groups, open_containers, attached;

static int
fail_step(int step, GError **error)
{
    if (step != fail_at)
        return 0;
    g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND, "injected failure at step %d", step);
    return -1;
}

static int
t_group_open(vfio_group *g, GError **error)
{
    if (fail_step(STEP_GROUP_OPEN, error) < 0)
        return -1;
    open_groups++;
    return 0;
}

static void
t_group_close(vfio_group *g)
{
    open_groups--;
}

static int
t_set_container(vfio_group *g, vfio_container *c, GError **error)
{
    if (fail_step(STEP_SET_CONTAINER, error) < 0)
        return -1;
    attached++;
    return 0;
}

static void
t_unset_container(vfio_group *g, vfio_container *c)
{
    attached--;
}

static int
t_container_open(vfio_container *c, GError **error)
{
    if (fail_step(STEP_CONTAINER_OPEN, error) < 0)
        return -1;
    open_containers++;
    return 0;
}

static int
t_set_iommu(vfio_container *c, GError **error)
{
    return fail_step(STEP_SET_IOMMU, error);
}

static int
t_listener(vfio_container *c, GError **error)
{
    return fail_step(STEP_LISTENER, error);
}

static void
t_container_close(vfio_container *c)
{
    open_containers--;
}

static const vfio_backend_ops failing_backend = {
    .name = "fault-injection",
    .group_open = t_group_open,
    .group_close = t_group_close,
    .group_set_container = t_set_container,
    .group_unset_container = t_unset_container,
    .container_open = t_container_open,
    .container_set_iommu = t_set_iommu,
    .listener_register = t_listener,
    .container_close = t_container_close,
};

/* seed 000 ("Error path has more exit paths versus upstream"): whichever
 * step of vfio_connect_container() fails, the uncoordinated discard
 * counter is back at its start value and nothing stays open. */
static void
test_vfio_connect_fault_injection(void)
{
    vfio_device_config cfg = { .alias = "hostdev0", .host = "0000:01:00.0",
                               .kind = VFIO_KIND_PCI, .group = 1 };

    for (fail_at = STEP_GROUP_OPEN; fail_at < STEP_LAST; fail_at++) {
        vmm_machine_config mc = { .type = VMM_MACHINE_Q35, .kvm = true,
                                  .kvm_sync_mmu = true, .vfio_backend = &failing_backend };
        g_autoptr(vmm_machine) m = vmm_machine__new(&mc);
        g_autoptr(GError) err = NULL;
        unsigned start = m->discard.uncoordinated_discard_disabled;

        g_test_message("failing step %d", fail_at);
        g_assert_null(vfio_device__realize(m, &cfg, &err));
        g_assert_error(err, VMM_ERROR, VMM_ERR_VFIO_BACKEND);
        g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, start);
        g_assert_cmpuint(m->discard.inhibitors->len, ==, 0);
        g_assert_cmpuint(m->groups->len, ==, 0);
        g_assert_cmpint(open_groups, ==, 0);
        g_assert_cmpint(open_containers, ==, 0);
        g_assert_cmpint(attached, ==, 0);
    }
    fail_at = -1;
}

/* The same with a container already in the address space: the second
 * group cannot join it, and creating its own container fails. */
static void
test_vfio_connect_fault_existing_container(void)
{
    vmm_machine_config mc = { .type = VMM_MACHINE_Q35, .kvm = true,
                              .kvm_sync_mmu = true, .vfio_backend = &failing_backend };
    g_autoptr(vmm_machine) m = vmm_machine__new(&mc);
    vfio_device_config a = { .alias = "a", .host = "0000:3b:00.1", .kind = VFIO_KIND_PCI, .group = 20 };
    vfio_device_config b = { .alias = "b", .host = "0000:3b:00.2", .kind = VFIO_KIND_PCI, .group = 21 };
    g_autoptr(GError) err = NULL;

    fail_at = -1;
    g_assert_nonnull(vfio_device__realize(m, &a, NULL));
    g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, 1);
    fail_at = STEP_SET_CONTAINER;
    g_assert_null(vfio_device__realize(m, &b, &err));
    g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, 1);
    g_assert_cmpuint(m->groups->len, ==, 1);
    fail_at = -1;
    g_clear_pointer(&m, vmm_machine__free);
    g_assert_cmpint(open_groups, ==, 0);
    g_assert_cmpint(open_containers, ==, 0);
    g_assert_cmpint(attached, ==, 0);
}

/* Unrealize gives every disable back: a machine freed after a full run
 * leaves the counters at zero (no leaked inhibitor). */
static void
test_vfio_unrealize_releases(void)
{
    vmm_machine_config mc = { .type = VMM_MACHINE_Q35, .kvm = true, .kvm_sync_mmu = true };
    g_autoptr(vmm_machine) m = vmm_machine__new(&mc);
    vfio_device_config gpu = { .alias = "gpu", .host = "0000:01:00.0", .kind = VFIO_KIND_PCI, .group = 1 };
    vfio_device_config audio = { .alias = "audio", .host = "0000:01:00.1", .kind = VFIO_KIND_PCI, .group = 1 };
    vfio_device *d1, *d2;

    d1 = vfio_device__realize(m, &gpu, NULL);
    d2 = vfio_device__realize(m, &audio, NULL);
    g_assert_nonnull(d1);
    g_assert_nonnull(d2);
    g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, 1);
    g_assert_true(virtio_balloon__inhibited(m));
    vfio_device__unrealize(m, d2);
    g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, 1);
    vfio_device__unrealize(m, d1);
    g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, 0);
    g_assert_cmpuint(m->groups->len, ==, 0);
    g_assert_false(virtio_balloon__inhibited(m));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/discard-manager/qemu-6.0-ebusy-rules", test_discard_manager_ebusy);
    g_test_add_func("/vfio/seed000-connect-fault-injection", test_vfio_connect_fault_injection);
    g_test_add_func("/vfio/seed000-fault-with-existing-container", test_vfio_connect_fault_existing_container);
    g_test_add_func("/vfio/unrealize-releases-disable", test_vfio_unrealize_releases);
    return g_test_run();
}

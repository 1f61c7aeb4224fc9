/*
 * container.c: VFIO address spaces, containers and groups, and the
 * backend steps that connect them (after QEMU hw/vfio/common.c and
 * hw/vfio/container.c: vfio_get_group(), vfio_connect_container()).
 */
#include "vfio/container.h"
#include "dmg_array.h"

#include <inttypes.h>
#include <errno.h>

#include "dmg_i18n.h"
#include "vfio/listener.h"
#include "virtio/memory_device.h"
#include "viommu.h"

/* ------------------------------------------------------------------ */
/* The dry-run backend: every step succeeds, nothing is opened.         */

static int
dry_group_open(vfio_group *group, GError **error)
{
    return 0;
}

static int
dry_group_set_container(vfio_group *group, vfio_container *c, GError **error)
{
    return 0;
}

static int
dry_container_step(vfio_container *c, GError **error)
{
    return 0;
}

const vfio_backend_ops vfio_backend_dry = {
    .name = "dry-run",
    .group_open = dry_group_open,
    .group_set_container = dry_group_set_container,
    .container_open = dry_container_step,
    .container_set_iommu = dry_container_step,
    .listener_register = dry_container_step,
};

const vfio_backend_ops *
vfio_backend(vmm_machine *m)
{
    return m->cfg.vfio_backend ? m->cfg.vfio_backend : &vfio_backend_dry;
}

/* ------------------------------------------------------------------ */
/* Address spaces                                                      */

vfio_address_space *
vfio_address_space__get(vmm_machine *m, const char *name, bool behind_viommu)
{
    vfio_address_space *space;

    for (guint i = 0; i < m->address_spaces->len; i++) {
        space = g_ptr_array_index(m->address_spaces, i);
        if (g_strcmp0(space->name, name) == 0)
            return space;
    }
    space = g_new0(vfio_address_space, 1);
    space->name = g_strdup(name);
    space->viommu = behind_viommu;
    space->containers = g_ptr_array_new();
    g_ptr_array_add(m->address_spaces, space);
    return space;
}

void
vfio_address_space__free(vfio_address_space *space)
{
    g_ptr_array_unref(space->containers);
    g_free(space->name);
    g_free(space);
}

/* ------------------------------------------------------------------ */
/* Containers                                                          */

static void
vfio_container__free(vmm_machine *m, vfio_container *c)
{
    const vfio_backend_ops *ops = vfio_backend(m);

    vfio_container__unlisten(c);
    if (ops->container_close)
        ops->container_close(c);
    g_ptr_array_remove(c->space->containers, c);
    g_ptr_array_unref(c->groups);
    g_free(c);
}

/* The discard disable of vfio_ram_block_discard_disable(): type1 keeps
 * coordinated discard (virtio-mem) legal and refuses only the balloon. */
int
vfio_group__discard_disable(vmm_machine *m, vfio_group *group, bool state,
                            GError **error)
{
    int ret;

    if (m->cfg.test_bypass_discard_inhibit)
        return 0;
    ret = discard_manager__uncoordinated_disable(&m->discard, state, &group->inhibitor);

    if (ret < 0) {
        g_set_error(error, VMM_ERROR, VMM_ERR_DISCARD_BUSY,
                    _("IOMMU group %d: cannot disable uncoordinated RAM discard because another device requires discarded RAM to stay discarded (%s); VFIO would map stale pages"),
                    group->id, g_strerror(-ret));
        return -1;
    }
    group->discard_disabled = state;
    return 0;
}

/* Try the containers already in the address space (seed 000: reuse). */
static bool
vfio_group__join_existing(vmm_machine *m, vfio_group *group,
                          vfio_address_space *space)
{
    const vfio_backend_ops *ops = vfio_backend(m);

    for (guint i = 0; i < space->containers->len; i++) {
        vfio_container *c = g_ptr_array_index(space->containers, i);

        if (ops->group_set_container(group, c, NULL) == 0) {
            group->container = c;
            g_ptr_array_add(c->groups, group);
            return true;
        }
    }
    return false;
}

static vfio_container *
vfio_container__create(vmm_machine *m, vfio_group *group,
                       vfio_address_space *space, const char *device,
                       GError **error)
{
    const vfio_backend_ops *ops = vfio_backend(m);
    vfio_container *c = g_new0(vfio_container, 1);

    c->fd = -1;
    c->space = space;
    c->groups = g_ptr_array_new();
    c->dma_max_mappings = m->cfg.dma_entry_limit;
    if (ops->container_open(c, error) < 0)
        goto err_free;
    if (ops->group_set_container(group, c, error) < 0)
        goto err_close;
    if (ops->container_set_iommu(c, error) < 0)
        goto err_unset;
    /* A vIOMMU learns here that VFIO listens to its IOMMU region
     * (vtd_iommu_notify_flag_changed) and may refuse. */
    if (space->viommu && m->iommu && !viommu__notify_vfio(m->iommu, device, error))
        goto err_unset;
    if (ops->listener_register(c, error) < 0)
        goto err_unset;
    g_ptr_array_add(space->containers, c);
    g_ptr_array_add(c->groups, group);
    group->container = c;
    vfio_container__check_dma_limit(m, c);
    return c;

 err_unset:
    if (ops->group_unset_container)
        ops->group_unset_container(group, c);
 err_close:
    if (ops->container_close)
        ops->container_close(c);
 err_free:
    g_ptr_array_unref(c->groups);
    g_free(c);
    return NULL;
}

/* vfio_connect_container().  Seed 002 (v3): the discard disable comes
 * before any container is tried, because VFIO_GROUP_SET_CONTAINER on a
 * container that already has mappings may pin at once.  Every failure
 * below drops it again (seed 000, "Error path has more exit paths"). */
static int
vfio_group__connect(vmm_machine *m, vfio_group *group,
                    vfio_address_space *space, const char *device,
                    GError **error)
{
    if (vfio_group__discard_disable(m, group, true, error) < 0)
        return -1;
    if (vfio_group__join_existing(m, group, space))
        return 0;
    if (!vfio_container__create(m, group, space, device, error)) {
        vfio_group__discard_disable(m, group, false, NULL);
        return -1;
    }
    return 0;
}

static void
vfio_group__disconnect(vmm_machine *m, vfio_group *group)
{
    const vfio_backend_ops *ops = vfio_backend(m);
    vfio_container *c = group->container;

    if (ops->group_unset_container)
        ops->group_unset_container(group, c);
    dmg_ptr_array_remove_from_end(c->groups, group);
    group->container = NULL;
    if (c->groups->len == 0)
        vfio_container__free(m, c);
    if (group->discard_disabled)
        vfio_group__discard_disable(m, group, false, NULL);
}

/* ------------------------------------------------------------------ */
/* Groups                                                              */

static vfio_group *
vfio_group__find(vmm_machine *m, int id)
{
    /* An index, not a scan: one lookup per device realized. */
    return g_hash_table_lookup(m->group_index, GINT_TO_POINTER(id));
}

static void
vfio_group__free(vfio_group *group)
{
    discard_inhibitor__clear(&group->inhibitor);
    g_ptr_array_unref(group->devices);
    g_free(group);
}

vfio_group *
vfio_group__get(vmm_machine *m, int id, vfio_address_space *space,
                const char *device, GError **error)
{
    const vfio_backend_ops *ops = vfio_backend(m);
    vfio_group *group = vfio_group__find(m, id);

    if (group) {
        if (group->container->space != space) {
            /* vfio_get_group(): "group %d used in multiple address spaces" */
            g_set_error(error, VMM_ERROR, VMM_ERR_GROUP_ADDRESS_SPACE,
                        _("%s: vfio: group %d used in multiple address spaces (%s and %s). With a vIOMMU every guest PCI function gets its own DMA address space, but the devices of one host IOMMU group must share one: put them behind one pcie-to-pci-bridge, or assign only one device of the group"),
                        device, id, group->container->space->name, space->name);
            return NULL;
        }
        return group;
    }
    group = g_new0(vfio_group, 1);
    group->id = id;
    group->fd = -1;
    group->devices = g_ptr_array_new();
    discard_inhibitor__init(&group->inhibitor, "vfio-group", id);
    if (ops->group_open(group, error) < 0)
        goto err_free;
    if (vfio_group__connect(m, group, space, device, error) < 0)
        goto err_close;
    g_ptr_array_add(m->groups, group);
    g_hash_table_insert(m->group_index, GINT_TO_POINTER(id), group);
    return group;

 err_close:
    if (ops->group_close)
        ops->group_close(group);
 err_free:
    vfio_group__free(group);
    return NULL;
}

void
vfio_group__put(vmm_machine *m, vfio_group *group)
{
    const vfio_backend_ops *ops = vfio_backend(m);

    if (!group || group->devices->len > 0)
        return;
    vfio_group__disconnect(m, group);
    if (ops->group_close)
        ops->group_close(group);
    g_hash_table_remove(m->group_index, GINT_TO_POINTER(group->id));
    dmg_ptr_array_remove_from_end(m->groups, group);
    vfio_group__free(group);
}

/* ------------------------------------------------------------------ */
/* virtio-mem and the type1 DMA entry limit                            */

/* vfio_ram_discard_register_listener(): each virtio-mem block may become
 * its own DMA mapping, and every other memslot one more. */
void
vfio_container__check_dma_limit(vmm_machine *m, vfio_container *c)
{
    guint64 mappings = 0, count = memory_devices__virtio_mem_count(m);
    guint64 max_memslots = m->cfg.kvm && m->cfg.kvm_nr_memslots
                           ? m->cfg.kvm_nr_memslots : 512;
    g_autofree char *msg = NULL;

    if (c->space->viommu || !c->dma_max_mappings || !count || c->dma_limit_warned)
        return;
    for (guint i = 0; i < m->memory_devices->len; i++) {
        memory_device *md = g_ptr_array_index(m->memory_devices, i);

        if (md->cfg.model == MEMORY_DEVICE_VIRTIO_MEM)
            mappings += (md->cfg.size + md->cfg.block_size - 1) / md->cfg.block_size;
    }
    if (mappings + max_memslots - count <= c->dma_max_mappings)
        return;
    c->dma_limit_warned = true;
    msg = g_strdup_printf(_("possibly running out of DMA mappings: virtio-mem may need %" PRIu64 " mappings plus %" PRIu64 " memslots, but vfio_iommu_type1 allows %" PRIu64 "; increase the virtio-mem <block> size or raise vfio_iommu_type1's dma_entry_limit"),
                          mappings, max_memslots - count, c->dma_max_mappings);
    vmm_findings__warn(&m->findings, "dma-entry-limit", NULL, msg);
}

void
vfio_containers__memory_device_plugged(vmm_machine *m)
{
    for (guint i = 0; i < m->address_spaces->len; i++) {
        vfio_address_space *space = g_ptr_array_index(m->address_spaces, i);

        for (guint j = 0; j < space->containers->len; j++)
            vfio_container__check_dma_limit(m, g_ptr_array_index(space->containers, j));
    }
}

/*
 * vfio/listener.c: VFIO's memory listener and the RamDiscardManager.
 */
#include "vfio/listener.h"

#include <errno.h>
#include <inttypes.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/mman.h>

#include "dmg_i18n.h"
#include "migration/state.h"

#define PAGE 4096ULL
/* x86's MSI window is never DMA memory (VFIO reports it as a reserved
 * IOVA range, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE). */
#define MSI_WINDOW_START 0xfee00000ULL
#define MSI_WINDOW_END   0xfef00000ULL

typedef struct {
    memory_listener l;                   /* first: the callbacks cast back */
    vmm_machine *m;
    vfio_container *c;
    bool external;
    guint64 mapped_pages;
    GError *error;
} vfio_memory_listener;

typedef struct {
    vfio_memory_listener *vl;
    guint64 iova_base;                   /* where offset 0 of the region is */
} rdm_registration;

struct ram_discard_manager {
    memory_region *mr;
    guint64 block_size;
    guint8 *plugged;                     /* one byte per block */
    guint64 nr_blocks;
    GArray *registrations;               /* rdm_registration */
};

static const vfio_backend_ops *
listener_ops(vfio_memory_listener *vl)
{
    return vl->m->cfg.vfio_backend;
}

static void
listener_error(vfio_memory_listener *vl, GError *err)
{
    if (!vl->error)
        vl->error = err;
    else
        g_error_free(err);
}

static void
listener_map(vfio_memory_listener *vl, guint64 iova, guint64 size, void *hva)
{
    GError *err = NULL;

    if (listener_ops(vl)->dma_map(vl->c, iova, size, hva, false, &err) < 0)
        listener_error(vl, err);
    else
        vl->mapped_pages += size / PAGE;
}

static void
listener_unmap(vfio_memory_listener *vl, guint64 iova, guint64 size)
{
    GError *err = NULL;

    if (listener_ops(vl)->dma_unmap(vl->c, iova, size, &err) < 0)
        listener_error(vl, err);
    else
        vl->mapped_pages -= size / PAGE;
}

/* Map or unmap [iova, iova+size) except the reserved MSI window. */
static void
listener_apply(vfio_memory_listener *vl, guint64 iova, guint64 size, guint8 *hva, bool map)
{
    guint64 end = iova + size;
    guint64 pieces[2][2] = { { iova, MIN(end, MSI_WINDOW_START) },
                             { MAX(iova, MSI_WINDOW_END), end } };

    for (int i = 0; i < 2; i++) {
        guint64 s = pieces[i][0], e = pieces[i][1];

        if (s >= e)
            continue;
        if (map)
            listener_map(vl, s, e - s, hva + (s - iova));
        else
            listener_unmap(vl, s, e - s);
    }
}

static guint8 *
section_hva(const memory_region_section *s)
{
    return (guint8 *)s->mr->ram + s->offset_within_region;
}

/* ------------------------------------------------------------------ */
/* RamDiscardManager                                                   */

ram_discard_manager *
ram_discard_manager__new(memory_region *mr, guint64 block_size)
{
    ram_discard_manager *rdm = g_new0(ram_discard_manager, 1);

    rdm->mr = mr;
    rdm->block_size = block_size;
    rdm->nr_blocks = mr->size / block_size;
    rdm->plugged = g_new0(guint8, rdm->nr_blocks);
    rdm->registrations = g_array_new(FALSE, FALSE, sizeof(rdm_registration));
    mr->rdm = rdm;
    return rdm;
}

void
ram_discard_manager__free(ram_discard_manager *rdm)
{
    if (!rdm)
        return;
    rdm->mr->rdm = NULL;
    g_array_unref(rdm->registrations);
    g_free(rdm->plugged);
    g_free(rdm);
}

guint64
ram_discard_manager__plugged_bytes(const ram_discard_manager *rdm)
{
    guint64 n = 0;

    for (guint64 b = 0; b < rdm->nr_blocks; b++)
        n += rdm->plugged[b];
    return n * rdm->block_size;
}

static gboolean
rdm_check(ram_discard_manager *rdm, guint64 offset, guint64 size, GError **error)
{
    if (offset % rdm->block_size || size % rdm->block_size ||
        offset + size > rdm->nr_blocks * rdm->block_size || !size) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("virtio-mem %s: range 0x%llx+0x%llx is not a whole number of %llu KiB blocks inside the device"),
                    rdm->mr->name, (unsigned long long)offset, (unsigned long long)size,
                    (unsigned long long)(rdm->block_size >> 10));
        return FALSE;
    }
    return TRUE;
}

/* virtio_mem_notify_plug(): VFIO maps a block before the guest uses it. */
gboolean
ram_discard_manager__plug(ram_discard_manager *rdm, guint64 offset, guint64 size,
                          GError **error)
{
    if (!rdm_check(rdm, offset, size, error))
        return FALSE;
    for (guint64 o = offset; o < offset + size; o += rdm->block_size) {
        if (rdm->plugged[o / rdm->block_size])
            continue;
        rdm->plugged[o / rdm->block_size] = 1;
        for (guint i = 0; i < rdm->registrations->len; i++) {
            rdm_registration *r = &g_array_index(rdm->registrations, rdm_registration, i);

            listener_apply(r->vl, r->iova_base + o, rdm->block_size,
                           (guint8 *)rdm->mr->ram + o, true);
        }
    }
    return TRUE;
}

/* virtio_mem_notify_unplug() then ram_block_discard_range(): VFIO unmaps
 * (unpins) first, so the discard really returns the memory. */
gboolean
ram_discard_manager__unplug(ram_discard_manager *rdm, guint64 offset, guint64 size,
                            GError **error)
{
    if (!rdm_check(rdm, offset, size, error))
        return FALSE;
    for (guint64 o = offset; o < offset + size; o += rdm->block_size) {
        if (!rdm->plugged[o / rdm->block_size])
            continue;
        for (guint i = 0; i < rdm->registrations->len; i++) {
            rdm_registration *r = &g_array_index(rdm->registrations, rdm_registration, i);

            listener_apply(r->vl, r->iova_base + o, rdm->block_size, NULL, false);
        }
        if (!memory_region__discard(rdm->mr, o, rdm->block_size, error))
            return FALSE;
        rdm->plugged[o / rdm->block_size] = 0;
    }
    return TRUE;
}

static void
rdm_register(ram_discard_manager *rdm, vfio_memory_listener *vl,
             const memory_region_section *s)
{
    rdm_registration r = { vl, s->offset_within_address_space - s->offset_within_region };

    g_array_append_val(rdm->registrations, r);
    /* vfio_ram_discard_register_listener(): replay the populated blocks. */
    for (guint64 b = 0; b < rdm->nr_blocks; b++) {
        guint64 o = b * rdm->block_size;

        if (rdm->plugged[b] && o >= s->offset_within_region &&
            o + rdm->block_size <= s->offset_within_region + s->size)
            listener_apply(vl, r.iova_base + o, rdm->block_size, (guint8 *)rdm->mr->ram + o, true);
    }
}

static void
rdm_unregister(ram_discard_manager *rdm, vfio_memory_listener *vl)
{
    for (guint i = 0; i < rdm->registrations->len; i++) {
        rdm_registration *r = &g_array_index(rdm->registrations, rdm_registration, i);

        if (r->vl != vl)
            continue;
        for (guint64 b = 0; b < rdm->nr_blocks; b++) {
            if (rdm->plugged[b])
                listener_apply(vl, r->iova_base + b * rdm->block_size, rdm->block_size, NULL, false);
        }
        g_array_remove_index(rdm->registrations, i);
        return;
    }
}

/* ------------------------------------------------------------------ */
/* The listener                                                        */

static void
vfio_region_add(memory_listener *l, const memory_region_section *s)
{
    vfio_memory_listener *vl = (vfio_memory_listener *)l;

    /* MMIO and IOMMU regions are never mapped; with a vIOMMU the guest's
     * own mappings come through the vIOMMU's notifications instead. */
    if (s->mr->type != MR_RAM || vl->external)
        return;
    if (s->mr->rdm) {
        rdm_register(s->mr->rdm, vl, s);
        return;
    }
    listener_apply(vl, s->offset_within_address_space, s->size, section_hva(s), true);
}

static void
vfio_region_del(memory_listener *l, const memory_region_section *s)
{
    vfio_memory_listener *vl = (vfio_memory_listener *)l;

    if (s->mr->type != MR_RAM || vl->external)
        return;
    if (s->mr->rdm) {
        rdm_unregister(s->mr->rdm, vl);
        return;
    }
    listener_apply(vl, s->offset_within_address_space, s->size, NULL, false);
}

gboolean
vfio_container__listen(vmm_machine *m, vfio_container *c, bool external, GError **error)
{
    vfio_memory_listener *vl;

    if (c->listener || !m->memory || !m->cfg.vfio_backend || !m->cfg.vfio_backend->dma_map)
        return TRUE;
    vl = g_new0(vfio_memory_listener, 1);
    vl->l = (memory_listener){ .region_add = vfio_region_add,
                               .region_del = vfio_region_del,
                               .priority = 0 };   /* before KVM, as in QEMU */
    vl->m = m;
    vl->c = c;
    vl->external = external;
    c->listener = vl;
    memory_listener__register(&vl->l, m->memory);
    if (vl->error) {
        g_propagate_error(error, g_steal_pointer(&vl->error));
        vfio_container__unlisten(c);
        return FALSE;
    }
    return TRUE;
}

void
vfio_container__unlisten(vfio_container *c)
{
    vfio_memory_listener *vl = c->listener;

    if (!vl)
        return;
    memory_listener__unregister(&vl->l);
    g_clear_error(&vl->error);
    c->listener = NULL;
    g_free(vl);
}

guint64
vfio_container__mapped_pages(const vfio_container *c)
{
    return c->listener ? ((vfio_memory_listener *)c->listener)->mapped_pages : 0;
}

/* ------------------------------------------------------------------ */
/* vIOMMU notifications                                                */

static vfio_memory_listener *
viommu_listener(vmm_machine *m, const char *alias, GError **error)
{
    for (guint i = 0; i < m->devices->len; i++) {
        vfio_device *dev = g_ptr_array_index(m->devices, i);
        vfio_container *c;

        if (g_strcmp0(dev->alias, alias) != 0)
            continue;
        c = dev->group->container;
        if (!c->space->viommu || !c->listener) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        _("%s: the device is not behind a vIOMMU in a running machine; its DMA space is guest memory itself"),
                        alias);
            return NULL;
        }
        return c->listener;
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                _("no VFIO device named %s"), alias);
    return NULL;
}

gboolean
vfio_viommu__map(vmm_machine *m, const char *alias, guint64 iova, guint64 gpa,
                 guint64 size, GError **error)
{
    vfio_memory_listener *vl = viommu_listener(m, alias, error);
    memory_region_section s;

    if (!vl)
        return FALSE;
    /* vfio_get_xlat_addr(): the target must be RAM, never MMIO. */
    if (!address_space__lookup(m->memory, gpa, &s) || s.mr->type != MR_RAM ||
        gpa + size > s.offset_within_address_space + s.size) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: vIOMMU mapping of iova 0x%" PRIx64 " targets 0x%" PRIx64 "+0x%" PRIx64 ", which is not guest RAM"),
                    alias, iova, gpa, size);
        return FALSE;
    }
    /* seed 004, vfio_listener_region_add(): with x-migration-iommu-pt on
     * every device, a vIOMMU mapping during a migration cancels it
     * (vfio_set_migration_error(-EOPNOTSUPP)); the mapping still works. */
    if (migration__active(m) && vfio_devices__all_iommu_passthrough(m))
        migration__set_error(m, _("migration cancelled: %s mapped DMA through the vIOMMU (iova 0x%" PRIx64 ") while migrating; the guest uses the vIOMMU beyond interrupt remapping, which x-migration-iommu-pt promised it would not (seed 004)"),
                             alias, iova);
    listener_map(vl, iova, size, section_hva(&s) + (gpa - s.offset_within_address_space));
    if (vl->error) {
        g_propagate_error(error, g_steal_pointer(&vl->error));
        return FALSE;
    }
    return TRUE;
}

gboolean
vfio_viommu__unmap(vmm_machine *m, const char *alias, guint64 iova, guint64 size,
                   GError **error)
{
    vfio_memory_listener *vl = viommu_listener(m, alias, error);

    if (!vl)
        return FALSE;
    listener_unmap(vl, iova, size);
    if (vl->error) {
        g_propagate_error(error, g_steal_pointer(&vl->error));
        return FALSE;
    }
    return TRUE;
}

/* seed 004: vfio_devices_all_iommu_passthrough(). */
bool
vfio_devices__all_iommu_passthrough(vmm_machine *m)
{
    for (guint i = 0; i < m->groups->len; i++) {
        vfio_group *g = g_ptr_array_index(m->groups, i);

        for (guint j = 0; j < g->devices->len; j++) {
            if (!((vfio_device *)g_ptr_array_index(g->devices, j))->iommu_passthrough)
                return false;
        }
    }
    return true;
}

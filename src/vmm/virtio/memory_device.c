/*
 * virtio/memory_device.c: pc-dimm and virtio-mem.
 */
#include "virtio/memory_device.h"

#include <errno.h>

#include "dmg_i18n.h"

/* virtio_mem_device_realize(): virtio-mem discards in coordination with
 * VFIO through its RamDiscardManager, so only a hard disable stops it. */
static bool
virtio_mem__realize(vmm_machine *m, const memory_device_config *cfg,
                    guint64 page_size, GError **error)
{
    /* virtio_mem_device_realize() (hw/virtio/virtio-mem.c, QEMU 7.2): a
     * block must hold whole pages of its backend. */
    if (cfg->block_size < page_size) {
        g_autofree char *hex = g_strdup_printf("0x%" G_GINT64_MODIFIER "x", page_size);

        g_set_error(error, VMM_ERROR, VMM_ERR_VIRTIO_MEM_BLOCK_SIZE,
                    _("%s: 'block-size' property has to be at least the page size (%s); give <block> at least the backend's page size"),
                    cfg->alias, hex);
        return false;
    }
    /* ... and the backend a whole number of blocks (QEMU's words, its
     * missing space included).  libvirt rounds a module to 2 MiB
     * (qemuDomainAlignMemorySizes()), not to the block size. */
    if (cfg->block_size && cfg->size % cfg->block_size) {
        g_autofree char *hex = g_strdup_printf("0x%" G_GINT64_MODIFIER "x", cfg->block_size);

        g_set_error(error, VMM_ERROR, VMM_ERR_VIRTIO_MEM_BLOCK_SIZE,
                    _("%s: 'memdev' property memdev size has to be multiples of'block-size' (%s); give <size> as a multiple of <block>"),
                    cfg->alias, hex);
        return false;
    }
    if (discard_manager__coordinated_require(&m->discard, true) < 0) {
        g_set_error(error, VMM_ERROR, VMM_ERR_DISCARD_BUSY,
                    _("%s: discarding RAM is disabled (%s), so virtio-mem cannot unplug memory; remove <locked/> from <memoryBacking> or use a KVM with a synchronous MMU"),
                    cfg->alias, g_strerror(EBUSY));
        return false;
    }
    return true;
}

memory_device *
memory_device__realize(vmm_machine *m, const memory_device_config *cfg,
                       GError **error)
{
    guint64 page_size = cfg->page_size == VMM_PAGE_SIZE_SMALL ? 0
                      : cfg->page_size ? cfg->page_size : m->cfg.backend_page_size;
    memory_device *md;

    if (cfg->model == MEMORY_DEVICE_VIRTIO_MEM &&
        !virtio_mem__realize(m, cfg, page_size, error))
        return NULL;
    md = g_new0(memory_device, 1);
    md->cfg = *cfg;
    md->alias = g_strdup(cfg->alias);
    md->cfg.alias = md->alias;
    md->page_size = page_size;
    g_ptr_array_add(m->memory_devices, md);
    /* The VFIO listener learns of the new RamDiscardManager section. */
    if (cfg->model == MEMORY_DEVICE_VIRTIO_MEM && m->memory_device_plugged)
        m->memory_device_plugged(m);
    return md;
}

void
memory_device__free(memory_device *md)
{
    if (!md)
        return;
    g_free(md->alias);
    g_free(md);
}

guint
memory_devices__virtio_mem_count(const vmm_machine *m)
{
    guint n = 0;

    for (guint i = 0; i < m->memory_devices->len; i++) {
        const memory_device *md = g_ptr_array_index(m->memory_devices, i);

        n += md->cfg.model == MEMORY_DEVICE_VIRTIO_MEM;
    }
    return n;
}

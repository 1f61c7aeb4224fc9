/*
 * listener.h: keep a VFIO container's DMA mappings in sync with guest
 * memory (QEMU's vfio_listener_region_add/del, hw/vfio/common.c): map RAM
 * sections as they appear, unmap them as they go, never map MMIO, skip
 * reserved IOVA ranges, and for a RAM region with a RamDiscardManager
 * (virtio-mem) map only the populated blocks, following its notifications.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "memory/memory.h"
#include "vfio/vfio.h"

/* Start mapping the machine's memory into @c.  A container whose devices
 * are all mediated (an external IOMMU domain: the vendor driver pins
 * what it uses, as vfio_pin_pages does) maps nothing up front. */
gboolean vfio_container__listen(vmm_machine *m, vfio_container *c, bool external,
                                GError **error);
void vfio_container__unlisten(vfio_container *c);

/* Pages mapped (and so pinned) by @c through its listener. */
guint64 vfio_container__mapped_pages(const vfio_container *c);

/* The vIOMMU's map/unmap notifications (vtd_iommu_notify ->
 * vfio_iommu_map_notify): the guest, or the host on its behalf, maps
 * @size bytes of device @alias's DMA space at @iova to guest physical
 * @gpa, and VFIO maps exactly that into the device's container. */
gboolean vfio_viommu__map(vmm_machine *m, const char *alias, guint64 iova,
                          guint64 gpa, guint64 size, GError **error);
gboolean vfio_viommu__unmap(vmm_machine *m, const char *alias, guint64 iova,
                            guint64 size, GError **error);

/* A RamDiscardManager (virtio-mem): which blocks of a RAM region are
 * plugged.  Plug maps the blocks into every listening container before the
 * guest may use them; unplug unmaps them and only then discards. */
ram_discard_manager *ram_discard_manager__new(memory_region *mr, guint64 block_size);
void ram_discard_manager__free(ram_discard_manager *rdm);
gboolean ram_discard_manager__plug(ram_discard_manager *rdm, guint64 offset,
                                   guint64 size, GError **error);
gboolean ram_discard_manager__unplug(ram_discard_manager *rdm, guint64 offset,
                                     guint64 size, GError **error);
guint64 ram_discard_manager__plugged_bytes(const ram_discard_manager *rdm);

/* seed 004: vfio_devices_all_iommu_passthrough(): every VFIO device of the
 * machine has x-migration-iommu-pt. */
bool vfio_devices__all_iommu_passthrough(vmm_machine *m);

/*
 * container.h: VFIO address spaces, containers and groups (QEMU
 * hw/vfio/container.c).
 */
#pragma once

#include "vfio/vfio.h"

/* The backend a machine's VFIO objects use: the configured one, or the
 * dry run. */
const vfio_backend_ops *vfio_backend(vmm_machine *m);

/* vfio_get_group()/vfio_put_group(). */
vfio_group *vfio_group__get(vmm_machine *m, int id, vfio_address_space *space,
                            const char *device, GError **error);
void vfio_group__put(vmm_machine *m, vfio_group *group);
/* vfio_ram_block_discard_disable() for one group. */
int vfio_group__discard_disable(vmm_machine *m, vfio_group *group, bool state,
                                GError **error);

vfio_address_space *vfio_address_space__get(vmm_machine *m, const char *name,
                                            bool viommu);
void vfio_address_space__free(vfio_address_space *space);

/* The virtio-mem DMA mapping estimate for one container. */
void vfio_container__check_dma_limit(vmm_machine *m, vfio_container *c);
/* vmm_machine.memory_device_plugged: every container checks its estimate
 * again. */
void vfio_containers__memory_device_plugged(vmm_machine *m);

/*
 * device.h: VFIO devices (QEMU hw/vfio/pci.c vfio_realize()).
 */
#pragma once

#include "vfio/vfio.h"

/* vfio_realize(): attach the group, opt in or out of discard, realize
 * migration.  On failure nothing it took is left held. */
vfio_device *vfio_device__realize(vmm_machine *m, const vfio_device_config *cfg,
                                  GError **error);
void vfio_device__unrealize(vmm_machine *m, vfio_device *dev);

/*
 * viommu.h: the guest-visible IOMMU (intel-iommu, amd-iommu, virtio-iommu,
 * smmuv3).  In a dry run it checks its configuration the way libvirt and
 * QEMU do at start and gives each PCI device its own DMA address space.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "machine_state.h"

typedef enum {
    VIOMMU_INTEL,
    VIOMMU_SMMUV3,
    VIOMMU_VIRTIO,
    VIOMMU_AMD,
} viommu_model;

typedef struct viommu_config {
    viommu_model model;
    const char *alias;
    vmm_switch intremap;
    vmm_switch caching_mode;
    vmm_switch eim;
    vmm_switch iotlb;
    unsigned aw_bits;                    /* 0: unset */
    vmm_switch dma_translation;          /* unset means on */
    vmm_switch passthrough;
    vmm_pci_addr guest;                  /* virtio-iommu-pci's address */
} viommu_config;

struct viommu {
    viommu_config cfg;
    char *alias;
};

/* Realize; configuration errors become error findings on @m, every
 * independent one, and the vIOMMU still exists for the devices behind it. */
viommu *viommu__realize(vmm_machine *m, const viommu_config *cfg);
void viommu__free(viommu *iommu);

/* A VFIO container starts listening to this IOMMU's region. */
bool viommu__notify_vfio(viommu *iommu, const char *device, GError **error);
const char *viommu__name(const viommu *iommu);
/* Report mode: go on as if the user had set caching_mode='on'. */
void viommu__assume_caching_mode(viommu *iommu);
bool viommu__dma_translation_off(const viommu *iommu);

/*
 * vfio/vfio.h: the types of VFIO containers, groups and devices, after QEMU's
 * include/hw/vfio/vfio-common.h (container.c and device.c hold the code).
 * Groups are attached to containers per address space;
 * each attached group disables uncoordinated RAM discard once (seeds 000,
 * 002).  The IOMMU backend (type1, soft, or the dry run) sits behind
 * vfio_backend_ops.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "machine_state.h"
#include "virtio/discard_manager.h"

typedef struct vfio_container vfio_container;
typedef struct vfio_group vfio_group;
typedef struct vfio_migration vfio_migration;   /* vfio/migration_v2.h */

/* An AddressSpace as VFIO sees it: the machine's memory, or the per-device
 * DMA space a vIOMMU creates. */
typedef struct vfio_address_space {
    char *name;
    bool viommu;                         /* not address_space_memory */
    GPtrArray *containers;               /* vfio_container * */
} vfio_address_space;

struct vfio_container {
    vfio_address_space *space;
    GPtrArray *groups;                   /* vfio_group * */
    int fd;                              /* -1 in a dry run */
    guint64 dma_max_mappings;            /* type1's dma_entry_limit */
    bool dma_limit_warned;
    void *backend_data;
    void *listener;                      /* vfio/listener.c, when memory runs */
};

struct vfio_group {
    int id;
    int fd;
    vfio_container *container;
    GPtrArray *devices;                  /* vfio_device * */
    bool ram_block_discard_allowed;
    bool discard_disabled;               /* holds an uncoordinated disable */
    discard_inhibitor inhibitor;         /* code "vfio-group" */
    void *backend_data;
};

/* What the backend does at each step of vfio_connect_container().  Every
 * step may fail; the caller unwinds the steps before it. */
struct vfio_backend_ops {
    const char *name;
    int (*group_open)(vfio_group *group, GError **error);
    void (*group_close)(vfio_group *group);
    /* VFIO_GROUP_SET_CONTAINER on an existing container; -1 = try another */
    int (*group_set_container)(vfio_group *group, vfio_container *container,
                               GError **error);
    void (*group_unset_container)(vfio_group *group, vfio_container *container);
    int (*container_open)(vfio_container *container, GError **error);
    int (*container_set_iommu)(vfio_container *container, GError **error);
    int (*listener_register)(vfio_container *container, GError **error);
    void (*container_close)(vfio_container *container);
    /* VFIO_IOMMU_MAP_DMA / UNMAP_DMA: pin [vaddr, vaddr+size) and map it
     * at @iova, or unmap and unpin.  NULL in the dry run. */
    int (*dma_map)(vfio_container *container, guint64 iova, guint64 size,
                   void *vaddr, bool readonly, GError **error);
    int (*dma_unmap)(vfio_container *container, guint64 iova, guint64 size,
                     GError **error);
};

extern const vfio_backend_ops vfio_backend_dry;

typedef enum {
    VFIO_KIND_PCI,                       /* vfio-pci on a PCI function */
    VFIO_KIND_MDEV_PCI,                  /* vfio-pci on a mediated device */
    VFIO_KIND_CCW,                       /* vfio-ccw */
    VFIO_KIND_AP,                        /* vfio-ap */
} vfio_device_kind;

/* QEMU's OnOffAuto for enable-migration. */
typedef enum {
    VFIO_MIGRATION_AUTO,
    VFIO_MIGRATION_ON,
    VFIO_MIGRATION_OFF,
} vfio_enable_migration;

typedef struct vfio_device_config {
    const char *alias;
    const char *host;                    /* PCI address or mdev UUID */
    vfio_device_kind kind;
    int group;                           /* IOMMU group number */
    bool balloon_allowed;                /* x-balloon-allowed */
    vfio_enable_migration enable_migration;
    bool iommu_passthrough;              /* x-migration-iommu-pt */
    bool failover_pair;                  /* teaming: QEMU unplugs it instead */
    /* capabilities of the bound driver */
    const char *driver;
    bool caps_migration;
    bool caps_dirty_tracking;
    bool caps_p2p;
    bool iommu_dirty_tracking;           /* iommufd with a dirty-tracking IOMMU */
    vmm_pci_addr guest;                  /* the guest PCI address, if given */
    vmm_switch display;                  /* mdev vfio-pci: display= */
    bool ramfb;                          /* mdev vfio-pci: ramfb, on
                                          * vfio-pci-nohotplug */
} vfio_device_config;

typedef struct vfio_device {
    char *alias;
    char *host;
    char *driver;
    vfio_device_kind kind;
    vfio_group *group;
    bool ram_block_discard_allowed;
    bool balloon_allowed_prop;           /* x-balloon-allowed was set */
    vfio_enable_migration enable_migration;
    bool iommu_passthrough;
    vmm_pci_addr guest;
    vmm_switch display;
    bool ramfb;
    bool migration;                      /* VFIO migration initialized */
    bool p2p;
    bool device_dirty_tracking;          /* uses the device's own tracker */
    migration_blocker *blocker;
    vfio_migration *mig;                 /* the soft function, soft backend only */
} vfio_device;

/* vfio_viommu_preset(): the device's DMA goes through a vIOMMU. */
static inline bool
vfio_device__viommu_present(const vfio_device *dev)
{
    return dev->group && dev->group->container->space->viommu;
}

/*
 * domain_conf.h: the subset of libvirt's domain XML model that decides how
 * DMA, ballooning and migration interact.  Element and attribute names are
 * libvirt's (docs/formatdomain.rst); sizes are kept in bytes.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "conf_error.h"
#include "dmg_enum.h"


typedef enum {
    DMG_DOMAIN_VIRT_QEMU,
    DMG_DOMAIN_VIRT_KVM,
    DMG_DOMAIN_VIRT_HVF,         /* macOS Hypervisor.framework, which
                                  * libvirt's QEMU driver also runs */
    DMG_DOMAIN_VIRT_LAST
} dmgDomainVirtType;
DMG_ENUM_DECL(dmgDomainVirt);

typedef enum {
    DMG_IOAPIC_DEFAULT,
    DMG_IOAPIC_KVM,
    DMG_IOAPIC_QEMU,
    DMG_IOAPIC_LAST
} dmgIoapicDriver;
DMG_ENUM_DECL(dmgIoapic);

/* <launchSecurity type=...>, as libvirt 9.0 knows it
 * (virDomainLaunchSecurity). */
typedef enum {
    DMG_LAUNCH_SECURITY_NONE,
    DMG_LAUNCH_SECURITY_SEV,
    DMG_LAUNCH_SECURITY_S390_PV,
    DMG_LAUNCH_SECURITY_LAST
} dmgLaunchSecurity;
DMG_ENUM_DECL(dmgLaunchSecurity);

typedef enum {
    DMG_HOSTDEV_MODE_SUBSYS,
    DMG_HOSTDEV_MODE_CAPABILITIES,
    DMG_HOSTDEV_MODE_LAST
} dmgHostdevMode;
DMG_ENUM_DECL(dmgHostdevMode);

typedef enum {
    DMG_HOSTDEV_SUBSYS_USB,
    DMG_HOSTDEV_SUBSYS_PCI,
    DMG_HOSTDEV_SUBSYS_SCSI,
    DMG_HOSTDEV_SUBSYS_SCSI_HOST,
    DMG_HOSTDEV_SUBSYS_MDEV,
    DMG_HOSTDEV_SUBSYS_LAST
} dmgHostdevSubsysType;
DMG_ENUM_DECL(dmgHostdevSubsys);

typedef enum {
    DMG_MDEV_MODEL_VFIO_PCI,
    DMG_MDEV_MODEL_VFIO_CCW,
    DMG_MDEV_MODEL_VFIO_AP,
    DMG_MDEV_MODEL_LAST
} dmgMdevModel;
DMG_ENUM_DECL(dmgMdevModel);

typedef enum {
    DMG_TEAMING_NONE,
    DMG_TEAMING_PERSISTENT,
    DMG_TEAMING_TRANSIENT,
    DMG_TEAMING_LAST
} dmgTeamingType;
DMG_ENUM_DECL(dmgTeaming);

/* QEMU's OnOffAuto, as used by vfio-pci's enable-migration. */
typedef enum {
    DMG_ON_OFF_AUTO_AUTO,
    DMG_ON_OFF_AUTO_ON,
    DMG_ON_OFF_AUTO_OFF,
    DMG_ON_OFF_AUTO_LAST
} dmgOnOffAuto;
DMG_ENUM_DECL(dmgOnOffAuto);

/* Where a device property came from, so messages can tell the user which
 * part of their XML to edit. */
typedef enum {
    DMG_PROP_SRC_NONE,
    DMG_PROP_SRC_QEMU_OVERRIDE,
    DMG_PROP_SRC_METADATA,
    DMG_PROP_SRC_LAST
} dmgPropSource;
DMG_ENUM_DECL(dmgPropSource);

typedef struct {
    bool present;
    unsigned domain, bus, slot, function;
    /* <zpci uid= fid=/> inside a guest PCI address (s390x) */
    bool zpci_uid_set, zpci_fid_set;
    unsigned zpci_uid, zpci_fid;
} dmgPCIAddress;

/* libvirt's virDomainDeviceAddressType, in its order (device_conf.c). */
typedef enum {
    DMG_ADDRESS_NONE,
    DMG_ADDRESS_PCI,
    DMG_ADDRESS_DRIVE,
    DMG_ADDRESS_VIRTIO_SERIAL,
    DMG_ADDRESS_CCID,
    DMG_ADDRESS_USB,
    DMG_ADDRESS_SPAPR_VIO,
    DMG_ADDRESS_VIRTIO_S390,
    DMG_ADDRESS_CCW,
    DMG_ADDRESS_VIRTIO_MMIO,
    DMG_ADDRESS_ISA,
    DMG_ADDRESS_DIMM,
    DMG_ADDRESS_UNASSIGNED,
    DMG_ADDRESS_LAST
} dmgAddressType;
DMG_ENUM_DECL(dmgAddress);

/* <address type='ccw' cssid='0xfe' ssid='0x0' devno='0x000a'/>;
 * !present: type ccw, to be assigned by libvirt. */
typedef struct {
    bool present;
    unsigned cssid, ssid, devno;
} dmgCCWAddress;

/* <address type='dimm' slot='0' base='0x100000000'/>: a pc-dimm's slot
 * and, when given, its guest physical address. */
typedef struct {
    unsigned slot;
    guint64 base;                /* 0 when absent */
} dmgDimmAddress;

/* A device's guest-side <address>: its type, and the fields of the
 * types dmaguard emits. */
typedef struct {
    int type;                    /* dmgAddressType */
    dmgPCIAddress pci;
    dmgCCWAddress ccw;
    dmgDimmAddress dimm;
} dmgDeviceAddress;

/* <driver iommu= ats= packed= page_per_vq=/> of a virtio device:
 * libvirt's virDomainVirtioOptions. */
typedef struct {
    dmgTristate iommu;
    dmgTristate ats;
    dmgTristate packed;
    dmgTristate page_per_vq;
} dmgVirtioOptions;

typedef struct {
    int mode;                    /* dmgHostdevMode */
    int type;                    /* dmgHostdevSubsysType */
    char *alias;                 /* user alias or libvirt's hostdevN */
    bool alias_generated;
    int line;                    /* of the <hostdev> element */
    bool is_interface;           /* <interface type='hostdev'> */
    unsigned boot_order;         /* <boot order=N/>, 0 when absent */
    guint index;                 /* in def->hostdevs, set with the aliases */

    /* type='pci' */
    dmgPCIAddress source;        /* host address */
    char *driver_name;           /* <driver name='vfio'/> */
    char *driver_model;          /* <driver model='mlx5_vfio_pci'/> */
    dmgTristate iommufd;         /* <driver iommufd='yes'/> */
    int teaming;                 /* dmgTeamingType */
    char *teaming_persistent;

    /* type='mdev' */
    int mdev_model;              /* dmgMdevModel */
    char *mdev_uuid;
    dmgTristate display;         /* <hostdev display='on|off'> */
    dmgTristate ramfb;           /* <hostdev ramfb='on|off'> */

    /* type='usb'/'scsi'/'scsi_host': the source, as a key that is equal
     * for two hostdevs exactly when libvirt's virDomainHostdevMatchSubsys()
     * calls them the same device ("usb:1.2", "scsi:scsi_host0:0:0:0") */
    char *source_key;

    dmgDeviceAddress guest;      /* <address type='pci'/> in the guest */

    /* QEMU frontend properties, from qemu:override or dmaguard metadata */
    dmgTristate balloon_allowed;          /* x-balloon-allowed */
    int balloon_allowed_src;              /* dmgPropSource */
    int enable_migration;                 /* dmgOnOffAuto */
    int enable_migration_src;             /* dmgPropSource */
    dmgTristate migration_iommu_pt;       /* x-migration-iommu-pt */
    int migration_iommu_pt_src;           /* dmgPropSource */
} dmgHostdevDef;

/* <controller type='pci' model=...>: libvirt's virDomainControllerModelPCI. */
typedef enum {
    DMG_CONTROLLER_MODEL_PCI_ROOT,
    DMG_CONTROLLER_MODEL_PCIE_ROOT,
    DMG_CONTROLLER_MODEL_PCI_BRIDGE,
    DMG_CONTROLLER_MODEL_DMI_TO_PCI_BRIDGE,
    DMG_CONTROLLER_MODEL_PCIE_TO_PCI_BRIDGE,
    DMG_CONTROLLER_MODEL_PCIE_ROOT_PORT,
    DMG_CONTROLLER_MODEL_PCIE_SWITCH_UPSTREAM_PORT,
    DMG_CONTROLLER_MODEL_PCIE_SWITCH_DOWNSTREAM_PORT,
    DMG_CONTROLLER_MODEL_PCI_EXPANDER_BUS,
    DMG_CONTROLLER_MODEL_PCIE_EXPANDER_BUS,
    DMG_CONTROLLER_MODEL_PCI_LAST
} dmgControllerModelPCI;
DMG_ENUM_DECL(dmgControllerModelPCI);

/* One <controller type='pci'>: a PCI bus of the guest, numbered by its
 * index (the bus='' of the addresses of the devices on it). */
typedef struct {
    int model;                   /* dmgControllerModelPCI, -1 when absent */
    unsigned index;              /* index=, or the first unused one */
    dmgDeviceAddress guest;      /* where it plugs in, when given */
} dmgPCIControllerDef;

/* <disk type=...> and <backingStore type=...>: libvirt's virStorageType
 * (src/conf/storage_source_conf.c) without its internal "none". */
typedef enum {
    DMG_STORAGE_TYPE_FILE,
    DMG_STORAGE_TYPE_BLOCK,
    DMG_STORAGE_TYPE_DIR,
    DMG_STORAGE_TYPE_NETWORK,
    DMG_STORAGE_TYPE_VOLUME,
    DMG_STORAGE_TYPE_NVME,
    DMG_STORAGE_TYPE_VHOSTUSER,
    DMG_STORAGE_TYPE_LAST
} dmgStorageType;
DMG_ENUM_DECL(dmgStorageType);

typedef enum {
    DMG_MEMBALLOON_VIRTIO,
    DMG_MEMBALLOON_XEN,
    DMG_MEMBALLOON_NONE,
    DMG_MEMBALLOON_VIRTIO_TRANSITIONAL,
    DMG_MEMBALLOON_VIRTIO_NON_TRANSITIONAL,
    DMG_MEMBALLOON_LAST
} dmgMemballoonModel;
DMG_ENUM_DECL(dmgMemballoonModel);

typedef struct {
    int model;                   /* dmgMemballoonModel */
    dmgTristate autodeflate;
    dmgTristate free_page_reporting;
    int stats_period;            /* -1 when absent */
    char *alias;
    bool alias_generated;
    bool implicit;               /* not in the XML: libvirt's default
                                  * (qemu_postparse.c) */
    dmgDeviceAddress guest;
    dmgVirtioOptions virtio;
    int line;
} dmgMemballoonDef;

typedef enum {
    DMG_IOMMU_MODEL_INTEL,
    DMG_IOMMU_MODEL_SMMUV3,
    DMG_IOMMU_MODEL_VIRTIO,
    DMG_IOMMU_MODEL_AMD,
    DMG_IOMMU_MODEL_LAST
} dmgIOMMUModel;
DMG_ENUM_DECL(dmgIOMMUModel);

typedef struct {
    int model;                   /* dmgIOMMUModel */
    dmgTristate intremap;
    dmgTristate caching_mode;
    dmgTristate eim;
    dmgTristate iotlb;
    unsigned aw_bits;            /* 0 when absent */
    dmgTristate dma_translation;
    dmgTristate passthrough;
    dmgDeviceAddress guest;      /* virtio-iommu-pci's */
    char *alias;
    int line;
} dmgIOMMUDef;

typedef enum {
    DMG_MEMORY_MODEL_DIMM,
    DMG_MEMORY_MODEL_NVDIMM,
    DMG_MEMORY_MODEL_VIRTIO_PMEM,
    DMG_MEMORY_MODEL_VIRTIO_MEM,
    DMG_MEMORY_MODEL_SGX_EPC,
    DMG_MEMORY_MODEL_LAST
} dmgMemoryModel;
DMG_ENUM_DECL(dmgMemoryModel);

/* One <memoryBacking><hugepages><page size= nodeset=/>. */
typedef struct {
    guint64 size;                /* bytes, 0 when absent */
    guint8 *nodes;               /* DMG_DOMAIN_MAX_NUMA_CELLS flags, or NULL
                                  * without a nodeset (the default page) */
} dmgHugepageDef;

typedef struct {
    int model;                   /* dmgMemoryModel */
    guint64 size;                /* target/size */
    guint64 block;               /* target/block, virtio-mem */
    guint64 requested;           /* target/requested, virtio-mem */
    int node;                    /* target/node, -1 when absent */
    guint64 source_pagesize;     /* source/pagesize, 0 when absent */
    dmgDeviceAddress guest;
    char *alias;
    bool alias_generated;
    int line;
} dmgMemoryDef;

typedef struct {
    int virt_type;               /* dmgDomainVirtType */
    char *name;
    char *uuid;
    char *arch;                  /* os/type/@arch */
    char *machine;               /* os/type/@machine */
    char *emulator;              /* devices/emulator, NULL when absent */

    guint64 memory;              /* <memory>, bytes */
    guint64 current_memory;      /* <currentMemory>, bytes; = memory if absent */
    guint64 max_memory;          /* <maxMemory>, bytes; 0 if absent */
    unsigned max_memory_slots;
    unsigned vcpus;              /* <vcpu>: the maximum */
    unsigned vcpus_current;      /* <vcpu current=N>, 0 when absent */
    /* <cpu><topology sockets dies cores threads>, all 0 when absent */
    unsigned cpu_sockets, cpu_dies, cpu_cores, cpu_threads;
    guint64 hard_limit;          /* memtune/hard_limit, bytes; 0 if absent */
    bool hard_limit_set;         /* memtune/hard_limit is there: 0 is a
                                  * limit too (libvirt's "set" limit) */
    GArray *numa_cells;          /* guint64: cpu/numa/cell@memory, bytes,
                                  * in document order */
    GPtrArray *numa_cpus;        /* char *, per cell: its cpus as libvirt
                                  * formats the bitmap ("0-1,4"), or "" */
    /* What libvirt's QEMU driver refuses while preparing the domain's
     * sizes (qemu_postparse.c), or NULL. */
    char *memory_align_error;

    bool locked;                 /* memoryBacking/locked */
    bool hugepages;              /* memoryBacking/hugepages */
    GArray *hugepage_list;       /* dmgHugepageDef: every hugepages/page */
    guint64 hugepage_size;       /* first hugepages/page@size, 0 = default */

    int ioapic_driver;           /* dmgIoapicDriver */
    bool acpi;                   /* <features><acpi/> */
    unsigned graphics;           /* how many <graphics> devices */
    int launch_security;         /* dmgLaunchSecurity */
    GPtrArray *vdpa_interfaces;  /* char *: the aliases of the
                                  * <interface type='vdpa'>s */
    unsigned nvme_disks;         /* <disk>s with an NVMe source in their
                                  * chain: <disk type='nvme'> or a
                                  * <backingStore type='nvme'> */
    GArray *pci_controllers;     /* dmgPCIControllerDef, document order */

    GPtrArray *hostdevs;         /* dmgHostdevDef */
    /* alias -> the first hostdev with it, built by the first
     * dmg_domain_def_find_hostdev() after hostdevs changed in number */
    GHashTable *hostdev_index;
    guint hostdev_index_len;
    dmgMemballoonDef *memballoon;
    dmgIOMMUDef *iommu;
    GPtrArray *memories;         /* dmgMemoryDef */

    /* The verdict a previous `check --write-metadata` stored in
     * <metadata><dmaguard:domain><dmaguard:verdict .../>, or NULL. */
    char *stored_digest;
    char *stored_checked;
    char *stored_summary;                /* "balloon X, migration Y" */

    /* Problems in the XML that do not stop the analysis, e.g. a
     * qemu:override naming an alias no device has. */
    GPtrArray *parse_warnings;   /* char * */
} dmgDomainDef;

void dmg_domain_def_free(dmgDomainDef *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgDomainDef, dmg_domain_def_free);

/* Parse one libvirt <domain> document.  @source names the input in error
 * messages (a file name or a domain name).  Returns NULL and sets @error on
 * any problem: never a partial result. */
dmgDomainDef *dmg_domain_def_parse_string(const char *xml, gsize len,
                                          const char *source, GError **error);
dmgDomainDef *dmg_domain_def_parse_file(const char *path, GError **error);

dmgHostdevDef *dmg_domain_def_find_hostdev(const dmgDomainDef *def,
                                           const char *alias);

/* The backend of a PCI hostdev, from its <driver name=.../>
 * (libvirt's virDomainHostdevSubsysPCIBackendType). */
typedef enum {
    DMG_PCI_BACKEND_DEFAULT,     /* no name: VFIO at start, if the host has it */
    DMG_PCI_BACKEND_KVM,
    DMG_PCI_BACKEND_VFIO,
    DMG_PCI_BACKEND_OTHER,       /* a name libvirt's parser refuses, or xen */
} dmgPCIBackend;
dmgPCIBackend dmg_hostdev_pci_backend(const dmgHostdevDef *h);

/* A human readable name for a hostdev's source: "0000:01:00.0" or the
 * mdev UUID.  Caller frees. */
char *dmg_hostdev_source_string(const dmgHostdevDef *hostdev);

/* The namespace of dmaguard's own elements inside <metadata>. */
/* The most <cpu><numa><cell>s read: far above QEMU's MAX_NODES (128 in
 * 7.2, include/sysemu/numa.h), so only hostile input meets it. */
#define DMG_DOMAIN_MAX_NUMA_CELLS 4096

#define DMG_METADATA_NS "http://dmaguard.org/xmlns/domain/1.0"
#define DMG_METADATA_PREFIX "dmaguard"
#define DMG_QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"

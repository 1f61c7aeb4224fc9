/*
 * machine_state.h: the machine as every device model sees it, after
 * QEMU's MachineState (include/hw/boards.h): its configuration, the QEMU
 * behaviour its version has, the discard manager, the migration blocker
 * registry, the findings sink and the lists of realized devices.  Devices
 * include this and never machine.h, whose lifecycle code includes them.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "error.h"
#include "virtio/discard_manager.h"
#include "migration/blocker.h"

typedef struct vfio_backend_ops vfio_backend_ops;
typedef struct address_space address_space;
typedef struct viommu viommu;
typedef struct virtio_balloon virtio_balloon;

/* QEMU behaviour that changed between versions.  The values come from the
 * version table in src/qemu_ext/qemu_profile.c; the rules that read them
 * live here, in the device models. */
typedef struct vmm_compat {
    bool vfio_migration;                 /* 8.0: VFIO migration v2 */
    bool vfio_enable_migration_onoff;    /* 8.1: enable-migration=on forces */
    bool vfio_blocker_names_device;      /* 8.1: blockers name cause and device */
    bool vfio_multi_device_p2p;          /* 8.1: several devices if all P2P */
    bool viommu_blocks_device_dirty_only;/* 11.0 cycle */
    bool x_migration_iommu_pt;           /* downstream, seed 004 */
} vmm_compat;

typedef enum {
    VMM_MACHINE_PC,                      /* i440fx */
    VMM_MACHINE_Q35,
    VMM_MACHINE_VIRT,                    /* ARM virt */
    VMM_MACHINE_S390_CCW,
    VMM_MACHINE_OTHER,
} vmm_machine_type;

/* QEMU's OnOffAuto-like "did the configuration say so": a command line
 * carries only what the domain asked for. */
typedef enum {
    VMM_UNSET,
    VMM_ON,
    VMM_OFF,
} vmm_switch;

typedef struct {
    bool present;
    unsigned bus, slot, function;
    /* The slot is behind a PCI Express port, not on a root or a
     * conventional bus: virtio-pci is then modern-only by default. */
    bool express_port;
} vmm_pci_addr;

/* The transport a virtio device sits on, which names its QEMU type:
 * virtio-balloon-pci, -ccw, or -device for virtio-mmio
 * (hw/virtio/virtio-balloon-pci.c, hw/s390x/virtio-ccw-balloon.c). */
typedef enum {
    VMM_VIRTIO_PCI,
    VMM_VIRTIO_CCW,
    VMM_VIRTIO_MMIO,
} vmm_virtio_transport;

/* A channel-subsystem device number, cssid.ssid.devno (virtio-ccw's
 * devno property); !present: the machine picks one. */
typedef struct {
    bool present;
    unsigned cssid, ssid, devno;
} vmm_ccw_addr;

/* virtio device properties every transport has
 * (hw/virtio/virtio.c, virtio_device_properties and the PCI proxy). */
typedef struct {
    vmm_switch iommu_platform;
    vmm_switch ats;
    vmm_switch packed;
    vmm_switch page_per_vq;
} vmm_virtio_options;

/* The machine's confidential-guest-support object. */
typedef enum {
    VMM_CONFIDENTIAL_NONE,
    VMM_CONFIDENTIAL_SEV,                /* sev-guest (target/i386/sev.c) */
    VMM_CONFIDENTIAL_S390_PV,            /* s390-pv-guest (hw/s390x) */
} vmm_confidential;

typedef struct vmm_machine_config {
    vmm_machine_type type;
    const char *machine_name;            /* "pc-q35-7.2", "q35"; copied */
    unsigned smp_cpus, smp_maxcpus;      /* vCPUs at start, and at most */
    unsigned smp_sockets, smp_dies, smp_cores, smp_threads; /* 0: none given */
    /* Guest NUMA nodes, borrowed from the domain while it is realized:
     * each node's initial memory and its vCPUs ("0-1,4", or ""). */
    unsigned nr_numa;
    const guint64 *numa_sizes;
    const char *const *numa_cpus;
    const char *arch;                    /* copied by vmm_machine__new */
    bool kvm;                            /* KVM, not TCG */
    bool kvm_sync_mmu;                   /* KVM_CAP_SYNC_MMU */
    unsigned kvm_nr_memslots;            /* 0: QEMU's guess of 512 */
    bool split_irqchip;                  /* ioapic driver='qemu' */
    bool mem_locked;                     /* -overcommit mem-lock=on */
    vmm_confidential confidential;
    const char *const *vdpa_netdevs;     /* aliases of vhost-vdpa NICs, NULL-ended */
    guint64 ram_size;                    /* initial RAM, without memory devices */
    guint64 maxmem;                      /* 0: no device memory region */
    unsigned ram_slots;
    guint64 backend_page_size;           /* hugepages: the page size, else 0 */
    guint64 dma_entry_limit;             /* type1 dma_entry_limit */
    vmm_compat compat;
    const vfio_backend_ops *vfio_backend;/* NULL: the dry-run backend */
    /* Tests only: VFIO groups skip their discard disable, so the balloon
     * zaps pinned pages, the bug seeds 000-002 fixed. */
    bool test_bypass_discard_inhibit;
} vmm_machine_config;

typedef struct vmm_machine {
    vmm_machine_config cfg;
    discard_manager discard;
    migration_blockers migration;

    vmm_findings findings;               /* error.h */

    GPtrArray *address_spaces;           /* vfio_address_space *, [0] = memory */
    GPtrArray *groups;                   /* vfio_group * */
    GHashTable *group_index;             /* id -> vfio_group * of groups */
    GPtrArray *devices;                  /* vfio_device * */
    unsigned vfio_migratable;            /* of devices, those with ->migration */
    GPtrArray *memory_devices;           /* memory_device * */
    viommu *iommu;
    virtio_balloon *balloon;

    /* Guest memory, when the machine really runs: VFIO containers map it
     * and the balloon discards from it.  NULL in a dry run. */
    address_space *memory;

    discard_inhibitor kvm_inhibitor;     /* kvm_init() without sync MMU */
    discard_inhibitor lock_inhibitor;    /* mlock()ed guest memory */
    discard_inhibitor cgs_inhibitor;     /* SEV, s390 PV */
    GPtrArray *vdpa_inhibitors;          /* discard_inhibitor *, one per
                                          * vhost-vdpa NIC */

    /* A migration set up or active (migration_is_setup_or_active()) and
     * the reason that cancels it (vfio_set_migration_error(), seed 004).
     * migration/state.c owns both, under its lock: use migration__active() and
     * migration__set_error(). */
    bool migration_active;
    char *migration_cancel;

    GPtrArray *savevm;                   /* savevm_entry *, migration/savevm.h */

    /* A memory device was plugged: the VFIO layer learns of the new
     * RamDiscardManager section, as QEMU's memory listeners do
     * (vfio_listener_region_add).  vmm_machine__new() points it at
     * vfio/container.c, so memory devices never include VFIO. */
    void (*memory_device_plugged)(struct vmm_machine *m);
} vmm_machine;

/*
 * host_profile.h: facts about the host that decide a verdict: IOMMU groups
 * and bound drivers read from sysfs or from a libvirt connection's node
 * devices (host_nodedev.h), migration capabilities per VFIO driver,
 * type1's DMA entry limit, KVM capabilities, and libvirt's domain
 * capabilities (host_domcaps.h).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "dmg_enum.h"
#include "host_driver_caps.h"
#include "libvirt_profile.h"

#define DMG_DMA_ENTRY_LIMIT_DEFAULT 65535
/* QEMU's fallback when KVM does not report KVM_CAP_NR_MEMSLOTS
 * (hw/virtio/virtio-mem.c, virtio_mem_device_realize). */
#define DMG_MAX_MEMSLOTS_DEFAULT 512

typedef struct {
    char *name;                  /* "0000:01:00.0" or an mdev UUID */
    bool present;                /* found in the source of host devices */
    int iommu_group;             /* -1 when unknown */
    char *driver;                /* the bound driver ("vfio-pci"), or NULL */
    GPtrArray *group_devices;    /* char *, sorted: every member of the group */
    char *mdev_type;             /* mdev: the type ("i915-GVTg_V5_4"), or NULL */
    char *parent;                /* mdev: the parent's PCI address, or NULL */
    bool nvlink2_bridge;         /* PCI, sysfs only: a POWER9 NVLink2 bridge
                                  * (its of_node has ibm,gpu, ibm,nvlink,
                                  * ibm,nvlink-speed and memory-region) */
} dmgHostDevice;

/* Where a profile's host devices (presence, groups, drivers) come from. */
typedef enum {
    DMG_HOST_DEVICES_SYSFS,      /* a sysfs tree: /sys, or --sysfs DIR */
    DMG_HOST_DEVICES_NODEDEV,    /* the node devices of a libvirt connection */
    DMG_HOST_DEVICES_LAST
} dmgHostDevicesSource;
DMG_ENUM_DECL(dmgHostDevicesSource);

/* Where a host fact came from, so a report can say how sure it is. */
typedef enum {
    DMG_HOST_FACT_DEFAULT,       /* nothing said: the built-in assumption */
    DMG_HOST_FACT_SYSFS,         /* read from the sysfs tree */
    DMG_HOST_FACT_PROFILE,       /* set by a host profile file */
    DMG_HOST_FACT_LAST
} dmgHostFactSource;
DMG_ENUM_DECL(dmgHostFactSource);

/* Where a profile's domain capabilities come from (host_domcaps.h): a
 * libvirt connection, called through pointers so that what only reads a
 * profile (the hook) does not link libvirt.  @fetch returns the XML
 * (g_free), at most @max + 1 bytes of it, or NULL; @release drops @conn. */
typedef struct {
    gpointer conn;
    char *(*fetch)(gpointer conn, const char *emulator, const char *arch,
                   const char *machine, const char *virttype, gsize max);
    void (*release)(gpointer conn);
} dmgDomcapsSource;

typedef struct {
    char *sysfs_root;            /* "/sys" unless --sysfs */
    int devices_source;          /* dmgHostDevicesSource */
    char *nodedev_uri;           /* DMG_HOST_DEVICES_NODEDEV: the connection */
    guint64 dma_entry_limit;     /* vfio_iommu_type1 dma_entry_limit */
    guint64 thp_size;            /* kernel/mm/transparent_hugepage/
                                  * hpage_pmd_size, bytes; 0 unknown */
    bool iommu_dirty_tracking;   /* every host IOMMU unit tracks dirty pages */
    int iommu_dirty_tracking_source; /* dmgHostFactSource */
    int kvm_sync_mmu;            /* 1, 0, or -1 when /dev/kvm is absent */
    unsigned kvm_nr_memslots;    /* 0 when unknown */
    GHashTable *driver_caps;     /* driver name -> dmgDriverCaps */
    GHashTable *devices;         /* name -> dmgHostDevice: a lookup cache
                                  * (sysfs), every node device (nodedev) */
    GHashTable *device_drivers;  /* name -> driver, from [device NAME] of a
                                  * profile file; wins over the source */
    /* The host's libvirt: the installed library unless a connection or
     * --libvirt-version says otherwise (libvirt_profile.h). */
    dmgLibvirtProfile libvirt;
    /* libvirt's domain capabilities (host_domcaps.h): whom to ask, and
     * the answers, one per (emulator, arch, machine, virt type), failures
     * too. */
    dmgDomcapsSource domcaps_source;
    GHashTable *domcaps;
} dmgHostProfile;

dmgHostProfile *dmg_host_profile_new(const char *sysfs_root);
void dmg_host_profile_free(dmgHostProfile *profile);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgHostProfile, dmg_host_profile_free);

/* Read dma_entry_limit and IOMMU dirty tracking (class/iommu) from sysfs.
 * Missing files keep the defaults; a value a profile file already set is
 * kept. */
void dmg_host_profile_read_sysfs(dmgHostProfile *profile);

/* Ask /dev/kvm (or @kvm_path) for KVM_CAP_SYNC_MMU and KVM_CAP_NR_MEMSLOTS.
 * Leaves kvm_sync_mmu at -1 when the device cannot be opened. */
void dmg_host_profile_probe_kvm(dmgHostProfile *profile, const char *kvm_path);

/* Override driver capabilities and host facts from a GKeyFile
 * (host_profile_file.c):
 *   [host]       iommu-dirty-tracking=true, dma-entry-limit=N,
 *                kvm-sync-mmu=true|false, kvm-nr-memslots=N
 *   [driver NAME] migration=, dirty-tracking=, p2p=   (booleans)
 *   [device NAME] driver=DRIVER   (NAME a PCI address or an mdev UUID)   */
gboolean dmg_host_profile_load_file(dmgHostProfile *profile, const char *path,
                                    GError **error);

/* Take host devices from the node devices of the libvirt connection @uri
 * instead of sysfs: forget what was looked up so far (devices handed out
 * before are freed), and answer lookups only from the devices added with
 * dmg_host_profile_add_device() (host_nodedev.c), never from sysfs. */
void dmg_host_profile_use_nodedev(dmgHostProfile *profile, const char *uri);

/* A present device @name of a node-device profile, empty, for its reader
 * to fill; replaces an entry of the same name. */
dmgHostDevice *dmg_host_profile_add_device(dmgHostProfile *profile,
                                           const char *name);

/* Apply the [device NAME] driver= entries of a profile file to the
 * devices known so far (lookups apply them to later ones). */
void dmg_host_profile_apply_device_drivers(dmgHostProfile *profile);

/* For reports: "host sysfs DIR" or "host facts from the libvirt node
 * devices of URI".  Caller frees. */
char *dmg_host_profile_describe(const dmgHostProfile *profile);

/* Look a device up in the source of host devices; never NULL.  A device
 * that is not found has present=false and iommu_group=-1. */
const dmgHostDevice *dmg_host_profile_pci(dmgHostProfile *profile,
                                          unsigned domain, unsigned bus,
                                          unsigned slot, unsigned function);
const dmgHostDevice *dmg_host_profile_mdev(dmgHostProfile *profile,
                                           const char *uuid);

/* Capabilities of a bound driver; NULL when the driver is unknown. */
const dmgDriverCaps *dmg_host_profile_driver_caps(const dmgHostProfile *profile,
                                                  const char *driver);

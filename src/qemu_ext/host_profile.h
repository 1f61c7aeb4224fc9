/*
 * host_profile.h: facts about the host that decide a verdict: IOMMU groups
 * and bound drivers read from sysfs, migration capabilities per VFIO
 * driver, type1's DMA entry limit, and KVM capabilities.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "dmg_enum.h"
#include "libvirt_profile.h"

#define DMG_DMA_ENTRY_LIMIT_DEFAULT 65535
/* QEMU's fallback when KVM does not report KVM_CAP_NR_MEMSLOTS
 * (hw/virtio/virtio-mem.c, virtio_mem_device_realize). */
#define DMG_MAX_MEMSLOTS_DEFAULT 512

typedef struct {
    char *name;                  /* "0000:01:00.0" or an mdev UUID */
    bool present;                /* found under the sysfs root */
    int iommu_group;             /* -1 when unknown */
    char *driver;                /* basename of the driver link, or NULL */
    GPtrArray *group_devices;    /* char *, sorted, from iommu_groups/N/devices */
} dmgHostDevice;

typedef struct {
    char *driver;
    bool migration;
    bool dirty_tracking;         /* device dirty tracking */
    bool p2p;
} dmgDriverCaps;

/* Where a host fact came from, so a report can say how sure it is. */
typedef enum {
    DMG_HOST_FACT_DEFAULT,       /* nothing said: the built-in assumption */
    DMG_HOST_FACT_SYSFS,         /* read from the sysfs tree */
    DMG_HOST_FACT_PROFILE,       /* set by a host profile file */
    DMG_HOST_FACT_LAST
} dmgHostFactSource;
DMG_ENUM_DECL(dmgHostFactSource);

typedef struct {
    char *sysfs_root;            /* "/sys" unless --sysfs */
    guint64 dma_entry_limit;     /* vfio_iommu_type1 dma_entry_limit */
    bool iommu_dirty_tracking;   /* every host IOMMU unit tracks dirty pages */
    int iommu_dirty_tracking_source; /* dmgHostFactSource */
    int kvm_sync_mmu;            /* 1, 0, or -1 when /dev/kvm is absent */
    unsigned kvm_nr_memslots;    /* 0 when unknown */
    GHashTable *driver_caps;     /* driver name -> dmgDriverCaps */
    GHashTable *devices;         /* name -> dmgHostDevice, a lookup cache */
    /* The host's libvirt: the installed library unless a connection or
     * --libvirt-version says otherwise (libvirt_profile.h). */
    dmgLibvirtProfile libvirt;
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

/* Override driver capabilities and host facts from a GKeyFile:
 *   [host]       iommu-dirty-tracking=true, dma-entry-limit=N,
 *                kvm-sync-mmu=true|false, kvm-nr-memslots=N
 *   [driver NAME] migration=, dirty-tracking=, p2p=   (booleans)          */
gboolean dmg_host_profile_load_file(dmgHostProfile *profile, const char *path,
                                    GError **error);

/* Look a device up under the sysfs root; never NULL.  A device that is not
 * found has present=false and iommu_group=-1. */
const dmgHostDevice *dmg_host_profile_pci(dmgHostProfile *profile,
                                          unsigned domain, unsigned bus,
                                          unsigned slot, unsigned function);
const dmgHostDevice *dmg_host_profile_mdev(dmgHostProfile *profile,
                                           const char *uuid);

/* Capabilities of a bound driver; NULL when the driver is unknown. */
const dmgDriverCaps *dmg_host_profile_driver_caps(const dmgHostProfile *profile,
                                                  const char *driver);

/*
 * host_profile.c: facts about the host, read from sysfs and /dev/kvm, or
 * from a libvirt connection's node devices (host_nodedev.c), and an
 * optional key file that overrides them (host_profile_file.c).
 *
 * Nothing here decides a verdict; it only answers "what is true of this
 * host", so a test can describe a host it does not run on by pointing
 * sysfs_root at a fixture tree and loading a key file.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "host_profile.h"
#include "host_iommu.h"
#include "dmg_file.h"
#include "dmg_i18n.h"

/*
 * What each VFIO driver can do for live migration.  Kept as data so a
 * host profile file can correct it as drivers gain features, without a
 * rebuild.  Device dirty tracking means the driver implements
 * vfio_log_ops; without it QEMU must rely on IOMMU dirty tracking or
 * treat all guest memory as dirty.  P2P is VFIO_MIGRATION_P2P, needed to
 * quiesce several devices of one guest before any of them stops.
 *
 * Plain vfio-pci and mdevs have no migration driver at all.
 */
static const struct {
    const char *driver;
    bool migration;
    bool dirty_tracking;
    bool p2p;
} dmg_driver_caps_defaults[] = {
    { "mlx5_vfio_pci",     true,  true,  true  },
    { "pds_vfio_pci",      true,  true,  true  },
    { "hisi_acc_vfio_pci", true,  false, true  },
    { "qat_vfio_pci",      true,  false, true  },
    { "vfio-pci",          false, false, false },
    { "mdev",              false, false, false },
};

DMG_ENUM_IMPL(dmgHostFactSource, DMG_HOST_FACT_LAST,
              "default", "sysfs", "profile");
DMG_ENUM_IMPL(dmgHostDevicesSource, DMG_HOST_DEVICES_LAST,
              "sysfs", "nodedev");


static dmgHostDevice *
dmg_host_device_new(const char *name)
{
    dmgHostDevice *dev = g_new0(dmgHostDevice, 1);

    dev->name = g_strdup(name);
    dev->iommu_group = -1;
    dev->group_devices = g_ptr_array_new_with_free_func(g_free);
    return dev;
}


static void
dmg_host_device_free(dmgHostDevice *dev)
{
    if (!dev)
        return;
    g_free(dev->name);
    g_free(dev->driver);
    g_ptr_array_unref(dev->group_devices);
    g_free(dev->mdev_type);
    g_free(dev->parent);
    g_free(dev);
}


dmgHostProfile *
dmg_host_profile_new(const char *sysfs_root)
{
    dmgHostProfile *profile = g_new0(dmgHostProfile, 1);
    size_t i;

    profile->sysfs_root = g_strdup(sysfs_root ? sysfs_root : "/sys");
    profile->dma_entry_limit = DMG_DMA_ENTRY_LIMIT_DEFAULT;
    profile->iommu_dirty_tracking = false;
    profile->iommu_dirty_tracking_source = DMG_HOST_FACT_DEFAULT;
    profile->kvm_sync_mmu = -1;
    profile->kvm_nr_memslots = 0;
    dmg_libvirt_profile_init_built(&profile->libvirt);
    profile->driver_caps =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                              (GDestroyNotify) dmg_driver_caps_free);
    profile->devices =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                              (GDestroyNotify) dmg_host_device_free);
    profile->devices_source = DMG_HOST_DEVICES_SYSFS;
    profile->device_drivers =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    for (i = 0; i < G_N_ELEMENTS(dmg_driver_caps_defaults); i++) {
        dmg_driver_caps_set(profile->driver_caps,
                            dmg_driver_caps_new(dmg_driver_caps_defaults[i].driver,
                                                dmg_driver_caps_defaults[i].migration,
                                                dmg_driver_caps_defaults[i].dirty_tracking,
                                                dmg_driver_caps_defaults[i].p2p));
    }

    return profile;
}


void
dmg_host_profile_free(dmgHostProfile *profile)
{
    if (!profile)
        return;
    g_free(profile->sysfs_root);
    g_free(profile->nodedev_uri);
    g_hash_table_unref(profile->driver_caps);
    g_hash_table_unref(profile->devices);
    g_hash_table_unref(profile->device_drivers);
    g_clear_pointer(&profile->domcaps, g_hash_table_unref);
    if (profile->domcaps_source.release)
        profile->domcaps_source.release(profile->domcaps_source.conn);
    g_free(profile);
}


static gint
dmg_compare_str_ptr(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void
dmg_host_profile_read_dma_entry_limit(dmgHostProfile *profile)
{
    g_autofree char *path = NULL;
    g_autofree char *contents = NULL;
    g_autoptr(GError) err = NULL;
    guint64 limit;

    path = g_build_filename(profile->sysfs_root, "module", "vfio_iommu_type1",
                            "parameters", "dma_entry_limit", NULL);

    /* Absent when type1 is not loaded (e.g. iommufd only): keep the
     * kernel's default, which is what type1 would use once loaded. */
    if (!g_file_test(path, G_FILE_TEST_EXISTS))
        return;
    /* Present but unreadable, not a file, or not a number: say which
     * file, never what it holds (it may be a link to anything). */
    if (!dmg_file_read(path, DMG_FILE_MAX_SYSFS, &contents, NULL, &err)) {
        g_warning(_("%s; assuming the kernel's default of %u DMA mappings"),
                  err->message, (unsigned) profile->dma_entry_limit);
        return;
    }
    if (!g_ascii_string_to_unsigned(g_strstrip(contents), 10, 0, G_MAXUINT,
                                    &limit, NULL)) {
        g_warning(_("%s does not hold a decimal number of DMA mappings; assuming the kernel's default of %u"),
                  path, (unsigned) profile->dma_entry_limit);
        return;
    }

    profile->dma_entry_limit = limit;
}


/* virHostMemGetTHPSize() (src/util/virhostmem.c): the transparent huge
 * page size libvirt validates a virtio-mem block against.  Unreadable:
 * 0, and libvirt's own fallback (2 MiB) applies. */
static void
dmg_host_profile_read_thp_size(dmgHostProfile *profile)
{
    g_autofree char *path = g_build_filename(profile->sysfs_root, "kernel", "mm",
                                             "transparent_hugepage", "hpage_pmd_size", NULL);
    g_autofree char *contents = NULL;
    guint64 size;

    if (!dmg_file_read(path, DMG_FILE_MAX_SYSFS, &contents, NULL, NULL) ||
        !g_ascii_string_to_unsigned(g_strstrip(contents), 10, 1, G_MAXINT64, &size, NULL))
        return;
    profile->thp_size = size;
}

void
dmg_host_profile_read_sysfs(dmgHostProfile *profile)
{
    dmg_host_profile_read_dma_entry_limit(profile);
    dmg_host_profile_read_thp_size(profile);
    /* A profile file loaded earlier wins over the host, as one loaded
     * later does. */
    if (profile->iommu_dirty_tracking_source != DMG_HOST_FACT_PROFILE) {
        int dirty = dmg_iommu_read_dirty_tracking(profile->sysfs_root);

        if (dirty >= 0) {
            profile->iommu_dirty_tracking = dirty;
            profile->iommu_dirty_tracking_source = DMG_HOST_FACT_SYSFS;
        }
    }
}


void
dmg_host_profile_probe_kvm(dmgHostProfile *profile, const char *kvm_path)
{
    int fd;
    int ret;

    if (!kvm_path)
        kvm_path = "/dev/kvm";

    /* O_RDWR as QEMU opens it: a read-only fd may be refused ioctls. */
    if ((fd = open(kvm_path, O_RDWR | O_CLOEXEC)) < 0) {
        g_debug("%s: %s", kvm_path, g_strerror(errno));
        return;
    }

    /* A failed ioctl (not a KVM fd) leaves the "unknown" values. */
    ret = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_MMU);
    if (ret >= 0)
        profile->kvm_sync_mmu = ret > 0 ? 1 : 0;

    ret = ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
    if (ret > 0)
        profile->kvm_nr_memslots = ret;

    close(fd);
}


/* ---- devices ---------------------------------------------------------- */

/* Basename of a symlink's target, or NULL when @path is not a symlink. */
static char *
dmg_link_basename(const char *path)
{
    g_autofree char *target = g_file_read_link(path, NULL);

    if (!target)
        return NULL;
    return g_path_get_basename(target);
}


/* The group number is only in the link target's last component. */
static int
dmg_read_iommu_group(const char *devdir)
{
    g_autofree char *link = g_build_filename(devdir, "iommu_group", NULL);
    g_autofree char *base = dmg_link_basename(link);
    gint64 group;

    if (!base ||
        !g_ascii_string_to_signed(base, 10, 0, G_MAXINT, &group, NULL))
        return -1;
    return group;
}


static void
dmg_read_group_devices(const dmgHostProfile *profile, int group,
                       GPtrArray *out)
{
    g_autofree char *groupname = g_strdup_printf("%d", group);
    g_autofree char *dirpath = NULL;
    g_autoptr(GDir) dir = NULL;
    const char *entry;

    dirpath = g_build_filename(profile->sysfs_root, "kernel", "iommu_groups",
                               groupname, "devices", NULL);
    if (!(dir = g_dir_open(dirpath, 0, NULL)))
        return;

    while ((entry = g_dir_read_name(dir)))
        g_ptr_array_add(out, g_strdup(entry));

    /* readdir order is arbitrary; callers print and compare these. */
    g_ptr_array_sort(out, dmg_compare_str_ptr);
}


/* An mdev's type is its mdev_type link's last component, and its parent
 * the directory its own directory sits in (devices/.../0000:00:02.0/UUID). */
static void
dmg_host_device_probe_mdev(dmgHostDevice *dev, const char *devdir)
{
    g_autofree char *typelink = g_build_filename(devdir, "mdev_type", NULL);
    g_autofree char *real = realpath(devdir, NULL);

    dev->mdev_type = dmg_link_basename(typelink);
    if (real) {
        g_autofree char *up = g_path_get_dirname(real);

        dev->parent = g_path_get_basename(up);
    }
}


/* ppc64VFIODeviceIsNV2Bridge() (src/qemu/qemu_domain.c): a POWER9 NVLink2
 * bridge's device tree node has all four properties.  libvirt reads
 * /sys/bus/pci/devices/ADDR/of_node/; this reads the profile's sysfs. */
static bool
dmg_pci_is_nvlink2_bridge(const char *devdir)
{
    static const char *const files[] = {
        "ibm,gpu", "ibm,nvlink", "ibm,nvlink-speed", "memory-region",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = g_build_filename(devdir, "of_node", files[i], NULL);

        if (!g_file_test(path, G_FILE_TEST_EXISTS))
            return false;
    }
    return true;
}

/* Fill @dev from the sysfs directory of a device on @bus ("pci", "mdev").
 * The bus/X/devices/NAME link leads to the real device directory; paths
 * through it resolve the same, so there is no need to follow it first. */
static void
dmg_host_device_probe(const dmgHostProfile *profile, dmgHostDevice *dev,
                      const char *bus)
{
    g_autofree char *devdir = NULL;
    g_autofree char *driverlink = NULL;

    devdir = g_build_filename(profile->sysfs_root, "bus", bus, "devices",
                              dev->name, NULL);
    if (!g_file_test(devdir, G_FILE_TEST_EXISTS))
        return;

    dev->present = true;
    dev->iommu_group = dmg_read_iommu_group(devdir);

    driverlink = g_build_filename(devdir, "driver", NULL);
    dev->driver = dmg_link_basename(driverlink);

    if (dev->iommu_group >= 0)
        dmg_read_group_devices(profile, dev->iommu_group, dev->group_devices);
    if (g_str_equal(bus, "mdev"))
        dmg_host_device_probe_mdev(dev, devdir);
    else
        dev->nvlink2_bridge = dmg_pci_is_nvlink2_bridge(devdir);
}


/* A profile file's [device NAME] driver= wins over what the source says
 * of a device that is there. */
static void
dmg_host_device_override_driver(const dmgHostProfile *profile,
                                dmgHostDevice *dev)
{
    const char *driver = g_hash_table_lookup(profile->device_drivers, dev->name);

    if (!driver || !dev->present || g_strcmp0(dev->driver, driver) == 0)
        return;
    g_free(dev->driver);
    dev->driver = g_strdup(driver);
}


void
dmg_host_profile_apply_device_drivers(dmgHostProfile *profile)
{
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, profile->devices);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        dmg_host_device_override_driver(profile, value);
}


/* Cached lookup: a benchmark runs thousands of domains through this and
 * most of them share a handful of host devices.  With node devices the
 * table holds every device the connection listed, and a name it lacks is
 * not on that host: nothing is read from this machine's /sys. */
static const dmgHostDevice *
dmg_host_profile_lookup(dmgHostProfile *profile, const char *bus,
                        const char *name, bool valid)
{
    dmgHostDevice *dev;

    if ((dev = g_hash_table_lookup(profile->devices, name)))
        return dev;

    dev = dmg_host_device_new(name);
    /* An invalid name must not reach the filesystem: "../.." would
     * otherwise escape the sysfs root. */
    if (valid && profile->devices_source == DMG_HOST_DEVICES_SYSFS) {
        dmg_host_device_probe(profile, dev, bus);
        dmg_host_device_override_driver(profile, dev);
    }

    g_hash_table_insert(profile->devices, dev->name, dev);
    return dev;
}


void
dmg_host_profile_use_nodedev(dmgHostProfile *profile, const char *uri)
{
    profile->devices_source = DMG_HOST_DEVICES_NODEDEV;
    g_free(profile->nodedev_uri);
    profile->nodedev_uri = g_strdup(uri);
    g_hash_table_remove_all(profile->devices);
}


dmgHostDevice *
dmg_host_profile_add_device(dmgHostProfile *profile, const char *name)
{
    dmgHostDevice *dev = dmg_host_device_new(name);

    dev->present = true;
    /* The key is dev->name: replace, so key and value go together. */
    g_hash_table_replace(profile->devices, dev->name, dev);
    return dev;
}


char *
dmg_host_profile_describe(const dmgHostProfile *profile)
{
    if (profile->devices_source == DMG_HOST_DEVICES_NODEDEV)
        return g_strdup_printf(_("host facts from the libvirt node devices of %s"),
                               profile->nodedev_uri);
    return g_strdup_printf(_("host sysfs %s"), profile->sysfs_root);
}


const dmgHostDevice *
dmg_host_profile_pci(dmgHostProfile *profile,
                     unsigned domain, unsigned bus,
                     unsigned slot, unsigned function)
{
    char name[64];

    g_snprintf(name, sizeof(name), "%04x:%02x:%02x.%x",
               domain, bus, slot, function);
    return dmg_host_profile_lookup(profile, "pci", name, true);
}


const dmgHostDevice *
dmg_host_profile_mdev(dmgHostProfile *profile, const char *uuid)
{
    /* sysfs names mdevs by lower-case UUID; libvirt accepts either case. */
    g_autofree char *name = g_ascii_strdown(uuid ? uuid : "", -1);

    return dmg_host_profile_lookup(profile, "mdev", name,
                                   g_uuid_string_is_valid(name));
}


const dmgDriverCaps *
dmg_host_profile_driver_caps(const dmgHostProfile *profile,
                             const char *driver)
{
    if (!driver)
        return NULL;
    return g_hash_table_lookup(profile->driver_caps, driver);
}

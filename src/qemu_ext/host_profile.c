/*
 * host_profile.c: facts about the host, read from sysfs, /dev/kvm and an
 * optional key file that overrides both.
 *
 * Nothing here decides a verdict; it only answers "what is true of this
 * host", so a test can describe a host it does not run on by pointing
 * sysfs_root at a fixture tree and loading a key file.
 */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "host_profile.h"
#include "host_iommu.h"
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

/* Keys a profile file may set; anything else is a typo. */
static const char *const dmg_host_keys[] = {
    "iommu-dirty-tracking", "dma-entry-limit",
    "kvm-sync-mmu", "kvm-nr-memslots", NULL,
};
static const char *const dmg_driver_keys[] = {
    "migration", "dirty-tracking", "p2p", NULL,
};

DMG_ENUM_IMPL(dmgHostFactSource, DMG_HOST_FACT_LAST,
              "default", "sysfs", "profile");

#define DMG_HOST_GROUP "host"
#define DMG_DRIVER_GROUP_PREFIX "driver "


static dmgDriverCaps *
dmg_driver_caps_new(const char *driver, bool migration,
                    bool dirty_tracking, bool p2p)
{
    dmgDriverCaps *caps = g_new0(dmgDriverCaps, 1);

    caps->driver = g_strdup(driver);
    caps->migration = migration;
    caps->dirty_tracking = dirty_tracking;
    caps->p2p = p2p;
    return caps;
}


static void
dmg_driver_caps_free(dmgDriverCaps *caps)
{
    if (!caps)
        return;
    g_free(caps->driver);
    g_free(caps);
}


/* The hash table's key is caps->driver, so replacing an entry must go
 * through g_hash_table_replace to keep the key alive with its value. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgDriverCaps, dmg_driver_caps_free);


static void
dmg_driver_caps_set(GHashTable *table, dmgDriverCaps *caps)
{
    g_hash_table_replace(table, caps->driver, caps);
}


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
    g_hash_table_unref(profile->driver_caps);
    g_hash_table_unref(profile->devices);
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
    guint64 limit;

    path = g_build_filename(profile->sysfs_root, "module", "vfio_iommu_type1",
                            "parameters", "dma_entry_limit", NULL);

    /* Absent when type1 is not loaded (e.g. iommufd only): keep the
     * kernel's default, which is what type1 would use once loaded. */
    if (!g_file_get_contents(path, &contents, NULL, NULL))
        return;

    if (!g_ascii_string_to_unsigned(g_strstrip(contents), 10, 0, G_MAXUINT,
                                    &limit, NULL)) {
        g_warning(_("%s: '%s' is not an integer; assuming %u"),
                  path, contents, (unsigned) profile->dma_entry_limit);
        return;
    }

    profile->dma_entry_limit = limit;
}


void
dmg_host_profile_read_sysfs(dmgHostProfile *profile)
{
    dmg_host_profile_read_dma_entry_limit(profile);
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
}


/* Cached lookup: a benchmark runs thousands of domains through this and
 * most of them share a handful of host devices. */
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
    if (valid)
        dmg_host_device_probe(profile, dev, bus);

    g_hash_table_insert(profile->devices, dev->name, dev);
    return dev;
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


/* ---- profile file ----------------------------------------------------- */

/* Everything a file sets, collected first so that an error anywhere in
 * the file leaves the profile untouched. */
typedef struct {
    bool has_iommu_dirty_tracking;
    bool iommu_dirty_tracking;
    bool has_dma_entry_limit;
    guint64 dma_entry_limit;
    bool has_kvm_sync_mmu;
    bool kvm_sync_mmu;
    bool has_kvm_nr_memslots;
    guint64 kvm_nr_memslots;
    GPtrArray *drivers;          /* dmgDriverCaps *, complete entries */
} dmgHostOverrides;


static void
dmg_host_overrides_clear(dmgHostOverrides *ov)
{
    g_clear_pointer(&ov->drivers, g_ptr_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(dmgHostOverrides, dmg_host_overrides_clear);


/* Read @key of @group; NULL when absent.  The value is stripped so that
 * the messages below quote exactly what was meant. */
static char *
dmg_keyfile_value(GKeyFile *kf, const char *group, const char *key)
{
    char *raw = g_key_file_get_value(kf, group, key, NULL);

    return raw ? g_strstrip(raw) : NULL;
}


/* Only "true" and "false": GKeyFile would also take 1 and 0, but a
 * profile is written by hand and should read unambiguously. */
static gboolean
dmg_keyfile_bool(GKeyFile *kf, const char *path, const char *group,
                 const char *key, bool *has, bool *out, GError **error)
{
    g_autofree char *value = dmg_keyfile_value(kf, group, key);

    if (!(*has = value != NULL))
        return TRUE;

    if (g_str_equal(value, "true")) {
        *out = true;
    } else if (g_str_equal(value, "false")) {
        *out = false;
    } else {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    _("%s: [%s] %s: '%s' is not a boolean (use true or false)"),
                    path, group, key, value);
        return FALSE;
    }
    return TRUE;
}


/* The kernel parameters and KVM capabilities read here are all unsigned
 * int, so nothing larger could describe a real host. */
static gboolean
dmg_keyfile_uint(GKeyFile *kf, const char *path, const char *group,
                 const char *key, bool *has, guint64 *out, GError **error)
{
    g_autofree char *value = dmg_keyfile_value(kf, group, key);

    if (!(*has = value != NULL))
        return TRUE;

    if (!g_ascii_string_to_unsigned(value, 10, 0, G_MAXUINT, out, NULL)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    _("%s: [%s] %s: '%s' is not an integer between 0 and %u"),
                    path, group, key, value, G_MAXUINT);
        return FALSE;
    }
    return TRUE;
}


/* Typos must not be silently ignored: "[host] dma-entry-limt=" would
 * otherwise leave the default in place and produce a wrong verdict. */
static gboolean
dmg_keyfile_check_keys(GKeyFile *kf, const char *path, const char *group,
                       const char *const *known, GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, NULL);
    size_t i;

    for (i = 0; keys && keys[i]; i++) {
        g_autofree char *list = NULL;

        if (g_strv_contains(known, keys[i]))
            continue;

        list = g_strjoinv(", ", (char **) known);
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                    _("%s: [%s] unknown key '%s' (known keys: %s)"),
                    path, group, keys[i], list);
        return FALSE;
    }
    return TRUE;
}


static gboolean
dmg_keyfile_parse_host(GKeyFile *kf, const char *path,
                       dmgHostOverrides *ov, GError **error)
{
    const char *group = DMG_HOST_GROUP;

    return dmg_keyfile_check_keys(kf, path, group, dmg_host_keys, error) &&
        dmg_keyfile_bool(kf, path, group, "iommu-dirty-tracking",
                         &ov->has_iommu_dirty_tracking,
                         &ov->iommu_dirty_tracking, error) &&
        dmg_keyfile_uint(kf, path, group, "dma-entry-limit",
                         &ov->has_dma_entry_limit,
                         &ov->dma_entry_limit, error) &&
        dmg_keyfile_bool(kf, path, group, "kvm-sync-mmu",
                         &ov->has_kvm_sync_mmu,
                         &ov->kvm_sync_mmu, error) &&
        dmg_keyfile_uint(kf, path, group, "kvm-nr-memslots",
                         &ov->has_kvm_nr_memslots,
                         &ov->kvm_nr_memslots, error);
}


/* A "[driver NAME]" group: start from what is known about NAME (nothing,
 * for a new driver) and apply the keys the file sets. */
static gboolean
dmg_keyfile_parse_driver(GKeyFile *kf, const char *path, const char *group,
                         const dmgHostProfile *profile,
                         dmgHostOverrides *ov, GError **error)
{
    const char *name = group + strlen(DMG_DRIVER_GROUP_PREFIX);
    const dmgDriverCaps *old;
    g_autoptr(dmgDriverCaps) caps = NULL;
    bool has;

    if (!*name || g_ascii_isspace(name[0]) ||
        g_ascii_isspace(name[strlen(name) - 1])) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                    _("%s: [%s]: missing or badly spaced driver name (use [driver NAME])"),
                    path, group);
        return FALSE;
    }

    if (!dmg_keyfile_check_keys(kf, path, group, dmg_driver_keys, error))
        return FALSE;

    if ((old = dmg_host_profile_driver_caps(profile, name)))
        caps = dmg_driver_caps_new(name, old->migration,
                                   old->dirty_tracking, old->p2p);
    else
        caps = dmg_driver_caps_new(name, false, false, false);

    if (!dmg_keyfile_bool(kf, path, group, "migration", &has,
                          &caps->migration, error) ||
        !dmg_keyfile_bool(kf, path, group, "dirty-tracking", &has,
                          &caps->dirty_tracking, error) ||
        !dmg_keyfile_bool(kf, path, group, "p2p", &has,
                          &caps->p2p, error))
        return FALSE;

    g_ptr_array_add(ov->drivers, g_steal_pointer(&caps));
    return TRUE;
}


static gboolean
dmg_keyfile_parse(GKeyFile *kf, const char *path,
                  const dmgHostProfile *profile,
                  dmgHostOverrides *ov, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    size_t i;

    for (i = 0; groups[i]; i++) {
        const char *group = groups[i];

        if (g_str_equal(group, DMG_HOST_GROUP)) {
            if (!dmg_keyfile_parse_host(kf, path, ov, error))
                return FALSE;
        } else if (g_str_has_prefix(group, DMG_DRIVER_GROUP_PREFIX)) {
            if (!dmg_keyfile_parse_driver(kf, path, group, profile, ov, error))
                return FALSE;
        } else {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                        _("%s: unknown group [%s] (use [host] or [driver NAME])"),
                        path, group);
            return FALSE;
        }
    }
    return TRUE;
}


static void
dmg_host_overrides_apply(dmgHostProfile *profile, dmgHostOverrides *ov)
{
    size_t i;

    if (ov->has_iommu_dirty_tracking) {
        profile->iommu_dirty_tracking = ov->iommu_dirty_tracking;
        profile->iommu_dirty_tracking_source = DMG_HOST_FACT_PROFILE;
    }
    if (ov->has_dma_entry_limit)
        profile->dma_entry_limit = ov->dma_entry_limit;
    if (ov->has_kvm_sync_mmu)
        profile->kvm_sync_mmu = ov->kvm_sync_mmu ? 1 : 0;
    if (ov->has_kvm_nr_memslots)
        profile->kvm_nr_memslots = ov->kvm_nr_memslots;

    for (i = 0; i < ov->drivers->len; i++) {
        dmgDriverCaps *caps = g_ptr_array_index(ov->drivers, i);
        dmgDriverCaps *old = g_hash_table_lookup(profile->driver_caps,
                                                 caps->driver);

        /* Update in place so pointers already handed out stay valid. */
        if (old) {
            old->migration = caps->migration;
            old->dirty_tracking = caps->dirty_tracking;
            old->p2p = caps->p2p;
        } else {
            /* The table owns it now; the array frees NULLs harmlessly. */
            dmg_driver_caps_set(profile->driver_caps, caps);
            g_ptr_array_index(ov->drivers, i) = NULL;
        }
    }
}


gboolean
dmg_host_profile_load_file(dmgHostProfile *profile, const char *path,
                           GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_auto(dmgHostOverrides) ov = { 0 };

    /* GKeyFile's own messages do not say which file they are about. */
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }

    ov.drivers = g_ptr_array_new_with_free_func((GDestroyNotify) dmg_driver_caps_free);
    if (!dmg_keyfile_parse(kf, path, profile, &ov, error))
        return FALSE;

    dmg_host_overrides_apply(profile, &ov);
    return TRUE;
}

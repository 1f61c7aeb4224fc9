/*
 * host_profile_file.c: the host profile key file (--host-profile, the
 * hook's [profile] host-profile): host facts, driver capabilities and
 * bound drivers that override what sysfs or the node devices say.  The
 * format is documented in docs/metadata.rst.
 */

#include <string.h>

#include "host_profile.h"
#include "dmg_file.h"
#include "dmg_i18n.h"

/* Keys a profile file may set; anything else is a typo. */
static const char *const dmg_host_keys[] = {
    "iommu-dirty-tracking", "dma-entry-limit",
    "kvm-sync-mmu", "kvm-nr-memslots", NULL,
};
static const char *const dmg_driver_keys[] = {
    "migration", "dirty-tracking", "p2p", NULL,
};
static const char *const dmg_device_keys[] = {
    "driver", NULL,
};

#define DMG_HOST_GROUP "host"
#define DMG_DRIVER_GROUP_PREFIX "driver "
#define DMG_DEVICE_GROUP_PREFIX "device "
#define DMG_DRIVER_NAME_MAX 64


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
    GHashTable *device_drivers;  /* device name -> driver */
} dmgHostOverrides;


static void
dmg_host_overrides_clear(dmgHostOverrides *ov)
{
    g_clear_pointer(&ov->drivers, g_ptr_array_unref);
    g_clear_pointer(&ov->device_drivers, g_hash_table_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(dmgHostOverrides, dmg_host_overrides_clear);


/* Read @key of @group; NULL when absent.  Stripped; the messages below
 * name the key and the expected form, never the value (issue 14: no file
 * contents in messages). */
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
                    _("%s: [%s] %s is not a boolean; use true or false"),
                    path, group, key);
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
                    _("%s: [%s] %s is not an integer between 0 and %u; give a decimal number"),
                    path, group, key, G_MAXUINT);
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


/* "0000:3b:00.1" (any case) or an mdev UUID, as the lookups spell them:
 * lower case, the PCI address with four, two, two and one digits. */
static char *
dmg_device_group_name(const char *name)
{
    static const char pattern[] = "xxxx:xx:xx.x";

    if (g_uuid_string_is_valid(name))
        return g_ascii_strdown(name, -1);
    if (strlen(name) != sizeof(pattern) - 1)
        return NULL;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == 'x' ? !g_ascii_isxdigit(name[i]) : name[i] != pattern[i])
            return NULL;
    }
    /* slot is five bits, function three */
    if (g_ascii_xdigit_value(name[8]) > 1 || g_ascii_xdigit_value(name[11]) > 7)
        return NULL;
    return g_ascii_strdown(name, -1);
}


/* Driver names as the kernel spells them: "vfio-pci", "mlx5_vfio_pci". */
static bool
dmg_driver_name_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > DMG_DRIVER_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!g_ascii_isalnum(s[i]) && !strchr("-_.", s[i]))
            return false;
    }
    return true;
}


/* A "[device NAME]" group: the driver bound to one host device, for a
 * source that does not say (libvirt's test driver keeps no <driver> in
 * its node devices) or to judge the host after a rebind. */
static gboolean
dmg_keyfile_parse_device(GKeyFile *kf, const char *path, const char *group,
                         dmgHostOverrides *ov, GError **error)
{
    const char *raw = group + strlen(DMG_DEVICE_GROUP_PREFIX);
    g_autofree char *name = dmg_device_group_name(raw);
    g_autofree char *driver = NULL;

    if (!name) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                    _("%s: a [device NAME] group names neither a PCI address (DDDD:BB:SS.F) nor an mdev UUID"),
                    path);
        return FALSE;
    }
    if (!dmg_keyfile_check_keys(kf, path, group, dmg_device_keys, error))
        return FALSE;
    if (!(driver = dmg_keyfile_value(kf, group, "driver"))) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                    _("%s: [device %s] has no driver key"), path, name);
        return FALSE;
    }
    if (!dmg_driver_name_valid(driver)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    _("%s: [device %s] driver: not a driver name (letters, digits, '-', '_' and '.', at most %d)"),
                    path, name, DMG_DRIVER_NAME_MAX);
        return FALSE;
    }
    g_hash_table_replace(ov->device_drivers, g_steal_pointer(&name),
                         g_steal_pointer(&driver));
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
        } else if (g_str_has_prefix(group, DMG_DEVICE_GROUP_PREFIX)) {
            if (!dmg_keyfile_parse_device(kf, path, group, ov, error))
                return FALSE;
        } else {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                        _("%s: unknown group [%s] (use [host], [driver NAME] or [device NAME])"),
                        path, group);
            return FALSE;
        }
    }
    return TRUE;
}


static void
dmg_host_overrides_apply(dmgHostProfile *profile, dmgHostOverrides *ov)
{
    GHashTableIter iter;
    gpointer key, value;
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

    g_hash_table_iter_init(&iter, ov->device_drivers);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        g_hash_table_replace(profile->device_drivers, key, value);
        g_hash_table_iter_steal(&iter);
    }
    dmg_host_profile_apply_device_drivers(profile);
}


gboolean
dmg_host_profile_load_file(dmgHostProfile *profile, const char *path,
                           GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_auto(dmgHostOverrides) ov = { 0 };
    g_autofree char *text = NULL;
    g_autoptr(GError) kf_err = NULL;
    gsize len = 0;

    if (!dmg_file_read(path, DMG_FILE_MAX_PROFILE, &text, &len, error))
        return FALSE;
    /* GKeyFile's own messages quote the offending line: say which file
     * and what form it must have instead. */
    if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &kf_err)) {
        g_set_error(error, G_KEY_FILE_ERROR, kf_err->code,
                    _("%s is not a valid key file: every line must be a [group], a key=value or a # comment, in UTF-8"),
                    path);
        return FALSE;
    }

    ov.drivers = g_ptr_array_new_with_free_func((GDestroyNotify) dmg_driver_caps_free);
    ov.device_drivers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (!dmg_keyfile_parse(kf, path, profile, &ov, error))
        return FALSE;

    dmg_host_overrides_apply(profile, &ov);
    return TRUE;
}

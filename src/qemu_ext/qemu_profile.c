/*
 * qemu_profile.c: the QEMU version table.  This is the one place that
 * knows what changed between QEMU releases; the VMM model reads the
 * resulting switches (vmm_compat) and the argv builder the property rows.
 * When the domain's own emulator was probed (qemu_probe.c), its version
 * picks the rows and its property lists answer the property rows.
 */
#include "qemu_profile.h"

#include <stdio.h>
#include <string.h>

#include "dmg_i18n.h"

static const char *const known_versions[] = {
    "7.2", "8.0", "8.1", "8.2", "9.0", "9.1", "9.2",
    "10.0", "10.1", "10.2", "11.0", NULL,
};

/* Downstream features: carried by some vendors' QEMU, not upstream. */
static const char *const known_features[] = {
    "x-migration-iommu-pt",      /* seed 004, the RFC never merged */
    NULL,
};

DMG_ENUM_IMPL(dmgQemuVersionSource, DMG_QEMU_VERSION_LAST,
              "newest", "chosen", "probed", "connection");

typedef enum {
    RULE_VFIO_MIGRATION,
    RULE_VFIO_ENABLE_MIGRATION_ONOFF,
    RULE_VFIO_MULTI_DEVICE_P2P,
    RULE_VFIO_BLOCKER_NAMES_DEVICE,
    RULE_VIOMMU_DEVICE_DIRTY_ONLY,
    RULE_LAST
} qemu_rule;

/* A behaviour or a property, and the first version that has it; or the
 * downstream feature that brings it. */
typedef struct {
    int rule;                    /* qemu_rule, or -1 for a property row */
    const char *driver;          /* property rows: the device type */
    const char *prop;
    unsigned major, minor;
    const char *feature;         /* non-NULL: exists only with this feature */
} qemu_version_row;

static const qemu_version_row qemu_table[] = {
    /* VFIO migration protocol v2 replaces the experimental v1; before
     * it, every VFIO device blocks migration. */
    { RULE_VFIO_MIGRATION, NULL, NULL, 8, 0, NULL },
    /* enable-migration becomes OnOffAuto; "on" forces migration without
     * dirty tracking (vfio_migration_realize). */
    { RULE_VFIO_ENABLE_MIGRATION_ONOFF, NULL, NULL, 8, 1, NULL },
    /* vfio_multiple_devices_migration_is_supported(): P2P devices. */
    { RULE_VFIO_MULTI_DEVICE_P2P, NULL, NULL, 8, 1, NULL },
    /* vfio_migration_realize()'s blockers say the cause and start with
     * the device's name ("%s: VFIO migration is not supported in
     * kernel"); 7.2 and 8.0 say "VFIO device doesn't support migration". */
    { RULE_VFIO_BLOCKER_NAMES_DEVICE, NULL, NULL, 8, 1, NULL },
    /* The vIOMMU blocker is kept only for device dirty tracking. */
    { RULE_VIOMMU_DEVICE_DIRTY_ONLY, NULL, NULL, 11, 0, NULL },

    { -1, "vfio-pci", "x-balloon-allowed", 3, 1, NULL },
    { -1, "vfio-pci", "enable-migration", 8, 1, NULL },
    { -1, "vfio-pci", "x-migration-iommu-pt", 0, 0, "x-migration-iommu-pt" },
    /* virtio-iommu: "Add an option to define the input range width" */
    { -1, "virtio-iommu-pci", "aw-bits", 9, 0, NULL },
    /* virtio-mem's own preallocation of plugged blocks: libvirt's
     * QEMU_CAPS_DEVICE_VIRTIO_MEM_PCI_PREALLOC is set from 7.0 in its
     * capability test data (tests/qemucapabilitiesdata, libvirt 9.0). */
    { -1, "virtio-mem-pci", "prealloc", 7, 0, NULL },
};

dmgQemuProfile *
dmg_qemu_profile_new(void)
{
    dmgQemuProfile *p = g_new0(dmgQemuProfile, 1);

    p->version = dmg_qemu_version_newest();
    p->version_source = DMG_QEMU_VERSION_NEWEST;
    p->features = g_ptr_array_new_with_free_func(g_free);
    return p;
}

void
dmg_qemu_profile_free(dmgQemuProfile *p)
{
    if (!p)
        return;
    g_ptr_array_unref(p->features);
    g_free(p->emulator);
    dmg_qemu_probe_unref(p->probe);
    dmg_qemu_prober_free(p->prober);
    g_free(p);
}

static bool
dmg_qemu_version_scan(const char *str, dmgQemuVersion *v)
{
    char tail;

    return str && sscanf(str, "%u.%u%c", &v->major, &v->minor, &tail) == 2;
}

static bool
dmg_qemu_version_at_least(dmgQemuVersion v, unsigned major, unsigned minor)
{
    return v.major > major || (v.major == major && v.minor >= minor);
}

const char *const *
dmg_qemu_known_versions(void)
{
    return known_versions;
}

dmgQemuVersion
dmg_qemu_version_newest(void)
{
    dmgQemuVersion v = { 0, 0 };

    dmg_qemu_version_scan(known_versions[G_N_ELEMENTS(known_versions) - 2], &v);
    return v;
}

char *
dmg_qemu_version_string(dmgQemuVersion v)
{
    return g_strdup_printf("%u.%u", v.major, v.minor);
}

gboolean
dmg_qemu_profile_set_version(dmgQemuProfile *p, const char *str, GError **error)
{
    dmgQemuVersion v, oldest;

    dmg_qemu_version_scan(known_versions[0], &oldest);
    if (!dmg_qemu_version_scan(str, &v)) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--qemu-version '%s' is not a version of the form X.Y, e.g. 8.1"),
                    str);
        return FALSE;
    }
    if (!dmg_qemu_version_at_least(v, oldest.major, oldest.minor)) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--qemu-version %s is older than %s, the oldest QEMU dmaguard knows"),
                    str, known_versions[0]);
        return FALSE;
    }
    p->version = v;
    p->version_source = DMG_QEMU_VERSION_CHOSEN;
    return TRUE;
}

bool
dmg_qemu_version_detected(const dmgQemuProfile *p)
{
    return p->version_source == DMG_QEMU_VERSION_PROBED ||
        p->version_source == DMG_QEMU_VERSION_CONNECTION;
}

void
dmg_qemu_profile_set_prober(dmgQemuProfile *p, dmgQemuProber *prober)
{
    dmg_qemu_prober_free(p->prober);
    p->prober = prober;
}

/* libvirt's virQEMUCapsFindBinaryForArch(): the binary of an arch is
 * mostly qemu-system-ARCH. */
char *
dmg_qemu_default_emulator(const char *arch)
{
    static const struct {
        const char *arch, *binary;
    } renamed[] = {
        { "i686", "i386" }, { "armv6l", "arm" }, { "armv7l", "arm" },
        { "ppc64le", "ppc64" },
    };
    g_autofree char *name = NULL;

    if (!arch)
        arch = "x86_64";
    for (gsize i = 0; i < G_N_ELEMENTS(renamed); i++) {
        if (strcmp(renamed[i].arch, arch) == 0)
            arch = renamed[i].binary;
    }
    name = g_strconcat("qemu-system-", arch, NULL);
    return g_find_program_in_path(name);
}

static dmgQemuProfile *
dmg_qemu_profile_copy(const dmgQemuProfile *base)
{
    dmgQemuProfile *p = dmg_qemu_profile_new();

    p->version = base->version;
    p->version_source = base->version_source;
    for (guint i = 0; i < base->features->len; i++)
        g_ptr_array_add(p->features, g_strdup(g_ptr_array_index(base->features, i)));
    p->emulator = g_strdup(base->emulator);
    p->probe = base->probe ? dmg_qemu_probe_ref(base->probe) : NULL;
    return p;
}

dmgQemuProfile *
dmg_qemu_profile_for_domain(const dmgQemuProfile *base, const dmgDomainDef *def,
                            GError **error)
{
    g_autoptr(dmgQemuProfile) p = dmg_qemu_profile_copy(base);
    g_autofree char *path = NULL;

    if (!base->prober) {
        if (def->emulator) {
            g_free(p->emulator);
            p->emulator = g_strdup(def->emulator);
        }
        return g_steal_pointer(&p);
    }
    path = def->emulator ? g_strdup(def->emulator) : dmg_qemu_default_emulator(def->arch);
    if (!path)
        return g_steal_pointer(&p);
    g_clear_pointer(&p->probe, dmg_qemu_probe_unref);
    if (!(p->probe = dmg_qemu_prober_probe(base->prober, path, error)))
        return NULL;
    g_free(p->emulator);
    p->emulator = g_steal_pointer(&path);
    dmg_qemu_probe_version(p->probe, &p->version.major, &p->version.minor, NULL);
    p->version_source = DMG_QEMU_VERSION_PROBED;
    /* A downstream feature is there when its property is. */
    for (gsize i = 0; i < G_N_ELEMENTS(qemu_table); i++) {
        const qemu_version_row *row = &qemu_table[i];

        if (row->rule == -1 && row->feature &&
            dmg_qemu_probe_has_property(p->probe, row->driver, row->prop))
            dmg_qemu_profile_add_feature(p, row->feature, NULL);
    }
    return g_steal_pointer(&p);
}

gboolean
dmg_qemu_profile_add_feature(dmgQemuProfile *p, const char *name, GError **error)
{
    if (!g_strv_contains(known_features, name)) {
        g_autofree char *known = g_strjoinv(", ", (char **)known_features);

        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--qemu-feature '%s' is not a feature dmaguard knows; known features: %s"),
                    name, known);
        return FALSE;
    }
    if (!dmg_qemu_profile_has_feature(p, name))
        g_ptr_array_add(p->features, g_strdup(name));
    return TRUE;
}

bool
dmg_qemu_profile_has_feature(const dmgQemuProfile *p, const char *name)
{
    for (guint i = 0; i < p->features->len; i++) {
        if (strcmp(g_ptr_array_index(p->features, i), name) == 0)
            return true;
    }
    return false;
}

static bool
dmg_qemu_row_applies(const dmgQemuProfile *p, const qemu_version_row *row)
{
    if (row->feature)
        return dmg_qemu_profile_has_feature(p, row->feature);
    return dmg_qemu_version_at_least(p->version, row->major, row->minor);
}

static bool
dmg_qemu_rule(const dmgQemuProfile *p, qemu_rule rule)
{
    for (gsize i = 0; i < G_N_ELEMENTS(qemu_table); i++) {
        if (qemu_table[i].rule == (int)rule)
            return dmg_qemu_row_applies(p, &qemu_table[i]);
    }
    return false;
}

void
dmg_qemu_profile_compat(const dmgQemuProfile *p, vmm_compat *compat)
{
    compat->vfio_migration = dmg_qemu_rule(p, RULE_VFIO_MIGRATION);
    compat->vfio_enable_migration_onoff = dmg_qemu_rule(p, RULE_VFIO_ENABLE_MIGRATION_ONOFF);
    compat->vfio_blocker_names_device = dmg_qemu_rule(p, RULE_VFIO_BLOCKER_NAMES_DEVICE);
    compat->vfio_multi_device_p2p = dmg_qemu_rule(p, RULE_VFIO_MULTI_DEVICE_P2P);
    compat->viommu_blocks_device_dirty_only = dmg_qemu_rule(p, RULE_VIOMMU_DEVICE_DIRTY_ONLY);
    compat->x_migration_iommu_pt = dmg_qemu_profile_has_feature(p, "x-migration-iommu-pt");
}

/* What the probe says of @driver.@prop: 1 has it, 0 lacks it, -1 the
 * probe did not ask about @driver. */
static int
dmg_qemu_probed_property(const dmgQemuProfile *p, const char *driver,
                         const char *prop, char **why)
{
    if (!p->probe || !dmg_qemu_probe_knows_type(p->probe, driver))
        return -1;
    if (dmg_qemu_probe_has_property(p->probe, driver, prop))
        return 1;
    if (why && !dmg_qemu_probe_has_type(p->probe, driver))
        *why = g_strdup_printf(_("the device type %s, which %s lacks"), driver,
                               dmg_qemu_probe_path(p->probe));
    else if (why)
        *why = g_strdup_printf(_("a build with that property; %s does not list it"),
                               dmg_qemu_probe_path(p->probe));
    return 0;
}

bool
dmg_qemu_profile_has_property(const dmgQemuProfile *p, const char *driver,
                              const char *prop, char **why)
{
    for (gsize i = 0; i < G_N_ELEMENTS(qemu_table); i++) {
        const qemu_version_row *row = &qemu_table[i];
        int probed;

        if (row->rule != -1 || g_strcmp0(row->driver, driver) != 0 ||
            g_strcmp0(row->prop, prop) != 0)
            continue;
        /* --qemu-feature is an override: it brings the property. */
        if (row->feature && dmg_qemu_profile_has_feature(p, row->feature))
            return true;
        probed = dmg_qemu_probed_property(p, driver, prop, NULL);
        if (probed == 1 || (probed < 0 && dmg_qemu_row_applies(p, row)))
            return true;
        /* A version that should have it: the binary is the reason. */
        if (probed == 0 && !row->feature && dmg_qemu_row_applies(p, row))
            return dmg_qemu_probed_property(p, driver, prop, why) != 0;
        if (why && row->feature)
            *why = g_strdup_printf(_("the downstream feature %s"), row->feature);
        else if (why)
            *why = g_strdup_printf("QEMU %u.%u", row->major, row->minor);
        return false;
    }
    return dmg_qemu_probed_property(p, driver, prop, why) != 0;
}

/*
 * profile_options.c: the host and QEMU profile options every subcommand
 * shares.
 */
#include "virt_dmaguard.h"

#include "dmg_i18n.h"

GOptionGroup *
dmg_profile_option_group(char **sysfs, char **qemu_version,
                         char ***qemu_features, char **host_profile)
{
    const GOptionEntry entries[] = {
        { "sysfs", 0, 0, G_OPTION_ARG_FILENAME, sysfs,
          N_("Read IOMMU groups and drivers from DIR instead of /sys"), N_("DIR") },
        { "qemu-version", 0, 0, G_OPTION_ARG_STRING, qemu_version,
          N_("QEMU version to judge for (default: the installed qemu-system, else the newest known)"), N_("X.Y") },
        { "qemu-feature", 0, 0, G_OPTION_ARG_STRING_ARRAY, qemu_features,
          N_("A downstream QEMU feature, e.g. x-migration-iommu-pt (repeatable)"), N_("NAME") },
        { "host-profile", 0, 0, G_OPTION_ARG_FILENAME, host_profile,
          N_("Key file overriding host facts and driver capabilities"), N_("FILE") },
        { NULL },
    };
    GOptionGroup *group = g_option_group_new("profile", _("Host and QEMU profile:"),
                                             _("Show host and QEMU profile options"),
                                             NULL, NULL);

    g_option_group_set_translation_domain(group, GETTEXT_PACKAGE);
    g_option_group_add_entries(group, entries);
    return group;
}

dmgHostProfile *
dmg_profile_host(const char *sysfs, const char *profile_file, GError **error)
{
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new(sysfs ? sysfs : "/sys");

    dmg_host_profile_read_sysfs(host);
    /* /dev/kvm describes this machine: ask it only when judging this
     * machine, not another host's sysfs tree. */
    if (!sysfs || g_strcmp0(sysfs, "/sys") == 0)
        dmg_host_profile_probe_kvm(host, NULL);
    /* The file comes last: it overrides what the host says. */
    if (profile_file && !dmg_host_profile_load_file(host, profile_file, error))
        return NULL;
    return g_steal_pointer(&host);
}

dmgQemuProfile *
dmg_profile_qemu(const char *version, char **features, GError **error)
{
    g_autoptr(dmgQemuProfile) qemu = dmg_qemu_profile_new();

    if (version) {
        dmgQemuVersion newest = dmg_qemu_version_newest();

        if (!dmg_qemu_profile_set_version(qemu, version, error))
            return NULL;
        if (qemu->version.major > newest.major ||
            (qemu->version.major == newest.major && qemu->version.minor > newest.minor))
            g_printerr(_("virt-dmaguard: note: QEMU %s is newer than the newest version dmaguard knows (%u.%u); it is judged by %u.%u's rules\n"),
                       version, newest.major, newest.minor, newest.major, newest.minor);
    } else {
        dmg_qemu_profile_detect(qemu);
    }
    for (char **f = features; f && *f; f++) {
        if (!dmg_qemu_profile_add_feature(qemu, *f, error))
            return NULL;
    }
    return g_steal_pointer(&qemu);
}

char *
dmg_example_sysfs(void)
{
    /* Another node file describes another host. */
    if (g_getenv("DMAGUARD_NODE_XML"))
        return NULL;
    if (g_file_test(DMG_SOURCE_EXAMPLES_DIR "/host-sysfs", G_FILE_TEST_IS_DIR))
        return g_strdup(DMG_SOURCE_EXAMPLES_DIR "/host-sysfs");
    if (g_file_test(DMG_DATADIR "/host-sysfs", G_FILE_TEST_IS_DIR))
        return g_strdup(DMG_DATADIR "/host-sysfs");
    return NULL;
}

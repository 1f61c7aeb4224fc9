/*
 * profile_options.c: the host and QEMU profile options every subcommand
 * shares.
 */
#include "virt_dmaguard.h"

#include <string.h>

#include "dmg_i18n.h"
#include "domain_conf.h"
#include "libvirt_source.h"

void
dmg_common_opts_clear(dmg_common_opts *o)
{
    g_free(o->uri);
    g_free(o->sysfs);
    g_free(o->qemu_version);
    g_free(o->libvirt_version);
    g_strfreev(o->qemu_features);
    g_free(o->host_profile);
}

static GOptionGroup *
dmg_profile_option_group(dmg_common_opts *o)
{
    const GOptionEntry entries[] = {
        { "sysfs", 0, 0, G_OPTION_ARG_FILENAME, &o->sysfs,
          N_("Read IOMMU groups and drivers from DIR instead of /sys"), N_("DIR") },
        { "qemu-version", 0, 0, G_OPTION_ARG_STRING, &o->qemu_version,
          N_("QEMU version to judge for (default: the domain's <emulator>, probed, else qemu-system-ARCH in PATH, else the newest known)"), N_("X.Y") },
        { "libvirt-version", 0, 0, G_OPTION_ARG_STRING, &o->libvirt_version,
          N_("libvirt version to judge for (default: the connection's libvirt with --connect, else the installed library)"), N_("X.Y[.Z]") },
        { "qemu-feature", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->qemu_features,
          N_("A downstream QEMU feature, e.g. x-migration-iommu-pt (repeatable)"), N_("NAME") },
        { "host-profile", 0, 0, G_OPTION_ARG_FILENAME, &o->host_profile,
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

void
dmg_common_options_add(GOptionContext *ctx, dmg_common_opts *o)
{
    const GOptionEntry entries[] = {
        { "connect", 'c', 0, G_OPTION_ARG_STRING, &o->uri,
          N_("libvirt URI to read domains from (default: the embedded example node)"), N_("URI") },
        { NULL },
    };

    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    g_option_context_add_group(ctx, dmg_profile_option_group(o));
}

gboolean
dmg_common_libvirt_from(const dmg_common_opts *o, dmgHostProfile *host,
                        virConnectPtr conn, const char *uri, GError **error)
{
    if (o->libvirt_version)
        return TRUE;
    return dmg_libvirt_profile_init_connection(&host->libvirt, conn, uri, error);
}

char *
dmg_common_uri(const dmg_common_opts *o)
{
    const char *env = g_getenv("LIBVIRT_DEFAULT_URI");

    if (o->uri)
        return g_strdup(o->uri);
    if (env && *env)
        return g_strdup(env);
    return dmg_default_uri();
}

static dmgHostProfile *
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

static dmgQemuProfile *
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
        g_autofree char *cache = dmg_qemu_probe_user_cache_dir();

        /* Each domain is judged for its own <emulator>. */
        dmg_qemu_profile_set_prober(qemu, dmg_qemu_prober_new(cache, _("pass --qemu-version X.Y")));
    }
    for (char **f = features; f && *f; f++) {
        if (!dmg_qemu_profile_add_feature(qemu, *f, error))
            return NULL;
    }
    return g_steal_pointer(&qemu);
}

gboolean
dmg_common_qemu_for_domain(dmgQemuProfile **qemu, const dmgDomainDef *def, GError **error)
{
    dmgQemuProfile *own = dmg_qemu_profile_for_domain(*qemu, def, error);

    if (!own)
        return FALSE;
    dmg_qemu_profile_free(*qemu);
    *qemu = own;
    return TRUE;
}

/* The example host's sysfs tree that matches the example node, or NULL. */
static char *
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

gboolean
dmg_common_load(dmg_common_opts *o, bool from_files, dmgHostProfile **host,
                dmgQemuProfile **qemu, GError **error)
{
    if (!o->sysfs && !o->uri && !from_files && !g_getenv("LIBVIRT_DEFAULT_URI"))
        o->sysfs = dmg_example_sysfs();
    if (!(*host = dmg_profile_host(o->sysfs, o->host_profile, error)))
        return FALSE;
    dmg_libvirt_profile_init_library(&(*host)->libvirt);
    if (o->libvirt_version &&
        !dmg_libvirt_profile_set_version(&(*host)->libvirt, o->libvirt_version, error)) {
        g_clear_pointer(host, dmg_host_profile_free);
        return FALSE;
    }
    if (!(*qemu = dmg_profile_qemu(o->qemu_version, o->qemu_features, error))) {
        g_clear_pointer(host, dmg_host_profile_free);
        return FALSE;
    }
    return TRUE;
}

static dmgDomainXML *
dmg_common_read_one(const dmg_common_opts *o, const char *xml_file, char **domains,
                    GError **error)
{
    g_autofree char *uri = NULL;
    g_autoptr(GPtrArray) doms = NULL;
    virConnectPtr conn;
    g_autoptr(dmgDomainXML) d = NULL;

    if (xml_file) {
        d = g_new0(dmgDomainXML, 1);
        d->name = g_strdup(xml_file);
        if (!g_file_get_contents(xml_file, &d->xml, NULL, error))
            return NULL;
        return g_steal_pointer(&d);
    }
    uri = dmg_common_uri(o);
    if (!(conn = dmg_libvirt_open(uri, FALSE, error)))
        return NULL;
    doms = dmg_libvirt_domains(conn, domains, error);
    virConnectClose(conn);
    return doms ? g_ptr_array_steal_index(doms, 0) : NULL;
}

dmgDomainDef *
dmg_common_parse_one(const dmg_common_opts *o, const char *xml_file, char **domains,
                     GError **error)
{
    g_autoptr(dmgDomainXML) d = NULL;

    if (!!xml_file == (domains && domains[0] && !domains[1])) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("give exactly one of --xml FILE or a domain name"));
        return NULL;
    }
    if (!(d = dmg_common_read_one(o, xml_file, domains, error)))
        return NULL;
    return dmg_domain_def_parse_string(d->xml, strlen(d->xml), d->name, error);
}

/*
 * profile_options.c: the host and QEMU profile options every subcommand
 * shares.
 */
#include "dmg_file.h"
#include "virt_dmaguard.h"

#include <string.h>

#include "qemu_postparse.h"
#include "dmg_i18n.h"
#include "domain_conf.h"
#include "host_domcaps.h"
#include "host_nodedev.h"
#include "libvirt_source.h"

void
dmg_common_opts_clear(dmg_common_opts *o)
{
    g_strfreev(o->uris);
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
          N_("Read IOMMU groups and drivers from DIR (default: the connection's node devices, and /sys with --xml)"), N_("DIR") },
        { "qemu-version", 0, 0, G_OPTION_ARG_STRING, &o->qemu_version,
          N_("QEMU version to judge for (default: a remote connection's QEMU, else the domain's <emulator>, probed, else qemu-system-ARCH in PATH, else the newest known)"), N_("X.Y") },
        { "libvirt-version", 0, 0, G_OPTION_ARG_STRING, &o->libvirt_version,
          N_("libvirt version to judge for (default: the connection's libvirt with --connect, else the installed library)"), N_("X.Y[.Z]") },
        { "qemu-feature", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->qemu_features,
          N_("A downstream QEMU feature, e.g. x-migration-iommu-pt (repeatable)"), N_("NAME") },
        { "host-profile", 0, 0, G_OPTION_ARG_FILENAME, &o->host_profile,
          N_("Key file overriding host facts and driver capabilities"), N_("FILE") },
        { "domain-capabilities", 0, 0, G_OPTION_ARG_NONE, &o->domain_caps,
          N_("Ask the connection's libvirt for its domain capabilities (can the host pass PCI devices through?); libvirt answers only a read-write connection, so the connection is opened read-write"), NULL },
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
        { "connect", 'c', 0, G_OPTION_ARG_STRING_ARRAY, &o->uris,
          N_("libvirt URI to read domains from (default: the embedded example node); check takes it repeatedly, one host each"), N_("URI") },
        { NULL },
    };

    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    g_option_context_add_group(ctx, dmg_profile_option_group(o));
}

static void
dmg_qemu_note_newer(const dmgQemuProfile *qemu)
{
    dmgQemuVersion newest = dmg_qemu_version_newest();
    g_autofree char *ver = dmg_qemu_version_string(qemu->version);

    if (qemu->version.major > newest.major ||
        (qemu->version.major == newest.major && qemu->version.minor > newest.minor))
        g_printerr(_("virt-dmaguard: note: QEMU %s is newer than the newest version dmaguard knows (%u.%u); it is judged by %u.%u's rules\n"),
                   ver, newest.major, newest.minor, newest.major, newest.minor);
}

/* The QEMU a domain read from @conn is judged for, unless --qemu-version
 * chose one.  A remote host's comes from the connection
 * (virConnectGetVersion of a QEMU connection, else the newest known):
 * nothing on this machine describes it, so no local binary is probed.  A
 * local connection keeps the prober: each domain's own <emulator>. */
static gboolean
dmg_common_qemu_from(const dmg_common_opts *o, dmgQemuProfile *qemu,
                     virConnectPtr conn, const char *uri, GError **error)
{
    g_autofree char *version = NULL;

    if (o->qemu_version || !dmg_libvirt_uri_is_remote(conn, uri))
        return TRUE;
    dmg_qemu_profile_set_prober(qemu, NULL);
    if (!dmg_libvirt_qemu_version(conn, uri, &version, error))
        return FALSE;
    if (!version)
        return TRUE;             /* not QEMU: the newest known */
    if (!dmg_qemu_profile_set_version(qemu, version, NULL)) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("the QEMU of %s is %s, older than %s, the oldest QEMU dmaguard knows"),
                    uri, version, dmg_qemu_known_versions()[0]);
        return FALSE;
    }
    qemu->version_source = DMG_QEMU_VERSION_CONNECTION;
    dmg_qemu_note_newer(qemu);
    return TRUE;
}

gboolean
dmg_common_libvirt_from(const dmg_common_opts *o, dmgHostProfile *host,
                        virConnectPtr conn, const char *uri, GError **error)
{
    if (o->libvirt_version)
        return TRUE;
    return dmg_libvirt_profile_init_connection(&host->libvirt, conn, uri, error);
}

gboolean
dmg_common_connection_facts(const dmg_common_opts *o, dmgHostProfile *host,
                            dmgQemuProfile *qemu, virConnectPtr conn,
                            const char *uri, GError **error)
{
    if (!dmg_common_libvirt_from(o, host, conn, uri, error))
        return FALSE;
    /* --sysfs wins: an offline copy of the host's tree. */
    if (!o->sysfs && !dmg_host_profile_read_nodedev(host, conn, uri, error))
        return FALSE;
    /* The connection's host, asked per domain (host_domcaps.h); on a
     * read-only connection libvirt refuses, and the fact stays unknown. */
    if (!o->sysfs)
        dmg_host_profile_use_domcaps(host, conn);
    return dmg_common_qemu_from(o, qemu, conn, uri, error);
}

gboolean
dmg_common_parse(GOptionContext *ctx, int *argc, char ***argv, dmg_common_opts *o,
                 bool several_hosts, GError **error)
{
    if (!g_option_context_parse(ctx, argc, argv, error))
        return FALSE;
    for (char **u = o->uris; u && *u; u++) {
        if (!**u) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        _("--connect needs a libvirt URI, e.g. qemu:///system"));
            return FALSE;
        }
    }
    if (o->uris && o->uris[0] && o->uris[1] && !several_hosts) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--connect was given more than once; only check reads several hosts"));
        return FALSE;
    }
    /* A fleet scan is a list, not a multiset: each host once. */
    for (guint i = 0; o->uris && o->uris[i]; i++) {
        for (guint j = 0; j < i; j++) {
            if (g_str_equal(o->uris[i], o->uris[j])) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                            _("--connect %s was given twice"), o->uris[i]);
                return FALSE;
            }
        }
    }
    o->uri = o->uris ? o->uris[0] : NULL;
    return TRUE;
}

virConnectPtr
dmg_common_open(const dmg_common_opts *o, const char *uri, gboolean write,
                GError **error)
{
    virConnectPtr conn = dmg_libvirt_open(uri, write || o->domain_caps, error);

    if (!conn && o->domain_caps && !write) {
        g_clear_error(error);
        conn = dmg_libvirt_open(uri, FALSE, error);
    }
    return conn;
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

/* Domains read from a connection (@connection) live on its host: without
 * --sysfs, nothing of this machine (/sys, /dev/kvm) describes that host;
 * its devices come from the node devices (dmg_common_connection_facts).
 * @example_file: the example node's profile, loaded before the user's. */
static dmgHostProfile *
dmg_profile_host(const char *sysfs, bool connection, const char *example_file,
                 const char *profile_file, GError **error)
{
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new(sysfs ? sysfs : "/sys");

    if (sysfs || !connection) {
        dmg_host_profile_read_sysfs(host);
        /* /dev/kvm describes this machine: ask it only when judging this
         * machine, not another host's sysfs tree. */
        if (!sysfs || g_strcmp0(sysfs, "/sys") == 0)
            dmg_host_profile_probe_kvm(host, NULL);
    }
    /* The files come last: they override what the host says. */
    if (example_file && !dmg_host_profile_load_file(host, example_file, error))
        return NULL;
    if (profile_file && !dmg_host_profile_load_file(host, profile_file, error))
        return NULL;
    return g_steal_pointer(&host);
}

/* No version given: each domain is judged for its own <emulator>, probed;
 * a remote connection replaces that by its QEMU (dmg_common_qemu_from). */
static dmgQemuProfile *
dmg_profile_qemu(const char *version, char **features, GError **error)
{
    g_autoptr(dmgQemuProfile) qemu = dmg_qemu_profile_new();

    if (version) {
        if (!dmg_qemu_profile_set_version(qemu, version, error))
            return NULL;
        dmg_qemu_note_newer(qemu);
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

/* The example node's host profile, dmaguard-node.conf next to it: the
 * drivers bound to its node devices, which libvirt's test driver does not
 * keep (examples/README.md).  Only for a connection to the example node
 * itself (the default one, or its test:// URI), read through its node
 * devices: not with --sysfs. */
static char *
dmg_example_profile(const dmg_common_opts *o, const char *uri)
{
    static const char *const dirs[] = { DMG_SOURCE_EXAMPLES_DIR, DMG_DATADIR };
    g_autofree char *path = NULL;
    const char *rest;

    if (!uri || o->sysfs)
        return NULL;
    if (!g_str_has_prefix(uri, "test://") || strchr(uri, '?'))
        return NULL;
    /* test:///PATH; GLib keeps a leading "//" (POSIX leaves it open). */
    rest = uri + strlen("test://");
    while (rest[0] == '/' && rest[1] == '/')
        rest++;
    path = g_canonicalize_filename(rest, "/");
    for (gsize i = 0; i < G_N_ELEMENTS(dirs); i++) {
        g_autofree char *node = g_canonicalize_filename(DMG_EXAMPLE_NODE_XML, dirs[i]);

        if (g_str_equal(node, path))
            return g_build_filename(dirs[i], DMG_EXAMPLE_NODE_PROFILE, NULL);
    }
    return NULL;
}

gboolean
dmg_common_load_for(const dmg_common_opts *o, const char *uri, dmgHostProfile **host,
                    dmgQemuProfile **qemu, GError **error)
{
    g_autofree char *example = dmg_example_profile(o, uri);

    if (o->domain_caps && (!uri || o->sysfs)) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--domain-capabilities asks the host of the libvirt connection the domains are read from; it cannot be combined with --xml or --sysfs"));
        return FALSE;
    }
    if (!(*host = dmg_profile_host(o->sysfs, uri != NULL, example, o->host_profile, error)))
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

gboolean
dmg_common_load(dmg_common_opts *o, bool from_files, dmgHostProfile **host,
                dmgQemuProfile **qemu, GError **error)
{
    g_autofree char *uri = from_files ? NULL : dmg_common_uri(o);

    return dmg_common_load_for(o, uri, host, qemu, error);
}

static dmgDomainXML *
dmg_common_read_one(const dmg_common_opts *o, const char *xml_file, char **domains,
                    dmgHostProfile *host, dmgQemuProfile *qemu, GError **error)
{
    g_autofree char *uri = NULL;
    g_autoptr(GPtrArray) doms = NULL;
    virConnectPtr conn;
    g_autoptr(dmgDomainXML) d = NULL;

    if (xml_file) {
        d = g_new0(dmgDomainXML, 1);
        d->name = g_strdup(xml_file);
        if (!dmg_file_read(xml_file, DMG_FILE_MAX_XML, &d->xml, &d->len, error))
            return NULL;
        return g_steal_pointer(&d);
    }
    uri = dmg_common_uri(o);
    if (!(conn = dmg_common_open(o, uri, FALSE, error)))
        return NULL;
    if (dmg_common_connection_facts(o, host, qemu, conn, uri, error))
        doms = dmg_libvirt_domains(conn, domains, error);
    virConnectClose(conn);
    return doms ? g_ptr_array_steal_index(doms, 0) : NULL;
}

dmgDomainDef *
dmg_common_parse_one(const dmg_common_opts *o, const char *xml_file, char **domains,
                     dmgHostProfile *host, dmgQemuProfile *qemu, GError **error)
{
    g_autoptr(dmgDomainXML) d = NULL;

    if (!!xml_file == (domains && domains[0] && !domains[1])) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("give exactly one of --xml FILE or a domain name"));
        return NULL;
    }
    if (!(d = dmg_common_read_one(o, xml_file, domains, host, qemu, error)))
        return NULL;
    return dmg_qemu_domain_def_parse_string(d->xml, d->len, d->name, error);
}

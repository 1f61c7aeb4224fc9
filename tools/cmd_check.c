/*
 * cmd_check.c: `virt-dmaguard check`.
 */
#include "virt_dmaguard.h"

#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "domain_conf.h"
#include "dmg_i18n.h"
#include "libvirt_source.h"
#include "live_check.h"
#include "report.h"
#include "verdict.h"

typedef struct {
    dmg_common_opts common;
    char **xml_files;
    gboolean all;
    gboolean json;
    gboolean write_metadata;
    gboolean live;
    int live_timeout;
    char **domains;
} check_opts;

static void
check_opts_clear(check_opts *o)
{
    dmg_common_opts_clear(&o->common);
    g_strfreev(o->xml_files);
    g_strfreev(o->domains);
}

static gboolean
check_parse_args(int argc, char **argv, check_opts *o, GError **error)
{
    const GOptionEntry entries[] = {
        { "xml", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->xml_files,
          N_("Analyze a domain XML file (repeatable)"), N_("FILE") },
        { "all", 0, 0, G_OPTION_ARG_NONE, &o->all,
          N_("Analyze every domain on the connection"), NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &o->json,
          N_("Print a JSON document (format version 1)"), NULL },
        { "write-metadata", 0, 0, G_OPTION_ARG_NONE, &o->write_metadata,
          N_("Store each verdict in the domain's <metadata> (configuration, and live when running)"), NULL },
        { "live", 0, 0, G_OPTION_ARG_NONE, &o->live,
          N_("Ask the QEMU of each running domain for its migration blockers (query-migrate) and compare; needs a read-write connection, and libvirt marks the domain tainted (custom-monitor)"), NULL },
        { "live-timeout", 0, 0, G_OPTION_ARG_INT, &o->live_timeout,
          N_("Seconds to wait for each QEMU's answer with --live (default 10)"), N_("SECONDS") },
        { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->domains,
          NULL, NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(N_("[DOMAIN...|--all]"));

    g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
    g_option_context_set_summary(ctx, _("Predict whether the memory balloon can return memory and what blocks live migration, for domains with VFIO host devices and a vIOMMU.\n\nExit status: 0 analyzed, 1 a domain has configuration errors, 2 bad input or usage."));
    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    dmg_common_options_add(ctx, &o->common);
    if (!g_option_context_parse(ctx, &argc, &argv, error))
        return FALSE;
    if (o->xml_files && (o->common.uri || o->all || o->domains)) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--xml cannot be combined with --connect, --all or domain names"));
        return FALSE;
    }
    if (o->xml_files && o->write_metadata) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--write-metadata stores verdicts in libvirt domains; it cannot be combined with --xml"));
        return FALSE;
    }
    if (o->xml_files && o->live) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--live asks the QEMU of running libvirt domains; it cannot be combined with --xml"));
        return FALSE;
    }
    /* live_timeout is G_MININT unless given. */
    if (o->live_timeout != G_MININT && !o->live) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--live-timeout needs --live"));
        return FALSE;
    }
    if (o->live_timeout == G_MININT)
        o->live_timeout = DMG_LIVE_TIMEOUT_DEFAULT;
    if (o->live_timeout < 1 || o->live_timeout > 3600) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--live-timeout takes 1 to 3600 seconds"));
        return FALSE;
    }
    if (!o->xml_files && !o->all && !o->domains) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("nothing to check: give --xml FILE, domain names, or --all"));
        return FALSE;
    }
    if (o->all && o->domains) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--all cannot be combined with domain names"));
        return FALSE;
    }
    return TRUE;
}

static GPtrArray *
check_read_files(char **files, GError **error)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_domain_xml_free);

    for (char **f = files; *f; f++) {
        dmgDomainXML *d = g_new0(dmgDomainXML, 1);

        g_ptr_array_add(out, d);
        d->name = g_strdup(*f);
        if (!g_file_get_contents(*f, &d->xml, NULL, error))
            return NULL;
    }
    return g_steal_pointer(&out);
}

static GPtrArray *
check_read_libvirt(virConnectPtr conn, check_opts *o, GError **error)
{
    return dmg_libvirt_domains(conn, o->all ? NULL : o->domains, error);
}

typedef struct {
    JsonNode *verdict;
    const char *qemu_version;
} check_metadata_data;

static char *
check_metadata_element(const char *existing, gpointer opaque)
{
    check_metadata_data *d = opaque;

    return dmg_verdict_metadata_xml(d->verdict, existing, d->qemu_version);
}

static gboolean
check_write_metadata(virConnectPtr conn, GPtrArray *verdicts, gboolean quiet,
                     GError **error)
{
    for (guint i = 0; i < verdicts->len; i++) {
        JsonObject *dom = json_node_get_object(g_ptr_array_index(verdicts, i));
        /* The QEMU this domain was judged for. */
        check_metadata_data d = {
            g_ptr_array_index(verdicts, i),
            json_object_get_string_member(json_object_get_object_member(dom, "qemu"), "version"),
        };
        /* Skipped foreign domains have no verdict: go by the name. */
        const char *name = json_object_get_string_member(dom, "name");

        if (!dmg_libvirt_write_metadata(conn, name, check_metadata_element, &d, error))
            return FALSE;
    }
    if (!quiet)
        printf(_("\nStored the verdict in the <metadata> of %u domain(s) (namespace %s).\n"),
               verdicts->len, DMG_METADATA_NS);
    return TRUE;
}

/* Analyze everything first: with one bad input nothing is printed.  On a
 * connection, domains of other hypervisors (a fleet may mix them) are
 * skipped with a note instead. */
static GPtrArray *
check_analyze(GPtrArray *doms, dmgHostProfile *host, dmgQemuProfile *qemu,
              bool skip_foreign, GError **error)
{
    g_autoptr(GPtrArray) verdicts = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);

    for (guint i = 0; i < doms->len; i++) {
        dmgDomainXML *d = g_ptr_array_index(doms, i);
        JsonNode *v = dmg_check_xml(d->xml, strlen(d->xml), d->name, host, qemu, error);

        if (!v && skip_foreign &&
            g_error_matches(*error, DMG_CONF_ERROR, DMG_CONF_ERROR_UNSUPPORTED)) {
            g_printerr(_("virt-dmaguard check: skipping %s\n"), (*error)->message);
            g_clear_error(error);
            continue;
        }
        if (!v)
            return NULL;
        g_ptr_array_add(verdicts, v);
    }
    return g_steal_pointer(&verdicts);
}

/* QEMU's own answer for each running domain (live_check.c).  A domain
 * whose QEMU cannot be asked is "not checked", never a failed check. */
static void
check_live(virConnectPtr conn, GPtrArray *verdicts, guint timeout_s)
{
    for (guint i = 0; i < verdicts->len; i++) {
        JsonNode *v = g_ptr_array_index(verdicts, i);
        const char *name = json_object_get_string_member(json_node_get_object(v), "name");

        dmg_live_check_domain(conn, name, timeout_s, v);
    }
}

/* Where a verdict's QEMU version came from (its "qemu" member): the
 * probed binary, the remote connection, --qemu-version, or the newest
 * known. */
static const char *
check_qemu_label(JsonObject *q)
{
    const char *source = json_object_get_string_member(q, "version_source");

    if (g_strcmp0(source, "probed") == 0 && !json_object_get_null_member(q, "emulator"))
        return json_object_get_string_member(q, "emulator");
    if (g_strcmp0(source, "connection") == 0)
        return _("connection");
    if (g_strcmp0(source, "chosen") == 0)
        return _("chosen");
    return _("newest known");
}

static int
check_print(GPtrArray *verdicts, const dmgHostProfile *host,
            const dmgQemuProfile *qemu, gboolean json)
{
    int ret = DMG_EXIT_OK;

    for (guint i = 0; i < verdicts->len; i++) {
        if (dmg_verdict_has_errors(g_ptr_array_index(verdicts, i)))
            ret = DMG_EXIT_CONFIG_ERRORS;
    }
    if (json) {
        g_autoptr(JsonNode) profile = dmg_report_profile(host, qemu, verdicts);
        g_autofree char *doc = dmg_report_json(verdicts, profile, TRUE);

        printf("%s\n", doc);
    } else {
        g_autoptr(GString) out = g_string_new(NULL);
        bool mixed = verdicts->len && !dmg_report_common_qemu(verdicts);

        for (guint i = 0; i < verdicts->len; i++) {
            JsonObject *q = json_object_get_object_member(
                json_node_get_object(g_ptr_array_index(verdicts, i)), "qemu");

            if (i)
                g_string_append_c(out, '\n');
            dmg_report_text(out, g_ptr_array_index(verdicts, i));
            /* Domains judged for different QEMUs: say which. */
            if (mixed)
                g_string_append_printf(out, _("  judged for QEMU %s (%s)\n"),
                                       json_object_get_string_member(q, "version"),
                                       check_qemu_label(q));
        }
        fputs(out->str, stdout);
    }
    return ret;
}

/* Whether every domain was judged for the same binary. */
static bool
check_same_emulator(GPtrArray *verdicts)
{
    const char *first = NULL;

    for (guint i = 0; i < verdicts->len; i++) {
        JsonObject *q = json_object_get_object_member(
            json_node_get_object(g_ptr_array_index(verdicts, i)), "qemu");
        const char *e = json_object_get_null_member(q, "emulator")
            ? "" : json_object_get_string_member(q, "emulator");

        if (i && g_strcmp0(first, e) != 0)
            return false;
        first = e;
    }
    return true;
}

/* Where the version of the header line came from: the binary when every
 * domain was probed from the same one. */
static const char *
check_qemu_source(JsonObject *q, GPtrArray *verdicts)
{
    if (g_strcmp0(json_object_get_string_member(q, "version_source"), "probed") == 0 &&
        !check_same_emulator(verdicts))
        return _("probed");
    return check_qemu_label(q);
}

static void
check_print_profile(const dmgHostProfile *host, const dmgQemuProfile *qemu,
                    GPtrArray *verdicts)
{
    g_autoptr(JsonNode) own = dmg_report_qemu(qemu);
    JsonObject *q = verdicts->len ? dmg_report_common_qemu(verdicts) : json_node_get_object(own);
    g_autofree char *feats = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    g_autofree char *libvirt = dmg_libvirt_version_string(host->libvirt.version);
    const char *libvirt_src = dmg_libvirt_source_string(host->libvirt.source);
    g_autofree char *facts = dmg_host_profile_describe(host);
    JsonArray *fa;

    if (!q) {
        printf(_("Judging for libvirt %s (%s) and each domain's own QEMU; %s\n\n"),
               libvirt, libvirt_src, facts);
        return;
    }
    fa = json_object_get_array_member(q, "features");
    for (guint i = 0; i < json_array_get_length(fa); i++)
        g_ptr_array_add(names, (gpointer)json_array_get_string_element(fa, i));
    g_ptr_array_add(names, NULL);
    feats = g_strjoinv(", ", (char **)names->pdata);
    printf(_("Judging for libvirt %s (%s) and QEMU %s (%s)%s%s; %s\n\n"),
           libvirt, libvirt_src, json_object_get_string_member(q, "version"),
           check_qemu_source(q, verdicts), *feats ? _(" with ") : "", feats, facts);
}

int
dmg_cmd_check(int argc, char **argv)
{
    check_opts o = { .live_timeout = G_MININT };
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgHostProfile) host = NULL;
    g_autoptr(dmgQemuProfile) qemu = NULL;
    g_autoptr(GPtrArray) doms = NULL;
    g_autoptr(GPtrArray) verdicts = NULL;
    int ret = DMG_EXIT_BAD_INPUT;
    virConnectPtr conn = NULL;

    if (!check_parse_args(argc, argv, &o, &err) ||
        !dmg_common_load(&o.common, o.xml_files != NULL, &host, &qemu, &err))
        goto out;
    if (!o.xml_files) {
        g_autofree char *uri = dmg_common_uri(&o.common);

        conn = dmg_common_open(&o.common, uri, o.write_metadata || o.live, &err);
        /* --live without write access (polkit, socket permissions): read
         * the domains anyway; libvirt then refuses each monitor command,
         * and the domains are "not checked" with its reason. */
        if (!conn && o.live && !o.write_metadata) {
            g_clear_error(&err);
            conn = dmg_libvirt_open(uri, FALSE, &err);
        }
        if (!conn || !dmg_common_connection_facts(&o.common, host, qemu, conn, uri, &err))
            goto out;
    }
    doms = o.xml_files ? check_read_files(o.xml_files, &err) : check_read_libvirt(conn, &o, &err);
    if (!doms || !(verdicts = check_analyze(doms, host, qemu, !o.xml_files, &err)))
        goto out;
    if (o.live)
        check_live(conn, verdicts, (guint)o.live_timeout);
    if (!o.json)
        check_print_profile(host, qemu, verdicts);
    ret = check_print(verdicts, host, qemu, o.json);
    if (o.write_metadata && !check_write_metadata(conn, verdicts, o.json, &err))
        ret = DMG_EXIT_BAD_INPUT;

 out:
    if (err)
        g_printerr("virt-dmaguard check: %s\n", err->message);
    if (conn)
        virConnectClose(conn);
    check_opts_clear(&o);
    return ret;
}

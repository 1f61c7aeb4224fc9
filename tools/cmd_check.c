/*
 * cmd_check.c: `virt-dmaguard check`.
 */
#include "virt_dmaguard.h"

#include <stdio.h>
#include <unistd.h>

#include "check_host.h"
#include "dmg_i18n.h"
#include "libvirt_source.h"
#include "live_check.h"
#include "report.h"
#include "verdict.h"
#include "vm_options.h"

/* A fleet scan's default and limit of hosts checked at once. */
#define CHECK_JOBS_DEFAULT 4
#define CHECK_JOBS_MAX 64

typedef struct {
    dmg_common_opts common;
    char **xml_files;
    gboolean all;
    gboolean json;
    gboolean write_metadata;
    gboolean live;
    int live_timeout;
    int jobs;
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
        { "jobs", 'j', 0, G_OPTION_ARG_INT, &o->jobs,
          N_("Hosts checked at once when --connect is given several times (default 4, at most 64)"), N_("N") },
        { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->domains,
          NULL, NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(N_("[DOMAIN...|--all]"));

    g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
    g_option_context_set_summary(ctx, _("Predict whether the memory balloon can return memory and what blocks live migration, for domains with VFIO host devices and a vIOMMU.\n\nExit status: 0 analyzed, 1 a domain has configuration errors, 2 bad input or usage, or a domain could not be analyzed (the others are still reported); with several --connect, 4 is added when a host could not be checked."));
    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    dmg_common_options_add(ctx, &o->common);
    if (!dmg_common_parse(ctx, &argc, &argv, &o->common, TRUE, error))
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
    if (o->jobs == G_MININT)
        o->jobs = CHECK_JOBS_DEFAULT;
    if (o->jobs < 1 || o->jobs > CHECK_JOBS_MAX) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--jobs takes 1 to 64 hosts at once"));
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

/* The worst of a host's domains: 2 when one could not be analyzed, 1 when
 * one has configuration errors, else 0. */
static int
check_status(const dmg_check_host *h)
{
    if (h->not_analyzed->len)
        return DMG_EXIT_BAD_INPUT;
    for (guint i = 0; h->verdicts && i < h->verdicts->len; i++) {
        if (dmg_verdict_has_errors(g_ptr_array_index(h->verdicts, i)))
            return DMG_EXIT_CONFIG_ERRORS;
    }
    return DMG_EXIT_OK;
}

/* profile, domains and not_analyzed of one host, into @b's open object. */
static void
check_host_members(JsonBuilder *b, const dmg_check_host *h)
{
    g_autoptr(JsonNode) profile = dmg_report_profile(h->host, h->qemu, h->verdicts);

    dmg_report_members(b, h->verdicts, profile, h->not_analyzed);
}

static void
check_print_text(GString *out, GPtrArray *verdicts)
{
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
check_print_profile(GString *out, const dmgHostProfile *host, const dmgQemuProfile *qemu,
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
        g_string_append_printf(out, _("Judging for libvirt %s (%s) and each domain's own QEMU; %s\n\n"),
                               libvirt, libvirt_src, facts);
        return;
    }
    fa = json_object_get_array_member(q, "features");
    for (guint i = 0; i < json_array_get_length(fa); i++)
        g_ptr_array_add(names, (gpointer)json_array_get_string_element(fa, i));
    g_ptr_array_add(names, NULL);
    feats = g_strjoinv(", ", (char **)names->pdata);
    g_string_append_printf(out, _("Judging for libvirt %s (%s) and QEMU %s (%s)%s%s; %s\n\n"),
                           libvirt, libvirt_src, json_object_get_string_member(q, "version"),
                           check_qemu_source(q, verdicts), *feats ? _(" with ") : "", feats, facts);
}

/* One host's part of the text report: the facts line, the domains, and
 * what was stored. */
static void
check_host_text(GString *out, const dmg_check_host *h, gboolean write_metadata)
{
    check_print_profile(out, h->host, h->qemu, h->verdicts);
    check_print_text(out, h->verdicts);
    if (write_metadata)
        g_string_append_printf(out, _("\nStored the verdict in the <metadata> of %u domain(s) (namespace %s).\n"),
                               h->metadata_written, DMG_METADATA_NS);
}

/* One host, or the --xml files.  Each domain that could not be analyzed
 * is a message on standard error and an entry of not_analyzed; the others
 * are reported.  When none could be, nothing is printed (status 2). */
static int
check_one(const dmg_check_request *req, const char *uri, gboolean json)
{
    g_autoptr(dmg_check_host) h = dmg_check_host_run(req, uri);
    g_autoptr(GString) out = g_string_new(NULL);
    int ret;

    for (guint i = 0; i < h->notes->len; i++)
        g_printerr("virt-dmaguard check: %s\n", (char *)g_ptr_array_index(h->notes, i));
    for (guint i = 0; i < h->not_analyzed->len; i++)
        g_printerr("virt-dmaguard check: %s\n", json_object_get_string_member(
                       json_node_get_object(g_ptr_array_index(h->not_analyzed, i)), "message"));
    if (!h->verdicts) {
        g_printerr("virt-dmaguard check: %s\n", h->error->message);
        return DMG_EXIT_BAD_INPUT;
    }
    ret = check_status(h);
    if (!h->verdicts->len && h->not_analyzed->len)
        return ret;
    if (json) {
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "version");
        json_builder_add_int_value(b, DMG_VERDICT_FORMAT_VERSION);
        check_host_members(b, h);
        json_builder_end_object(b);
        dmg_json_print(b);
    } else {
        check_host_text(out, h, req->write_metadata && !h->error);
        fputs(out->str, stdout);
    }
    /* Verdicts printed, storing them failed. */
    if (h->error) {
        g_printerr("virt-dmaguard check: %s\n", h->error->message);
        return DMG_EXIT_BAD_INPUT;
    }
    return ret;
}

static JsonNode *
check_host_json(const dmg_check_host *h)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "uri");
    json_builder_add_string_value(b, h->uri);
    json_builder_set_member_name(b, "checked");
    json_builder_add_boolean_value(b, h->error == NULL);
    json_builder_set_member_name(b, "error");
    if (h->error)
        json_builder_add_string_value(b, h->error->message);
    else
        json_builder_add_null_value(b);
    if (h->verdicts)
        check_host_members(b, h);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

/* Several hosts: each its own section, in the order given; a host that
 * could not be checked is reported in its section and adds
 * DMG_EXIT_HOSTS_FAILED to the status (docs/virt-dmaguard.rst). */
static int
check_fleet(const dmg_check_request *req, char **uris, guint jobs, gboolean json)
{
    g_autoptr(GPtrArray) hosts = dmg_check_fleet(req, uris, jobs, isatty(STDERR_FILENO));
    g_autoptr(GString) out = g_string_new(NULL);
    g_autoptr(JsonBuilder) b = json_builder_new();
    int worst = DMG_EXIT_OK;
    guint failed = 0;
    int ret;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, DMG_VERDICT_FORMAT_VERSION);
    json_builder_set_member_name(b, "hosts");
    json_builder_begin_array(b);
    for (guint i = 0; i < hosts->len; i++) {
        const dmg_check_host *h = g_ptr_array_index(hosts, i);

        int st = check_status(h);

        for (guint j = 0; j < h->notes->len; j++)
            g_printerr("virt-dmaguard check: %s: %s\n", h->uri,
                       (char *)g_ptr_array_index(h->notes, j));
        for (guint j = 0; j < h->not_analyzed->len; j++)
            g_printerr("virt-dmaguard check: %s: %s\n", h->uri, json_object_get_string_member(
                           json_node_get_object(g_ptr_array_index(h->not_analyzed, j)), "message"));
        if (h->error)
            failed++;
        /* The worst of the hosts checked; 4 is or'ed in below. */
        worst = MAX(worst, st);
        json_builder_add_value(b, check_host_json(h));
        if (i)
            g_string_append_c(out, '\n');
        g_string_append_printf(out, _("== Host %s ==\n"), h->uri);
        if (h->verdicts)
            check_host_text(out, h, req->write_metadata && !h->error);
        if (h->error)
            g_string_append_printf(out, _("Not checked: %s\n"), h->error->message);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    if (json)
        dmg_json_print(b);
    else
        fputs(out->str, stdout);
    ret = worst;
    if (failed) {
        g_printerr(_("virt-dmaguard check: %u of %u hosts could not be checked\n"),
                   failed, hosts->len);
        ret |= DMG_EXIT_HOSTS_FAILED;
    }
    return ret;
}

int
dmg_cmd_check(int argc, char **argv)
{
    check_opts o = { .live_timeout = G_MININT, .jobs = G_MININT };
    g_autoptr(GError) err = NULL;
    dmg_check_request req = { 0 };
    g_autofree char *uri = NULL;
    int ret = DMG_EXIT_BAD_INPUT;

    if (!check_parse_args(argc, argv, &o, &err))
        goto out;
    req = (dmg_check_request){
        .common = &o.common,
        .xml_files = o.xml_files,
        .domains = o.all ? NULL : o.domains,
        .write_metadata = o.write_metadata,
        .live = o.live,
        .live_timeout = (guint)o.live_timeout,
    };
    if (o.common.uris && o.common.uris[0] && o.common.uris[1]) {
        g_autoptr(dmgHostProfile) host = NULL;
        g_autoptr(dmgQemuProfile) qemu = NULL;

        /* The options are the same for every host: a bad one is a usage
         * error once, not an error of each host. */
        if (!dmg_common_load_for(&o.common, o.common.uris[0], &host, &qemu, &err))
            goto out;
        ret = check_fleet(&req, o.common.uris, (guint)o.jobs, o.json);
    } else {
        if (!o.xml_files)
            uri = dmg_common_uri(&o.common);
        ret = check_one(&req, uri, o.json);
    }

 out:
    if (err)
        g_printerr("virt-dmaguard check: %s\n", err->message);
    check_opts_clear(&o);
    return ret;
}

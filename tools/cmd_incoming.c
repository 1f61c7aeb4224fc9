/*
 * cmd_incoming.c: `virt-dmaguard incoming`: the destination of
 * `virt-dmaguard migrate`, as QEMU started with -incoming by libvirt's
 * Prepare phase: listen, accept one source, TLS, read the domain XML,
 * realize it and create the VM, accept, receive the guest and let it go
 * on where it was.
 */
#include "virt_dmaguard.h"

#include <gio/gio.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu_postparse.h"
#include "dmg_i18n.h"
#include "domain_conf.h"
#include "domain_realize.h"
#include "migration/migration.h"
#include "migration_prepare.h"
#include "migration/socket.h"
#include "migration/tls.h"
#include "vfio/soft.h"
#include "vm.h"
#include "vm_options.h"

#define MiB (1024.0 * 1024.0)

typedef struct {
    dmg_common_opts common;
    char *listen;
    gboolean tls;
    char *tls_dir;
    gboolean no_verify;
    char *kvm_device;
    double seconds;
    double timeout;
    double wait;
    gboolean json;
} incoming_opts;

static void
incoming_opts_clear(incoming_opts *o)
{
    dmg_common_opts_clear(&o->common);
    g_free(o->listen);
    g_free(o->tls_dir);
    g_free(o->kvm_device);
}

static gboolean
incoming_parse_args(int argc, char **argv, incoming_opts *o, GError **error)
{
    const GOptionEntry entries[] = {
        { "listen", 0, 0, G_OPTION_ARG_STRING, &o->listen,
          N_("Where to wait for the source: [HOST:]PORT (PORT alone: loopback only; 0 picks a free port), [IPV6]:PORT or unix:PATH (required)"), N_("ADDRESS") },
        { "tls", 0, 0, G_OPTION_ARG_NONE, &o->tls,
          N_("Require TLS and a client certificate from the source"), NULL },
        { "tls-x509-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->tls_dir,
          N_("ca-cert.pem, server-cert.pem and server-key.pem (default /etc/pki/qemu)"), N_("DIR") },
        { "no-tls-verify-client", 0, 0, G_OPTION_ARG_NONE, &o->no_verify,
          N_("Do not ask the source for a certificate (libvirt's migrate_tls_x509_verify = 0)"), NULL },
        { "kvm-device", 0, 0, G_OPTION_ARG_FILENAME, &o->kvm_device,
          N_("The KVM device (default /dev/kvm)"), N_("PATH") },
        { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &o->seconds,
          N_("How long the guest runs on this side after it arrived (default 1)"), N_("N") },
        { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &o->timeout,
          N_("Give up when the connected source sends nothing for this long (default 30)"), N_("SECONDS") },
        { "wait", 0, 0, G_OPTION_ARG_DOUBLE, &o->wait,
          N_("Give up when no source connects within this time (default: wait for ever)"), N_("SECONDS") },
        { "json", 0, 0, G_OPTION_ARG_NONE, &o->json,
          N_("Print the result as JSON (the listening line and progress go to standard error)"), NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(N_("--listen ADDRESS"));

    o->seconds = 1;
    o->timeout = 30;
    g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
    g_option_context_set_summary(ctx, _("Wait for one `virt-dmaguard migrate` and take its guest over: the first line is 'listening on ADDRESS'; the source's domain XML is parsed and realized here and refused when it does not parse, would not start or cannot migrate; then the guest's RAM, device and vCPU state arrive, the guest continues here for --seconds and is checked.\n\nExit status: 0 the guest arrived and ran on without a mismatched read, its RAM checksum intact, 1 no guest arrived (a refused domain, a bad or vanished peer, garbage, a truncated stream, a TLS failure, a cancel from the source, no source within --wait) or it arrived broken, 2 bad input or usage (also: a listen address that cannot be used, a missing TLS file)."));
    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    dmg_common_options_add(ctx, &o->common);
    if (!dmg_common_parse(ctx, &argc, &argv, &o->common, FALSE, error))
        return FALSE;
    if (argc > 1) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("unexpected argument '%s': the domain comes from the source"), argv[1]);
        return FALSE;
    }
    if (!o->listen) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--listen ADDRESS is missing: e.g. --listen 0.0.0.0:4444, --listen 4444 (loopback) or --listen unix:/run/dmaguard.sock"));
        return FALSE;
    }
    if (!dmg_migration_address_check(o->listen, true, NULL, error))
        return FALSE;
    if (o->seconds < 0 || o->seconds > 86400 || o->timeout <= 0 || o->timeout > 86400 ||
        o->wait < 0 || o->wait > 86400) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--seconds must be 0 to 86400, --timeout above 0 up to 86400, --wait 0 to 86400"));
        return FALSE;
    }
    if ((o->tls_dir || o->no_verify) && !o->tls) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--tls-x509-dir and --no-tls-verify-client need --tls"));
        return FALSE;
    }
    return !o->tls || dmg_tls_files_check(o->tls_dir, true, error);
}

/* ------------------------------------------------------------------ */

typedef struct {
    GArray *rounds;                      /* migration_round_stats */
    FILE *progress;
} incoming_ctx;

static void
incoming_progress(const migration_round_stats *r, void *opaque)
{
    incoming_ctx *c = opaque;

    g_array_append_val(c->rounds, *r);
    dmg_print_round(c->progress, r);
}

/* What the prepare message asks for, realized here: NULL and a refusal
 * in @error when this host does not take it. */
typedef struct {
    dmgDomainDef *def;
    vmm_machine *m;
    vm_config cfg;
    vm *v;
} incoming_guest;

static void
incoming_guest_clear(incoming_guest *g)
{
    g_clear_pointer(&g->m, vmm_machine__free);
    g_clear_pointer(&g->v, vm__free);
    dmg_vm_config_clear(&g->cfg);
    g_clear_pointer(&g->def, dmg_domain_def_free);
}

static gboolean
incoming_refuse_findings(const char *what, GPtrArray *list, bool blockers, GError **error)
{
    g_autoptr(GString) s = g_string_new(NULL);

    for (guint i = 0; i < list->len; i++) {
        if (blockers) {
            const migration_blocker *b = g_ptr_array_index(list, i);

            g_string_append_printf(s, "\n  [%s] %s", b->code, b->message);
        } else {
            const vmm_finding *f = g_ptr_array_index(list, i);

            g_string_append_printf(s, "\n  [%s] %s", f->code, f->message);
        }
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "%s:%s", what, s->str);
    return FALSE;
}

static gboolean
incoming_prepare(const incoming_opts *o, const dmg_migration_prepare *p, dmgHostProfile *host,
                 dmgQemuProfile *qemu, incoming_guest *g, GError **error)
{
    g_autoptr(vmm_machine) dry = NULL;
    g_autoptr(dmgQemuProfile) own = NULL;

    if (!(g->def = dmg_qemu_domain_def_parse_string(p->xml, p->xml_len, _("the source's domain XML"), error)))
        return FALSE;
    /* The domain's own QEMU on this host, unless --qemu-version. */
    if (!(own = dmg_qemu_profile_for_domain(qemu, g->def, error)))
        return FALSE;
    dry = dmg_domain_realize(g->def, host, own, NULL);
    if (dry->findings.errors->len)
        return incoming_refuse_findings(_("the domain would not start on this host"),
                                        dry->findings.errors, false, error);
    /* the hook's rule: an incoming migration of a blocked domain is refused */
    if (!migration_blockers__empty(&dry->migration))
        return incoming_refuse_findings(_("the domain has migration blockers on this host"),
                                        dry->migration.blockers, true, error);
    dmg_vm_config(dry, p->accel, o->kvm_device, true, p->vcpus, p->memory, &g->cfg);
    if (!(g->v = vm__new(&g->cfg, error))) {
        g_prefix_error(error, _("cannot create the VM here: "));
        return FALSE;
    }
    g->m = dmg_domain_realize_on(g->def, host, own, &vfio_backend_soft, vm__address_space(g->v));
    if (g->m->findings.errors->len)
        return incoming_refuse_findings(_("the domain's devices failed to realize on this host"),
                                        g->m->findings.errors, false, error);
    return TRUE;
}

static void
incoming_print_json(const incoming_opts *o, const char *where, const char *peer,
                    const char *tls, const incoming_guest *g, const char *result,
                    const char *error, GArray *rounds, const migration_stats *st,
                    const vm_result *r)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    dmg_json_member_string(b, "listen", where);
    dmg_json_member_string(b, "source", peer);
    dmg_json_member_string(b, "tls", tls);
    dmg_json_member_string(b, "domain", g->def ? g->def->name : NULL);
    dmg_json_member_string(b, "result", result);
    dmg_json_member_string(b, "error", error);
    if (g->v)
        dmg_json_members_vm(b, &g->cfg);
    json_builder_set_member_name(b, "rounds");
    json_builder_add_int_value(b, rounds->len);
    if (st) {
        g_autofree char *sum = g_strdup_printf("0x%016" PRIx64, st->checksum);
        const dmg_json_int nums[] = { { "bytes", st->bytes }, { "usec", st->usec } };

        dmg_json_member_ints(b, nums, G_N_ELEMENTS(nums));
        dmg_json_member_string(b, "checksum", sum);
    }
    if (r) {
        json_builder_set_member_name(b, "guest");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "seconds");
        json_builder_add_double_value(b, r->seconds);
        dmg_json_members_guest(b, r);
        json_builder_end_object(b);
    }
    json_builder_end_object(b);
    dmg_json_print(b);
}

/* A UNIX socket this command created goes with it. */
static void
incoming_unlink(const char *listen, int lfd)
{
    struct stat st;
    const char *path = listen + strlen("unix:");

    if (lfd >= 0 && g_str_has_prefix(listen, "unix:") && lstat(path, &st) == 0 &&
        S_ISSOCK(st.st_mode))
        unlink(path);
}

int
dmg_cmd_incoming(int argc, char **argv)
{
    incoming_opts o = { 0 };
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgHostProfile) host = NULL;
    g_autoptr(dmgQemuProfile) qemu = NULL;
    g_autoptr(GArray) rounds = g_array_new(FALSE, TRUE, sizeof(migration_round_stats));
    g_autofree char *where = NULL, *peer = NULL, *who = NULL;
    dmg_migration_prepare prep = { 0 };
    incoming_guest g = { 0 };
    migration_tls *tls = NULL;
    migration_stats st = { 0 };
    vm_result r = { 0 };
    bool received = false, stopped = false;
    const char *result = "failed";
    gint64 t0;
    FILE *info;
    int lfd = -1, fd = -1;
    int ret = DMG_EXIT_BAD_INPUT;

    if (!incoming_parse_args(argc, argv, &o, &err) ||
        !dmg_common_load(&o.common, true, &host, &qemu, &err) ||
        (lfd = migration_socket__listen(o.listen, &err)) < 0)
        goto out;
    info = o.json ? stderr : stdout;
    where = migration_socket__peer_local(lfd);
    /* as --listen and --to spell it */
    if (g_str_has_prefix(o.listen, "unix:") && !g_str_has_prefix(where, "unix:")) {
        char *u = g_strconcat("unix:", where, NULL);

        g_free(where);
        where = u;
    }
    /* the first line: scripts read the port of --listen 0 from it */
    fprintf(info, _("listening on %s\n"), where);
    fflush(info);

    ret = DMG_EXIT_CONFIG_ERRORS;
    if ((fd = migration_socket__accept(lfd, dmg_timeout_ms(o.wait), &err)) < 0)
        goto report;
    /* one source: nobody else may connect */
    incoming_unlink(o.listen, lfd);
    close(lfd);
    lfd = -1;
    peer = migration_socket__peer(fd);
    who = g_strdup_printf(_("source %s"), peer);
    if (o.tls) {
        migration_tls_config tc = { .x509_dir = o.tls_dir, .verify_peer = !o.no_verify };

        if (!(tls = migration_tls__handshake(fd, MIGRATION_TLS_SERVER, &tc,
                                             dmg_timeout_ms(o.timeout), &err)))
            goto report;
        fprintf(info, _("connection from %s over TLS (%s)\n"), peer, migration_tls__description(tls));
    } else {
        fprintf(info, _("connection from %s\n"), peer);
    }
    fflush(info);
    {
        dmg_migration_link l;
        g_autoptr(GError) refusal = NULL;

        mig_chan__init(&l.ch, fd, tls, dmg_timeout_ms(o.timeout), who);

        if (!dmg_migration_prepare_receive(&l, &prep, &err))
            goto report;
        if (!incoming_prepare(&o, &prep, host, qemu, &g, &refusal)) {
            /* the source is told why, and so is the person here */
            g_set_error(&err, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                        _("refused the domain from %s: %s"), peer, refusal->message);
            dmg_migration_prepare_answer(&l, refusal->message, NULL);
            result = "refused";
            goto report;
        }
        if (!dmg_migration_prepare_answer(&l, NULL, &err))
            goto report;
    }
    fprintf(info, _("Domain '%s': %" PRIu64 " MiB on %s with %u vCPUs, accepted; receiving\n"),
            g.def->name, g.cfg.ram_size >> 20,
            g.cfg.accel == VM_ACCEL_KVM ? "KVM" : _("the software accelerator"), g.cfg.nr_vcpus);
    fflush(info);
    {
        incoming_ctx c = { .rounds = rounds, .progress = info };
        migration_params p = {
            .timeout_ms = dmg_timeout_ms(o.timeout),
            .autostart = true,
            .tls = tls,
            .progress = incoming_progress,
            .opaque = &c,
        };

        if (!migration__receive_machine(g.v, g.m, fd, &p, &st, &err)) {
            if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                result = "cancelled";
            g_prefix_error(&err, _("no guest arrived from %s: "), peer);
            goto report;
        }
    }
    received = true;
    if (!o.json) {
        printf(_("Received domain '%s' in %u round(s): %.1f MiB in %.1f ms\n"), g.def->name,
               st.rounds, st.bytes / MiB, st.usec / 1000.0);
        printf(_("  RAM checksum at switch-over: 0x%016" PRIx64 ", the same as the source's\n"),
               st.checksum);
        printf(_("  the guest continues here for %.1f s\n"), o.seconds);
        fflush(stdout);
    }
    t0 = g_get_monotonic_time();
    g_usleep((gulong)(o.seconds * G_USEC_PER_SEC));
    vm__stop(g.v, &r);
    r.seconds = (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
    stopped = true;
    if (r.guest_errors == 0 && r.checksum_ok && r.passes > 0) {
        result = "migrated";
        ret = DMG_EXIT_OK;
    } else {
        result = "broken";
    }
    if (!o.json)
        printf(_("  guest on the destination: ran %.1f s, %" PRIu64 " passes, mismatched reads: %" PRIu64 ", RAM checksum 0x%" PRIx64 " (expected 0x%" PRIx64 "): %s\n"),
               r.seconds, r.passes, r.guest_errors, r.checksum, r.checksum_expected,
               r.checksum_ok ? _("intact") : _("BROKEN"));
    if (ret != DMG_EXIT_OK)
        g_set_error(&err, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("the guest arrived broken: %" PRIu64 " passes, %" PRIu64 " mismatched reads, RAM checksum %s"),
                    r.passes, r.guest_errors, r.checksum_ok ? _("intact") : _("BROKEN"));

 report:
    if (o.json)
        incoming_print_json(&o, where, peer, tls ? migration_tls__description(tls) : NULL, &g,
                            result, err ? err->message : NULL, rounds,
                            received ? &st : NULL, stopped ? &r : NULL);

 out:
    g_clear_pointer(&tls, migration_tls__free);
    if (fd >= 0)
        close(fd);
    if (o.listen)
        incoming_unlink(o.listen, lfd);
    if (lfd >= 0)
        close(lfd);
    if (g.v) {
        g_autoptr(GError) threads = NULL;

        incoming_guest_clear(&g);
        if (!dmg_check_threads(&threads)) {
            g_printerr("virt-dmaguard incoming: %s\n", threads->message);
            ret = DMG_EXIT_CONFIG_ERRORS;
        }
    }
    incoming_guest_clear(&g);
    dmg_migration_prepare_clear(&prep);
    if (err)
        g_printerr("virt-dmaguard incoming: %s\n", err->message);
    incoming_opts_clear(&o);
    return ret;
}

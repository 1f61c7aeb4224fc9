/*
 * cmd_migrate.c: `virt-dmaguard migrate`: run the domain in the embedded
 * VMM and live-migrate it to `virt-dmaguard incoming` on another host (or
 * this one), as `virsh migrate --live` does with QEMU: the domain's
 * migration blockers first, then the connection (TLS if asked), the
 * prepare exchange (libvirt's Begin/Prepare: the domain XML goes first),
 * then precopy rounds and stop-and-copy.
 */
#include "dmg_file.h"
#include "virt_dmaguard.h"

#include <errno.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qemu_postparse.h"
#include "dmg_i18n.h"
#include "domain_conf.h"
#include "domain_realize.h"
#include "libvirt_source.h"
#include "migration/migration.h"
#include "migration_prepare.h"
#include "migration/socket.h"
#include "migration/tls.h"
#include "vfio/soft.h"
#include "vm.h"
#include "vm_options.h"
#include "xml_util.h"

#define MiB (1024.0 * 1024.0)

typedef struct {
    dmg_common_opts common;
    char *xml_file;
    char **domains;
    char *to;
    gboolean tls;
    char *tls_dir;
    char *tls_hostname;
    char *accel;
    char *kvm_device;
    gint vcpus;
    char *memory;
    double seconds;
    char *downtime;
    char *dirty_rate;
    gint max_rounds;
    double timeout;
    gboolean json;
} migrate_opts;

static void
migrate_opts_clear(migrate_opts *o)
{
    dmg_common_opts_clear(&o->common);
    g_free(o->xml_file);
    g_strfreev(o->domains);
    g_free(o->to);
    g_free(o->tls_dir);
    g_free(o->tls_hostname);
    g_free(o->accel);
    g_free(o->kvm_device);
    g_free(o->memory);
    g_free(o->downtime);
    g_free(o->dirty_rate);
}

/* What the checks of the options found. */
typedef struct {
    vm_accel accel;
    guint64 memory;
    guint64 downtime_bytes;
    guint64 dirty_rate;                  /* bytes/s, 0: no limit */
    char *host;                          /* --to's HOST, for TLS */
} migrate_args;

static gboolean
migrate_parse_downtime(const char *value, guint64 *bytes, GError **error)
{
    gsize n = value ? strlen(value) : 0;

    *bytes = 0;
    if (!value)
        return TRUE;
    /* a bare number would be read as QEMU's milliseconds: ask for a unit */
    if (n && g_ascii_isdigit(value[n - 1])) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--downtime-limit '%s' has no unit: give the dirty data left for stop-and-copy as a size such as 8M or 512K (not milliseconds as QEMU's downtime-limit)"),
                    value);
        return FALSE;
    }
    if (!dmg_size_parse(value, 1, bytes) || *bytes < 4096) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--downtime-limit '%s' is not a size of at least one page (4K); give it with a unit such as 8M"),
                    value);
        return FALSE;
    }
    return TRUE;
}

static gboolean
migrate_parse_rate(const char *value, guint64 *bytes, GError **error)
{
    *bytes = 0;
    if (!value)
        return TRUE;
    if (!dmg_size_parse(value, 1, bytes) || *bytes < 4096) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--dirty-rate '%s' is not a size of at least one page (4K) per second; give it with a unit such as 64M"),
                    value);
        return FALSE;
    }
    return TRUE;
}

static gboolean
migrate_parse_args(int argc, char **argv, migrate_opts *o, migrate_args *a, GError **error)
{
    const GOptionEntry entries[] = {
        { "xml", 0, 0, G_OPTION_ARG_FILENAME, &o->xml_file,
          N_("Migrate the domain of a domain XML file"), N_("FILE") },
        { "to", 0, 0, G_OPTION_ARG_STRING, &o->to,
          N_("Where `virt-dmaguard incoming` listens: HOST:PORT, [IPV6]:PORT or unix:PATH (required)"), N_("ADDRESS") },
        { "tls", 0, 0, G_OPTION_ARG_NONE, &o->tls,
          N_("Encrypt the migration with TLS and verify the destination's certificate"), NULL },
        { "tls-x509-dir", 0, 0, G_OPTION_ARG_FILENAME, &o->tls_dir,
          N_("ca-cert.pem, client-cert.pem and client-key.pem (default /etc/pki/qemu)"), N_("DIR") },
        { "tls-hostname", 0, 0, G_OPTION_ARG_STRING, &o->tls_hostname,
          N_("The name the destination's certificate must carry (default: the HOST of --to)"), N_("NAME") },
        { "accel", 0, 0, G_OPTION_ARG_STRING, &o->accel,
          N_("kvm (default) or soft"), N_("ACCEL") },
        { "kvm-device", 0, 0, G_OPTION_ARG_FILENAME, &o->kvm_device,
          N_("The KVM device (default /dev/kvm)"), N_("PATH") },
        { "vcpus", 0, 0, G_OPTION_ARG_INT, &o->vcpus,
          N_("Number of vCPUs running the guest program (default 2)"), N_("N") },
        { "memory", 0, 0, G_OPTION_ARG_STRING, &o->memory,
          N_("Run with this much guest memory instead of the domain's (KiB, or with a unit: 512M)"), N_("SIZE") },
        { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &o->seconds,
          N_("How long the guest runs before the migration starts (default 1)"), N_("N") },
        { "downtime-limit", 0, 0, G_OPTION_ARG_STRING, &o->downtime,
          N_("Stop and copy once the dirty data left fits this size (with a unit: 8M, the default)"), N_("SIZE") },
        { "dirty-rate", 0, 0, G_OPTION_ARG_STRING, &o->dirty_rate,
          N_("Hold the guest to dirtying at most this much memory per second (with a unit: 64M), as QEMU's dirty-limit does; without it the guest rewrites its working set as fast as it can and may never converge"), N_("SIZE") },
        { "max-rounds", 0, 0, G_OPTION_ARG_INT, &o->max_rounds,
          N_("Live rounds at most before stop-and-copy (default 30)"), N_("N") },
        { "timeout", 0, 0, G_OPTION_ARG_DOUBLE, &o->timeout,
          N_("Give up when the destination makes no progress for this long (default 30)"), N_("SECONDS") },
        { "json", 0, 0, G_OPTION_ARG_NONE, &o->json,
          N_("Print the result as JSON (progress lines go to standard error)"), NULL },
        { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->domains, NULL, NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(N_("[--xml FILE | DOMAIN] --to ADDRESS"));

    o->seconds = 1;
    o->vcpus = 2;
    o->timeout = 30;
    g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
    g_option_context_set_summary(ctx, _("Run the domain in the embedded VMM, then live-migrate it to `virt-dmaguard incoming` listening at ADDRESS: the domain's migration blockers are checked first, then the domain XML goes to the destination, which realizes it and accepts, then RAM, device and vCPU state follow in precopy rounds and a final stop-and-copy round.  SIGINT or SIGTERM cancel the migration after the round under way.\n\nExit status: 0 migrated (the destination acknowledged the RAM checksum; the source is stopped), 1 not migrated: a migration blocker, a refusal by the destination, a failed or cancelled migration (the guest kept running on the source), 2 bad input or usage (also: a missing TLS file, /dev/kvm unusable, a domain bigger than the host)."));
    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    dmg_common_options_add(ctx, &o->common);
    if (!dmg_common_parse(ctx, &argc, &argv, &o->common, FALSE, error))
        return FALSE;
    if (!o->to) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--to ADDRESS is missing: where `virt-dmaguard incoming --listen` waits, e.g. --to desthost:4444 or --to unix:/run/dmaguard.sock"));
        return FALSE;
    }
    if (!dmg_migration_address_check(o->to, false, &a->host, error) ||
        !dmg_vm_parse_accel(o->accel, &a->accel, error) ||
        !dmg_vm_parse_memory(o->memory, &a->memory, error) ||
        !migrate_parse_downtime(o->downtime, &a->downtime_bytes, error) ||
        !migrate_parse_rate(o->dirty_rate, &a->dirty_rate, error))
        return FALSE;
    if (o->seconds < 0 || o->seconds > 86400 || o->vcpus < 1 || o->vcpus > DMG_VM_MAX_VCPUS ||
        o->max_rounds < 0 || o->max_rounds > 10000 || o->timeout <= 0 || o->timeout > 86400) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--seconds must be 0 to 86400, --vcpus 1 to %u, --max-rounds 0 to 10000, --timeout above 0 up to 86400"),
                    DMG_VM_MAX_VCPUS);
        return FALSE;
    }
    if ((o->tls_dir || o->tls_hostname) && !o->tls) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("--tls-x509-dir and --tls-hostname need --tls"));
        return FALSE;
    }
    if (o->tls && !a->host && !o->tls_hostname) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("migrate --tls to %s needs --tls-hostname NAME: a UNIX socket carries no host name to check the destination's certificate against"),
                    o->to);
        return FALSE;
    }
    return !o->tls || dmg_tls_files_check(o->tls_dir, false, error);
}

/* ------------------------------------------------------------------ */
/* The domain: its XML as it goes to the destination, and parsed       */

static gboolean
migrate_read_domain(const migrate_opts *o, dmgHostProfile *host, dmgQemuProfile *qemu,
                    dmgDomainXML **out, GError **error)
{
    g_autoptr(dmgDomainXML) d = NULL;
    g_autoptr(GPtrArray) doms = NULL;
    g_autofree char *uri = NULL;
    virConnectPtr conn;

    if (!!o->xml_file == (o->domains && o->domains[0] && !o->domains[1])) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("give exactly one of --xml FILE or a domain name"));
        return FALSE;
    }
    if (o->xml_file) {
        d = g_new0(dmgDomainXML, 1);
        d->name = g_strdup(o->xml_file);
        if (!dmg_file_read(o->xml_file, DMG_FILE_MAX_XML, &d->xml, &d->len, error))
            return FALSE;
        *out = g_steal_pointer(&d);
        return TRUE;
    }
    uri = dmg_common_uri(&o->common);
    if (!(conn = dmg_common_open(&o->common, uri, FALSE, error)))
        return FALSE;
    if (dmg_common_connection_facts(&o->common, host, qemu, conn, uri, error))
        doms = dmg_libvirt_domains(conn, o->domains, error);
    virConnectClose(conn);
    if (!doms)
        return FALSE;
    *out = g_ptr_array_steal_index(doms, 0);
    return TRUE;
}

/* ------------------------------------------------------------------ */
/* SIGINT and SIGTERM: blocked in every thread, taken between rounds    */

static void
migrate_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

/* A signal that came, or 0; waits up to @ms for one. */
static int
migrate_take_signal(guint ms)
{
    sigset_t set;
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    int sig;

    migrate_signals(&set);
    do
        sig = sigtimedwait(&set, NULL, &ts);
    while (sig < 0 && errno == EINTR);
    return sig < 0 ? 0 : sig;
}

/* ------------------------------------------------------------------ */
/* The run                                                              */

typedef struct {
    migrate_opts *o;
    vmm_machine *m;
    GArray *rounds;                      /* migration_round_stats */
    FILE *progress;
    int signal;                          /* that cancelled it */
} migrate_ctx;

static void
migrate_progress(const migration_round_stats *r, void *opaque)
{
    migrate_ctx *c = opaque;
    int sig;

    g_array_append_val(c->rounds, *r);
    dmg_print_round(c->progress, r);
    if (!c->signal && (sig = migrate_take_signal(0))) {
        c->signal = sig;
        migration__set_error(c->m, _("cancelled by %s on the source"), g_strsignal(sig));
    }
}

/* The refusal before connecting: every blocker, then what to do. */
static void
migrate_print_blockers(const char *name, vmm_machine *m)
{
    GPtrArray *bl = m->migration.blockers;

    g_printerr(_("virt-dmaguard migrate: domain '%s' cannot migrate: %u migration blocker(s); nothing was sent and no connection was made\n"),
               name, bl->len);
    for (guint i = 0; i < bl->len; i++) {
        const migration_blocker *b = g_ptr_array_index(bl, i);
        const char *msg = b->message;
        gsize n = b->device ? strlen(b->device) : 0;

        /* "hostdev0: cannot ...": the device is named already */
        if (n && !strncmp(msg, b->device, n) && !strncmp(msg + n, ": ", 2))
            msg += n + 2;
        g_printerr(_("  blocker (%s): %s [%s]: %s\n"), migration_layer__to_string(b->layer),
                   b->device ? b->device : _("the machine"), b->code, msg);
    }
    g_printerr(_("What to do: detach the device before migrating and attach it again on the destination; or use a VFIO variant driver with migration support (<driver name='vfio' ... enable-migration='on'> on QEMU 8.1 or later); for a vIOMMU blocker, QEMU with the x-migration-iommu-pt feature (--qemu-feature x-migration-iommu-pt).  `virt-dmaguard check` shows the same blockers, and codes.rst explains each code.\n"));
}

static void
migrate_json_blockers(JsonBuilder *b, vmm_machine *m)
{
    GPtrArray *bl = m->migration.blockers;

    json_builder_set_member_name(b, "blockers");
    json_builder_begin_array(b);
    for (guint i = 0; i < bl->len; i++) {
        const migration_blocker *x = g_ptr_array_index(bl, i);

        json_builder_begin_object(b);
        dmg_json_member_string(b, "layer", migration_layer__to_string(x->layer));
        dmg_json_member_string(b, "code", x->code);
        dmg_json_member_string(b, "device", x->device);
        dmg_json_member_string(b, "message", x->message);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

typedef struct {
    const char *name;
    const char *result;                  /* migrated, blocked, refused, failed, cancelled */
    const char *error;
    const char *tls;                     /* the cipher, or NULL */
    const vm_config *cfg;
    const migration_stats *st;           /* or NULL: never started */
    GArray *rounds;
    bool source_checked;
    bool source_ok;                      /* it kept running, unharmed */
    const vm_result *source;             /* the source after a failure */
    vmm_machine *blocked;
} migrate_report;

static void
migrate_print_json(const migrate_opts *o, const migrate_report *rep)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    dmg_json_member_string(b, "domain", rep->name);
    dmg_json_member_string(b, "destination", o->to);
    dmg_json_member_string(b, "result", rep->result);
    dmg_json_member_string(b, "error", rep->error);
    dmg_json_member_string(b, "tls", rep->tls);
    if (rep->cfg)
        dmg_json_members_vm(b, rep->cfg);
    if (rep->blocked)
        migrate_json_blockers(b, rep->blocked);
    json_builder_set_member_name(b, "rounds");
    json_builder_begin_array(b);
    for (guint i = 0; rep->rounds && i < rep->rounds->len; i++) {
        const migration_round_stats *r = &g_array_index(rep->rounds, migration_round_stats, i);
        const dmg_json_int nums[] = {
            { "pages", r->pages }, { "zero_pages", r->zero_pages }, { "bytes", r->bytes },
            { "dirty_left", r->dirty_left }, { "usec", r->usec },
        };

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "round");
        json_builder_add_int_value(b, r->round);
        json_builder_set_member_name(b, "final");
        json_builder_add_boolean_value(b, r->final);
        dmg_json_member_ints(b, nums, G_N_ELEMENTS(nums));
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    if (rep->st && !strcmp(rep->result, "migrated")) {
        g_autofree char *sum = g_strdup_printf("0x%016" PRIx64, rep->st->checksum);
        const dmg_json_int nums[] = {
            { "pages", rep->st->pages }, { "zero_pages", rep->st->zero_pages },
            { "bytes", rep->st->bytes }, { "usec", rep->st->usec },
            { "downtime_usec", rep->st->downtime_usec },
            { "expected_downtime_usec", rep->st->expected_downtime_usec },
            { "device_bytes", rep->st->device_bytes },
        };

        dmg_json_member_ints(b, nums, G_N_ELEMENTS(nums));
        json_builder_set_member_name(b, "dirty_log");
        json_builder_add_boolean_value(b, rep->st->dirty_log);
        json_builder_set_member_name(b, "converged");
        json_builder_add_boolean_value(b, rep->st->converged);
        dmg_json_member_string(b, "checksum", sum);
    }
    if (rep->source_checked) {
        json_builder_set_member_name(b, "source");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "kept_running");
        json_builder_add_boolean_value(b, rep->source_ok);
        dmg_json_members_guest(b, rep->source);
        json_builder_end_object(b);
    }
    json_builder_end_object(b);
    dmg_json_print(b);
}

static void
migrate_print_text(const migrate_opts *o, const migrate_report *rep)
{
    const migration_stats *st = rep->st;
    double ms = st->usec / 1000.0;

    if (rep->tls)
        printf(_("Migrated domain '%s' to %s over TLS (%s) in %u round(s)\n"), rep->name, o->to,
               rep->tls, st->rounds);
    else
        printf(_("Migrated domain '%s' to %s without TLS in %u round(s)\n"), rep->name, o->to,
               st->rounds);
    printf(_("  time: %.1f ms, downtime: %.1f ms, %.1f MiB sent at %.1f MB/s\n"),
           ms, st->downtime_usec / 1000.0, st->bytes / MiB,
           st->usec ? (double)st->bytes / (double)st->usec : 0.0);
    if (st->expected_downtime_usec)
        printf(_("  expected downtime after the last live round: %.1f ms\n"),
               st->expected_downtime_usec / 1000.0);
    printf(_("  pages: %" PRIu64 " with data, %" PRIu64 " zero; device state: %" PRIu64 " bytes; %s\n"),
           st->pages, st->zero_pages, st->device_bytes,
           !st->dirty_log ? _("no dirty logging (software accelerator): one stop-and-copy round")
           : st->converged ? _("converged within the downtime limit")
                           : _("did not converge: stop-and-copy after the last allowed round"));
    printf(_("  RAM checksum at switch-over: 0x%016" PRIx64 ", acknowledged by the destination\n"),
           st->checksum);
    printf(_("  source: paused at the switch-over, now stopped; the guest runs on the destination\n"));
}

/* After a failure: the guest must still run on the source, unharmed. */
static gboolean
migrate_check_source(vm *v, vm_result *r)
{
    bool running = vm__started(v) && !vm__paused(v);

    if (running)
        g_usleep(200 * 1000);            /* a few more passes */
    vm__stop(v, r);
    if (running && r->guest_errors == 0 && r->checksum_ok) {
        g_printerr(_("virt-dmaguard migrate: the guest keeps running on the source: %" PRIu64 " passes, no mismatched read, RAM checksum intact (stopped now as this command ends)\n"),
                   r->passes);
        return TRUE;
    }
    g_printerr(_("virt-dmaguard migrate: the guest on the source is BROKEN after the failed migration: %s, %" PRIu64 " mismatched reads, RAM checksum %s\n"),
               running ? _("running") : _("NOT running"), r->guest_errors,
               r->checksum_ok ? _("intact") : _("BROKEN"));
    return FALSE;
}

/* Connect, TLS, prepare: the destination has taken the domain. */
static gboolean
migrate_connect(migrate_opts *o, const migrate_args *a, const dmgDomainXML *d,
                const vm_config *cfg, int *fd, migration_tls **tls, char **peer,
                GError **error)
{
    guint ms = dmg_timeout_ms(o->timeout);
    dmg_migration_prepare p = {
        .accel = cfg->accel, .vcpus = cfg->nr_vcpus, .memory = cfg->ram_size,
        .xml = d->xml, .xml_len = d->len,
    };
    dmg_migration_link l;
    g_autofree char *where = NULL;

    if ((*fd = migration_socket__connect(o->to, ms, error)) < 0)
        return FALSE;
    where = migration_socket__peer(*fd);
    *peer = g_strdup_printf(_("destination %s"), o->to);
    if (o->tls) {
        migration_tls_config tc = {
            .x509_dir = o->tls_dir,
            .hostname = o->tls_hostname ? o->tls_hostname : a->host,
        };

        if (!(*tls = migration_tls__handshake(*fd, MIGRATION_TLS_CLIENT, &tc, ms, error)))
            return FALSE;
    }
    if (!o->json) {
        if (*tls)
            printf(_("connected to %s over TLS (%s)\n"), where, migration_tls__description(*tls));
        else
            printf(_("connected to %s\n"), where);
        fflush(stdout);
    }
    mig_chan__init(&l.ch, *fd, *tls, ms, *peer);
    return dmg_migration_prepare_send(&l, &p, error) &&
           dmg_migration_prepare_wait_answer(&l, error);
}

int
dmg_cmd_migrate(int argc, char **argv)
{
    migrate_opts o = { 0 };
    migrate_args a = { 0 };
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgHostProfile) host = NULL;
    g_autoptr(dmgQemuProfile) qemu = NULL;
    g_autoptr(dmgDomainXML) d = NULL;
    g_autoptr(dmgDomainDef) def = NULL;
    g_autoptr(vmm_machine) dry = NULL;
    vmm_machine *m = NULL;
    migration_tls *tls = NULL;
    g_autofree char *peer = NULL;
    g_autoptr(GArray) rounds = g_array_new(FALSE, TRUE, sizeof(migration_round_stats));
    vm_config cfg = { 0 };
    migration_stats st = { 0 };
    vm_result r = { 0 };
    migrate_report rep = { .rounds = rounds };
    vm *v = NULL;
    int fd = -1, sig;
    int ret = DMG_EXIT_BAD_INPUT;
    sigset_t sigs, old_sigs;

    /* before any thread: every thread the VM starts inherits the mask */
    migrate_signals(&sigs);
    pthread_sigmask(SIG_BLOCK, &sigs, &old_sigs);
    if (!migrate_parse_args(argc, argv, &o, &a, &err) ||
        !dmg_common_load(&o.common, o.xml_file != NULL, &host, &qemu, &err) ||
        !migrate_read_domain(&o, host, qemu, &d, &err) ||
        !(def = dmg_qemu_domain_def_parse_string(d->xml, d->len, d->name, &err)) ||
        !dmg_common_qemu_for_domain(&qemu, def, &err))
        goto out;
    rep.name = def->name;
    /* migrate_prepare(): the blockers `check` reports refuse it before
     * anything else happens */
    dry = dmg_domain_realize(def, host, qemu, NULL);
    if (!migration_blockers__empty(&dry->migration)) {
        migrate_print_blockers(def->name, dry);
        rep.result = "blocked";
        rep.blocked = dry;
        if (o.json)
            migrate_print_json(&o, &rep);
        ret = DMG_EXIT_CONFIG_ERRORS;
        goto out;
    }
    dmg_vm_config(dry, a.accel, o.kvm_device, true, (unsigned)o.vcpus, a.memory, &cfg);
    cfg.dirty_rate = a.dirty_rate;
    rep.cfg = &cfg;
    if (!(v = vm__new(&cfg, &err)))
        goto out;
    m = dmg_domain_realize_on(def, host, qemu, &vfio_backend_soft, vm__address_space(v));
    for (guint i = 0; i < m->findings.errors->len; i++)
        g_printerr(_("virt-dmaguard migrate: %s\n"), ((vmm_finding *)g_ptr_array_index(m->findings.errors, i))->message);
    if (!vm__start(v, &err))
        goto out;
    if (!o.json)
        printf(_("Domain '%s': running on %s with %u vCPUs and %" PRIu64 " MiB; migrating to %s in %.1f s\n"),
               def->name, cfg.accel == VM_ACCEL_KVM ? "KVM" : _("the software accelerator"),
               cfg.nr_vcpus, cfg.ram_size >> 20, o.to, o.seconds);
    fflush(stdout);
    ret = DMG_EXIT_CONFIG_ERRORS;
    if ((sig = migrate_take_signal(dmg_timeout_ms(o.seconds)))) {
        g_set_error(&err, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                    _("%s before the migration started; nothing was sent"), g_strsignal(sig));
        rep.result = "cancelled";
    } else if (!migrate_connect(&o, &a, d, &cfg, &fd, &tls, &peer, &err)) {
        rep.result = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED) ? "refused"
                                                                                    : "failed";
    } else {
        migrate_ctx c = { .o = &o, .m = m, .rounds = rounds,
                          .progress = o.json ? stderr : stdout };
        migration_params p = {
            .downtime_bytes = a.downtime_bytes,
            .max_rounds = (guint)o.max_rounds,
            .timeout_ms = dmg_timeout_ms(o.timeout),
            .return_path = true,
            .tls = tls,
            .progress = migrate_progress,
            .opaque = &c,
        };
        gboolean ok = migration__send_machine(v, m, fd, &p, &st, &err);

        rep.st = &st;
        rep.tls = tls ? migration_tls__description(tls) : NULL;
        if (ok && migration__ram_checksum(v) != st.checksum) {
            /* the paused source still holds what went: it must hash alike */
            g_set_error(&err, G_IO_ERROR, G_IO_ERROR_FAILED,
                        _("internal error: the paused source's RAM hashes to 0x%016" PRIx64 ", not the 0x%016" PRIx64 " sent"),
                        migration__ram_checksum(v), st.checksum);
            ok = FALSE;
        }
        if (ok) {
            rep.result = "migrated";
            vm__stop(v, &r);
            if (o.json)
                migrate_print_json(&o, &rep);
            else
                migrate_print_text(&o, &rep);
            ret = DMG_EXIT_OK;
        } else {
            rep.result = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "cancelled"
                                                                               : "failed";
        }
    }
    if (ret != DMG_EXIT_OK) {
        /* the error first, then what became of the guest */
        g_printerr("virt-dmaguard migrate: %s\n", err->message);
        rep.error = err->message;
        rep.source_checked = true;
        rep.source = &r;
        rep.source_ok = migrate_check_source(v, &r);
        if (o.json)
            migrate_print_json(&o, &rep);
        g_clear_error(&err);
    }

 out:
    g_clear_pointer(&tls, migration_tls__free);
    if (fd >= 0)
        close(fd);
    g_clear_pointer(&m, vmm_machine__free);
    if (v) {
        g_autoptr(GError) threads = NULL;

        g_clear_pointer(&v, vm__free);
        if (!dmg_check_threads(&threads)) {
            g_printerr("virt-dmaguard migrate: %s\n", threads->message);
            ret = DMG_EXIT_CONFIG_ERRORS;
        }
    }
    dmg_vm_config_clear(&cfg);
    if (err)
        g_printerr("virt-dmaguard migrate: %s\n", err->message);
    g_free(a.host);
    migrate_opts_clear(&o);
    /* a signal still pending would kill us on the way out */
    while (migrate_take_signal(0))
        ;
    pthread_sigmask(SIG_SETMASK, &old_sigs, NULL);
    return ret;
}

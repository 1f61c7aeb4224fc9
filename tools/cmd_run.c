/*
 * cmd_run.c: `virt-dmaguard run`: boot the domain's memory layout in the
 * embedded VMM and run the guest program while the memory map churns.
 */
#include "virt_dmaguard.h"

#include <inttypes.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "dmg_i18n.h"
#include "domain_conf.h"
#include "domain_realize.h"
#include "libvirt_source.h"
#include "virtio/memory_device.h"
#include "run_balloon.h"
#include "vfio/soft.h"
#include "vm.h"
#include "vm_options.h"
#include "xml_util.h"

typedef struct {
    dmg_common_opts common;
    char *xml_file;
    char **domains;
    double seconds;
    gint64 min_transactions;
    gint vcpus;
    gboolean json;
    gboolean non_atomic;
    char *accel;
    char *kvm_device;
    char *balloon;
    char *memory;
} run_opts;

static void
run_opts_clear(run_opts *o)
{
    dmg_common_opts_clear(&o->common);
    g_free(o->xml_file);
    g_strfreev(o->domains);
    g_free(o->accel);
    g_free(o->kvm_device);
    g_free(o->balloon);
    g_free(o->memory);
}

static gboolean
run_parse_args(int argc, char **argv, run_opts *o, GError **error)
{
    const GOptionEntry entries[] = {
        { "xml", 0, 0, G_OPTION_ARG_FILENAME, &o->xml_file,
          N_("Run the memory layout of a domain XML file"), N_("FILE") },
        { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &o->seconds,
          N_("How long the guest runs (default 5)"), N_("N") },
        { "min-transactions", 0, 0, G_OPTION_ARG_INT64, &o->min_transactions,
          N_("Run at least this many memory transactions (default 0)"), N_("N") },
        { "vcpus", 0, 0, G_OPTION_ARG_INT, &o->vcpus,
          N_("Number of vCPUs running the guest program (default 2)"), N_("N") },
        { "non-atomic", 0, 0, G_OPTION_ARG_NONE, &o->non_atomic,
          N_("Apply memslot updates one at a time, as QEMU did before seed 003"), NULL },
        { "accel", 0, 0, G_OPTION_ARG_STRING, &o->accel,
          N_("kvm (default) or soft"), N_("ACCEL") },
        { "kvm-device", 0, 0, G_OPTION_ARG_FILENAME, &o->kvm_device,
          N_("The KVM device (default /dev/kvm)"), N_("PATH") },
        { "balloon", 0, 0, G_OPTION_ARG_STRING, &o->balloon,
          N_("Realize the host devices on the soft VFIO backend, set the balloon to this much guest memory (KiB, or with a unit: 512M, 2G) and measure what returns to the host"), N_("TARGET") },
        { "memory", 0, 0, G_OPTION_ARG_STRING, &o->memory,
          N_("Run with this much guest memory instead of the domain's (memory devices scale alike), for a host smaller than the domain"), N_("SIZE") },
        { "json", 0, 0, G_OPTION_ARG_NONE, &o->json,
          N_("Print the result as JSON"), NULL },
        { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->domains, NULL, NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(N_("[--xml FILE | DOMAIN]"));

    o->seconds = 5;
    o->vcpus = 2;
    g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
    g_option_context_set_summary(ctx, _("Boot the domain's memory layout in the embedded VMM on /dev/kvm and run a guest program that reads and writes every page of RAM, while the memory map keeps changing: an MMIO hole is punched into RAM and removed, and RAM is resized.\n\nExit status: 0 no spurious fault and the guest's RAM checksum is intact, 1 the guest saw spurious faults or a broken checksum, 2 bad input or usage (also: /dev/kvm unusable, domain bigger than the host)."));
    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    dmg_common_options_add(ctx, &o->common);
    if (!dmg_common_parse(ctx, &argc, &argv, &o->common, FALSE, error))
        return FALSE;
    if (o->accel && strcmp(o->accel, "kvm") != 0 && strcmp(o->accel, "soft") != 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--accel '%s' is not an accelerator; use kvm or soft"), o->accel);
        return FALSE;
    }
    if (o->seconds < 0 || o->seconds > 86400 || o->vcpus < 1 || o->vcpus > 64 ||
        o->min_transactions < 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--seconds must be 0 to 86400, --vcpus 1 to 64, --min-transactions not negative"));
        return FALSE;
    }
    return TRUE;
}

/* The memory the realized model has: pc.ram and the plugged part of each
 * memory device. */
static void
run_config(const vmm_machine *m, const run_opts *o, guint64 memory, vm_config *cfg)
{
    vm_accel accel = VM_ACCEL_KVM;

    dmg_vm_parse_accel(o->accel, &accel, NULL);
    dmg_vm_config(m, accel, o->kvm_device, !o->non_atomic, (unsigned)o->vcpus, memory, cfg);
}

static void
run_print_text(const char *name, const vm_config *cfg, const vm_result *r)
{
    printf(_("Domain '%s': ran %.1f s on %s with %u vCPUs, %s memslot updates\n"), name,
           r->seconds, cfg->accel == VM_ACCEL_KVM ? "KVM" : _("the software accelerator"),
           cfg->nr_vcpus, cfg->atomic ? _("atomic (seed 003)") : _("non-atomic"));
    printf(_("  memory: %" PRIu64 " MiB pc.ram, %u memory device(s); %u slots in use at the end\n"),
           cfg->ram_size >> 20, cfg->memory_devices->len, r->slots_used);
    printf(_("  transactions: %" PRIu64 ", commits: %" PRIu64 " (%" PRIu64 " inhibited vCPU ioctls), vCPU kicks: %" PRIu64 "\n"),
           r->transactions, r->commits, r->inhibited_commits, r->kicks);
    printf(_("  guest: %" PRIu64 " passes over %" PRIu64 " MiB, spurious faults: %" PRIu64 ", mismatched reads: %" PRIu64 "\n"),
           r->passes, r->touched_bytes >> 20, r->spurious_faults, r->guest_errors);
    printf(_("  RAM checksum: 0x%" PRIx64 " (expected 0x%" PRIx64 "): %s\n"),
           r->checksum, r->checksum_expected, r->checksum_ok ? _("intact") : _("BROKEN"));
}

static void
run_print_json(const char *name, const vm_config *cfg, const vm_result *r)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *sum = g_strdup_printf("0x%" PRIx64 "", r->checksum);
    const dmg_json_int nums[] = {
        { "vcpus", cfg->nr_vcpus }, { "ram_bytes", cfg->ram_size },
        { "slots", r->slots_used }, { "transactions", r->transactions },
        { "commits", r->commits }, { "inhibited_commits", r->inhibited_commits },
        { "kicks", r->kicks }, { "ioctls", r->ioctls }, { "passes", r->passes },
        { "spurious_faults", r->spurious_faults }, { "mmio_exits", r->mmio_exits },
        { "guest_errors", r->guest_errors }, { "touched_bytes", r->touched_bytes },
    };

    json_builder_begin_object(b);
    dmg_json_member_string(b, "domain", name);
    dmg_json_member_string(b, "accel", dmg_vm_accel_name(cfg->accel));
    json_builder_set_member_name(b, "atomic");
    json_builder_add_boolean_value(b, cfg->atomic);
    json_builder_set_member_name(b, "seconds");
    json_builder_add_double_value(b, r->seconds);
    dmg_json_member_ints(b, nums, G_N_ELEMENTS(nums));
    dmg_json_member_string(b, "checksum", sum);
    json_builder_set_member_name(b, "checksum_ok");
    json_builder_add_boolean_value(b, r->checksum_ok);
    json_builder_end_object(b);
    dmg_json_print(b);
}

static void
run_print_balloon(const vmm_machine *m, const balloon_report *b, gboolean json)
{
    GPtrArray *inh = m->discard.inhibitors;

    if (json) {
        g_autoptr(JsonBuilder) jb = json_builder_new();
        const dmg_json_int nums[] = {
            { "target_bytes", b->target }, { "inflated_pages", b->inflated_pages },
            { "discarded_pages", b->discarded_pages }, { "skipped_pages", b->skipped_pages },
            { "returned_bytes", b->returned }, { "audited_pages", b->audited_pages },
            { "stale_pages", b->stale_pages },
        };

        json_builder_begin_object(jb);
        dmg_json_member_ints(jb, nums, G_N_ELEMENTS(nums));
        json_builder_set_member_name(jb, "inhibitors");
        json_builder_begin_array(jb);
        for (guint i = 0; i < inh->len; i++)
            json_builder_add_string_value(jb, ((discard_inhibitor *)g_ptr_array_index(inh, i))->code);
        json_builder_end_array(jb);
        json_builder_end_object(jb);
        dmg_json_print(jb);
        return;
    }
    printf(_("  balloon: target %" G_GUINT64_FORMAT " MiB, %" G_GUINT64_FORMAT " pages inflated: %" G_GUINT64_FORMAT " discarded, %" G_GUINT64_FORMAT " skipped\n"),
           b->target >> 20, b->inflated_pages, b->discarded_pages, b->skipped_pages);
    printf(_("  returned to the host (RSS): %" G_GUINT64_FORMAT " MiB\n"), b->returned >> 20);
    for (guint i = 0; i < inh->len; i++) {
        discard_inhibitor *who = g_ptr_array_index(inh, i);

        printf(_("  inhibitor: %s"), who->code);
        if (who->group >= 0)
            printf(_(", IOMMU group %d"), who->group);
        for (guint d = 0; d < who->devices->len; d++)
            printf("%s%s", d ? ", " : _(", devices "), (char *)g_ptr_array_index(who->devices, d));
        printf("\n");
    }
    printf(_("  coherence auditor: %" G_GUINT64_FORMAT " DMA-mapped pages, %" G_GUINT64_FORMAT " stale\n"),
           b->audited_pages, b->stale_pages);
}

static int
run_with_balloon(vm *v, const dmgDomainDef *def, run_opts *o, dmgHostProfile *host,
                 dmgQemuProfile *qemu, const vm_config *cfg, GError **error)
{
    g_autoptr(vmm_machine) m = NULL;
    balloon_report b;
    vm_result r;
    guint64 target;

    if (!dmg_size_parse(o->balloon, 1024, &target)) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("--balloon '%s' is not a memory size; give KiB or a size with a unit such as 512M"),
                    o->balloon);
        return DMG_EXIT_BAD_INPUT;
    }
    m = dmg_domain_realize_on(def, host, qemu, &vfio_backend_soft, vm__address_space(v));
    for (guint i = 0; i < m->findings.errors->len; i++)
        g_printerr(_("virt-dmaguard run: %s\n"), ((vmm_finding *)g_ptr_array_index(m->findings.errors, i))->message);
    if (!vm__start(v, error))
        return DMG_EXIT_BAD_INPUT;
    if (!run_balloon(v, m, cfg->ram_size, target, &b, error)) {
        vm__stop(v, &r);
        return DMG_EXIT_BAD_INPUT;
    }
    vm__stop(v, &r);
    if (!o->json)
        run_print_text(def->name, cfg, &r);
    run_print_balloon(m, &b, o->json);
    return b.stale_pages == 0 && r.checksum_ok ? DMG_EXIT_OK : DMG_EXIT_CONFIG_ERRORS;
}

int
dmg_cmd_run(int argc, char **argv)
{
    run_opts o = { 0 };
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgHostProfile) host = NULL;
    g_autoptr(dmgQemuProfile) qemu = NULL;
    g_autoptr(dmgDomainDef) def = NULL;
    g_autoptr(vmm_machine) m = NULL;
    vm_config cfg = { 0 };
    vm_result r;
    vm *v = NULL;
    guint64 memory = 0;
    int ret = DMG_EXIT_BAD_INPUT;

    if (!run_parse_args(argc, argv, &o, &err) ||
        !dmg_common_load(&o.common, o.xml_file != NULL, &host, &qemu, &err) ||
        !(def = dmg_common_parse_one(&o.common, o.xml_file, o.domains, host, qemu, &err)) ||
        !dmg_common_qemu_for_domain(&qemu, def, &err))
        goto out;
    m = dmg_domain_realize(def, host, qemu, NULL);
    if (!dmg_vm_parse_memory(o.memory, &memory, &err))
        goto out;
    run_config(m, &o, memory, &cfg);
    if (!(v = vm__new(&cfg, &err)))
        goto out;
    if (o.balloon) {
        ret = run_with_balloon(v, def, &o, host, qemu, &cfg, &err);
        g_clear_pointer(&v, vm__free);
        if (ret != DMG_EXIT_BAD_INPUT && !dmg_check_threads(&err))
            ret = DMG_EXIT_CONFIG_ERRORS;
        goto out;
    }
    if (!vm__run(v, o.seconds, (guint64)o.min_transactions, &r, &err))
        goto out;
    g_clear_pointer(&v, vm__free);
    if (!dmg_check_threads(&err)) {
        ret = DMG_EXIT_CONFIG_ERRORS;
        goto out;
    }
    if (o.json)
        run_print_json(def->name, &cfg, &r);
    else
        run_print_text(def->name, &cfg, &r);
    ret = r.spurious_faults == 0 && r.checksum_ok ? DMG_EXIT_OK : DMG_EXIT_CONFIG_ERRORS;

 out:
    vm__free(v);
    dmg_vm_config_clear(&cfg);
    if (err)
        g_printerr("virt-dmaguard run: %s\n", err->message);
    run_opts_clear(&o);
    return ret;
}

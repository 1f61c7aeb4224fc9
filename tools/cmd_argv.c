/*
 * cmd_argv.c: `virt-dmaguard argv`: the QEMU command line behind the
 * verdict, from the same realized model as `check`.
 */
#include "virt_dmaguard.h"

#include <stdio.h>
#include <string.h>

#include "dmg_i18n.h"
#include "domain_conf.h"
#include "domain_realize.h"
#include "libvirt_source.h"
#include "qemu_command.h"

typedef struct {
    dmg_common_opts common;
    char *xml_file;
    char **domains;
} argv_opts;

static void
argv_opts_clear(argv_opts *o)
{
    dmg_common_opts_clear(&o->common);
    g_free(o->xml_file);
    g_strfreev(o->domains);
}

static gboolean
argv_parse_args(int argc, char **argv, argv_opts *o, GError **error)
{
    const GOptionEntry entries[] = {
        { "xml", 0, 0, G_OPTION_ARG_FILENAME, &o->xml_file,
          N_("Build the command line of a domain XML file"), N_("FILE") },
        { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->domains, NULL, NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(N_("[--xml FILE | DOMAIN]"));

    g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
    g_option_context_set_summary(ctx, _("Print the QEMU arguments for a domain, one per line, as libvirt's QEMU driver would build them for the devices dmaguard models.\n\nExit status: 0 printed, 1 QEMU would refuse the domain, 2 bad input or usage."));
    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    dmg_common_options_add(ctx, &o->common);
    if (!dmg_common_parse(ctx, &argc, &argv, &o->common, FALSE, error))
        return FALSE;
    return TRUE;
}

int
dmg_cmd_argv(int argc, char **argv)
{
    argv_opts o = { 0 };
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgHostProfile) host = NULL;
    g_autoptr(dmgQemuProfile) qemu = NULL;
    g_autoptr(dmgDomainDef) def = NULL;
    g_autoptr(vmm_machine) m = NULL;
    g_autoptr(GPtrArray) lines = NULL;
    g_autofree char *out = NULL;
    int ret = DMG_EXIT_BAD_INPUT;

    if (!argv_parse_args(argc, argv, &o, &err) ||
        !dmg_common_load(&o.common, o.xml_file != NULL, &host, &qemu, &err) ||
        !(def = dmg_common_parse_one(&o.common, o.xml_file, o.domains, host, qemu, &err)) ||
        !dmg_common_qemu_for_domain(&qemu, def, &err))
        goto out;
    m = dmg_domain_realize(def, host, qemu, NULL);
    if (!(lines = dmg_qemu_command_build(m, qemu, &err))) {
        ret = DMG_EXIT_CONFIG_ERRORS;
        goto out;
    }
    out = dmg_qemu_command_format(lines);
    fputs(out, stdout);
    ret = DMG_EXIT_OK;

 out:
    if (err)
        g_printerr("virt-dmaguard argv: %s\n", err->message);
    argv_opts_clear(&o);
    return ret;
}

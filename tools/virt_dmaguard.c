/*
 * virt_dmaguard.c: the virt-dmaguard command, one subcommand per verb.
 */
#include "virt_dmaguard.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "dmg_i18n.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    { "check", dmg_cmd_check,
      N_("predict balloon and migration verdicts for domains") },
    { "argv", dmg_cmd_argv,
      N_("print the QEMU command line of a domain") },
    { "run", dmg_cmd_run,
      N_("run the domain's memory layout in the embedded VMM on KVM") },
    { "migrate", dmg_cmd_migrate,
      N_("run the domain in the embedded VMM and live-migrate it to 'incoming'") },
    { "incoming", dmg_cmd_incoming,
      N_("wait for one 'migrate' and take its guest over") },
};

static void
usage(FILE *fp)
{
    fprintf(fp, _("Usage: virt-dmaguard COMMAND [OPTION...]\n\nCommands:\n"));
    for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
        fprintf(fp, "  %-10s %s\n", commands[i].name, _(commands[i].summary));
    fprintf(fp, _("\nRun 'virt-dmaguard COMMAND --help' for a command's options.\n"));
}

int
main(int argc, char **argv)
{
    /* A libvirt daemon that closes a connection under a call that
     * virt-dmaguard stopped waiting for (its open deadline) makes that
     * call's write raise SIGPIPE, which would kill the whole fleet scan:
     * take EPIPE instead, as libvirtd itself does (virNetDaemonNew()). */
    signal(SIGPIPE, SIG_IGN);
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");

    if (argc < 2) {
        usage(stderr);
        return DMG_EXIT_BAD_INPUT;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return DMG_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("virt-dmaguard %s\n", PACKAGE_VERSION);
        return DMG_EXIT_OK;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, _("virt-dmaguard: unknown command '%s'\n"), argv[1]);
    usage(stderr);
    return DMG_EXIT_BAD_INPUT;
}

/*
 * virt_dmaguard.h: subcommands of the virt-dmaguard tool.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "host_profile.h"
#include "domain_conf.h"
#include "libvirt_source.h"
#include "qemu_profile.h"

/* Documented in docs/virt-dmaguard.rst. */
enum {
    DMG_EXIT_OK = 0,
    DMG_EXIT_CONFIG_ERRORS = 1,
    DMG_EXIT_BAD_INPUT = 2,
    /* check with several --connect: or'ed into 0 or 1 when a host could
     * not be checked (so 4 or 5). */
    DMG_EXIT_HOSTS_FAILED = 4,
};

int dmg_cmd_check(int argc, char **argv);
int dmg_cmd_argv(int argc, char **argv);
int dmg_cmd_run(int argc, char **argv);
int dmg_cmd_migrate(int argc, char **argv);
int dmg_cmd_incoming(int argc, char **argv);

/* What every subcommand that reads domains shares: where they come from
 * and the host and QEMU they are judged for. */
typedef struct {
    char **uris;                 /* --connect, repeatable for check */
    const char *uri;             /* the first of them: the one host of
                                  * every other subcommand */
    char *sysfs;                 /* --sysfs */
    char *qemu_version;          /* --qemu-version */
    char *libvirt_version;       /* --libvirt-version */
    char **qemu_features;        /* --qemu-feature, repeatable */
    char *host_profile;          /* --host-profile */
    gboolean domain_caps;        /* --domain-capabilities */
} dmg_common_opts;

void dmg_common_opts_clear(dmg_common_opts *o);
/* --connect (a main option) and the profile option group. */
void dmg_common_options_add(GOptionContext *ctx, dmg_common_opts *o);
/* g_option_context_parse(), then --connect checked: not empty, each
 * URI once, and only once unless @several_hosts (check's fleet scan). */
gboolean dmg_common_parse(GOptionContext *ctx, int *argc, char ***argv,
                          dmg_common_opts *o, bool several_hosts, GError **error);
/* --connect, else LIBVIRT_DEFAULT_URI as every libvirt tool honours it,
 * else the embedded example node. */
char *dmg_common_uri(const dmg_common_opts *o);
/* Load both profiles.  For domains read from a connection (@from_files
 * false) nothing of this machine is read unless --sysfs says so: the
 * host's devices come from the connection, and so does its QEMU when the
 * host is remote, through dmg_common_connection_facts(). */
gboolean dmg_common_load(dmg_common_opts *o, bool from_files,
                         dmgHostProfile **host, dmgQemuProfile **qemu,
                         GError **error);
/* The same for the one host @uri of a fleet scan (NULL: domains read
 * from files).  Safe to call from one thread per host. */
gboolean dmg_common_load_for(const dmg_common_opts *o, const char *uri,
                             dmgHostProfile **host, dmgQemuProfile **qemu,
                             GError **error);
/* What a domain read from @conn is judged with: the connection's libvirt
 * (virConnectGetLibVersion) unless --libvirt-version, its node devices
 * (host_nodedev.h) and its domain capabilities (host_domcaps.h) unless
 * --sysfs, and its QEMU (virConnectGetVersion of
 * a QEMU connection to a remote host) unless --qemu-version; a local
 * connection keeps probing each domain's own <emulator>. */
gboolean dmg_common_connection_facts(const dmg_common_opts *o, dmgHostProfile *host,
                                     dmgQemuProfile *qemu, virConnectPtr conn,
                                     const char *uri, GError **error);
/* Open @uri: read-write when @write or --domain-capabilities (libvirt
 * answers virConnectGetDomainCapabilities only then), else read-only.
 * When only --domain-capabilities wanted write access and the read-write
 * open is refused (polkit, socket permissions), the connection is opened
 * read-only instead, and the domain capabilities stay unknown. */
virConnectPtr dmg_common_open(const dmg_common_opts *o, const char *uri,
                              gboolean write, GError **error);
/* The one domain a command works on, parsed: --xml FILE, or the single
 * name in @domains on the connection (whose facts then fill @host and
 * @qemu); anything else is a usage error. */
dmgDomainDef *dmg_common_parse_one(const dmg_common_opts *o, const char *xml_file,
                                   char **domains, dmgHostProfile *host,
                                   dmgQemuProfile *qemu, GError **error);
/* The libvirt a domain read from @conn is judged for: the connection's
 * (virConnectGetLibVersion), unless --libvirt-version chose one. */
gboolean dmg_common_libvirt_from(const dmg_common_opts *o, dmgHostProfile *host,
                                 virConnectPtr conn, const char *uri, GError **error);
/* Replace *@qemu by the profile @def is judged for: its own emulator,
 * probed, unless --qemu-version was given or a remote connection's QEMU
 * replaced the prober (dmg_qemu_profile_for_domain). */
gboolean dmg_common_qemu_for_domain(dmgQemuProfile **qemu, const dmgDomainDef *def,
                                    GError **error);

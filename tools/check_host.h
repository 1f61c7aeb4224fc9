/*
 * check_host.h: one host of `virt-dmaguard check`, and a fleet of them
 * checked side by side.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "virt_dmaguard.h"

/* What check was asked to do on each host. */
typedef struct {
    const dmg_common_opts *common;
    char **xml_files;            /* --xml: the one "host" is this machine */
    char **domains;              /* names, or NULL with --all */
    gboolean write_metadata;
    gboolean live;
    guint live_timeout;
} dmg_check_request;

/* One host's result: the facts it was judged with and the verdicts, or
 * why it could not be checked. */
typedef struct {
    char *uri;                   /* NULL: --xml files */
    dmgHostProfile *host;
    dmgQemuProfile *qemu;
    GPtrArray *verdicts;         /* JsonNode *, NULL when not checked */
    GPtrArray *notes;            /* char *: domains skipped, for stderr */
    GPtrArray *not_analyzed;     /* JsonNode * {name, message}: domains
                                  * that could not be read or judged */
    guint metadata_written;      /* domains whose <metadata> was stored */
    GError *error;               /* set: the host was not (fully) checked */
} dmg_check_host;

void dmg_check_host_free(dmg_check_host *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmg_check_host, dmg_check_host_free);

/* Check one host (or the --xml files when @uri is NULL): open the
 * connection, take its facts, read, analyze, and with --live and
 * --write-metadata ask QEMU and store.  Never fails as a whole: the
 * result's error says what stopped it. */
dmg_check_host *dmg_check_host_run(const dmg_check_request *req, const char *uri);

/* Check every host of @uris, at most @jobs at a time, each in a thread of
 * its own; the results come back in the order of @uris.  @progress: print
 * "N of M hosts checked" on standard error as hosts finish. */
GPtrArray *dmg_check_fleet(const dmg_check_request *req, char **uris, guint jobs,
                           gboolean progress);

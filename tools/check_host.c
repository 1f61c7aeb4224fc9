/*
 * check_host.c: one host of `virt-dmaguard check`, and a fleet of them.
 *
 * A fleet scan (several --connect) checks each host in a thread of a
 * bounded GThreadPool: what takes time is the network (open, listing and
 * dumping domains, node devices, QEMU's live answer), and that overlaps.
 * Each host has its own connection and its own profiles; only realize is
 * serialized (dmg_check_def()).  A host that cannot be reached is an
 * error of that host; the others are reported as usual.
 */
#include "dmg_file.h"
#include "check_host.h"

#include <string.h>

#include "check.h"
#include "qemu_postparse.h"
#include "dmg_i18n.h"
#include "libvirt_source.h"
#include "live_check.h"
#include "verdict.h"

void
dmg_check_host_free(dmg_check_host *h)
{
    if (!h)
        return;
    g_free(h->uri);
    dmg_host_profile_free(h->host);
    dmg_qemu_profile_free(h->qemu);
    if (h->verdicts)
        g_ptr_array_unref(h->verdicts);
    g_ptr_array_unref(h->notes);
    g_ptr_array_unref(h->not_analyzed);
    g_clear_error(&h->error);
    g_free(h);
}

/* A file that cannot be read is that file's error (check_analyze()). */
static GPtrArray *
check_read_files(char **files)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_domain_xml_free);

    for (char **f = files; *f; f++) {
        dmgDomainXML *d = g_new0(dmgDomainXML, 1);

        g_ptr_array_add(out, d);
        d->name = g_strdup(*f);
        if (!dmg_file_read(*f, DMG_FILE_MAX_XML, &d->xml, &d->len, &d->error))
            g_clear_pointer(&d->xml, g_free);
    }
    return g_steal_pointer(&out);
}

static void
check_not_analyzed(dmg_check_host *h, const char *name, const GError *err)
{
    JsonObject *o = json_object_new();
    JsonNode *n = json_node_new(JSON_NODE_OBJECT);

    json_object_set_string_member(o, "name", name);
    json_object_set_string_member(o, "message", err->message);
    json_node_take_object(n, o);
    g_ptr_array_add(h->not_analyzed, n);
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
check_write_metadata(virConnectPtr conn, dmg_check_host *h, GError **error)
{
    for (guint i = 0; i < h->verdicts->len; i++) {
        JsonObject *dom = json_node_get_object(g_ptr_array_index(h->verdicts, i));
        /* The QEMU this domain was judged for. */
        check_metadata_data d = {
            g_ptr_array_index(h->verdicts, i),
            json_object_get_string_member(json_object_get_object_member(dom, "qemu"), "version"),
        };
        const char *name = json_object_get_string_member(dom, "name");

        if (!dmg_libvirt_write_metadata(conn, name, check_metadata_element, &d, error))
            return FALSE;
        h->metadata_written++;
    }
    return TRUE;
}

/* A batch keeps going: a domain that cannot be read or parsed, or whose
 * emulator cannot be probed, is listed as not analyzed and the others are
 * still judged.  On a connection, domains of other hypervisors (a fleet
 * may mix them) are skipped with a note. */
static GPtrArray *
check_analyze(dmg_check_host *h, GPtrArray *doms, bool skip_foreign)
{
    g_autoptr(GPtrArray) verdicts = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);

    for (guint i = 0; i < doms->len; i++) {
        dmgDomainXML *d = g_ptr_array_index(doms, i);
        g_autoptr(GError) err = d->error ? g_error_copy(d->error) : NULL;
        g_autoptr(dmgDomainDef) def = NULL;
        JsonNode *v = NULL;

        if (!err && (def = dmg_qemu_domain_def_parse_string(d->xml, d->len, d->name, &err)))
            v = dmg_check_def(def, d->name, h->host, h->qemu, &err);
        if (v) {
            g_ptr_array_add(verdicts, v);
        } else if (skip_foreign && g_error_matches(err, DMG_CONF_ERROR, DMG_CONF_ERROR_UNSUPPORTED)) {
            g_ptr_array_add(h->notes, g_strdup_printf(_("skipping %s"), err->message));
        } else {
            check_not_analyzed(h, d->name, err);
        }
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

static virConnectPtr
check_open(const dmg_check_request *req, const char *uri, GError **error)
{
    virConnectPtr conn = dmg_common_open(req->common, uri, req->write_metadata || req->live, error);

    /* --live without write access (polkit, socket permissions): read the
     * domains anyway; libvirt then refuses each monitor command, and the
     * domains are "not checked" with its reason. */
    if (!conn && req->live && !req->write_metadata) {
        g_clear_error(error);
        conn = dmg_libvirt_open(uri, FALSE, error);
    }
    return conn;
}

static gboolean
check_host_do(const dmg_check_request *req, dmg_check_host *h, GError **error)
{
    virConnectPtr conn = NULL;
    g_autoptr(GPtrArray) doms = NULL;
    gboolean ok = FALSE;

    if (!dmg_common_load_for(req->common, h->uri, &h->host, &h->qemu, error))
        return FALSE;
    if (h->uri) {
        if (!(conn = check_open(req, h->uri, error)) ||
            !dmg_common_connection_facts(req->common, h->host, h->qemu, conn, h->uri, error))
            goto out;
        if (!(doms = dmg_libvirt_domains_batch(conn, req->domains, error)))
            goto out;
    } else {
        doms = check_read_files(req->xml_files);
    }
    h->verdicts = check_analyze(h, doms, h->uri != NULL);
    if (req->live)
        check_live(conn, h->verdicts, req->live_timeout);
    if (req->write_metadata && !check_write_metadata(conn, h, error))
        goto out;
    ok = TRUE;
 out:
    if (conn)
        virConnectClose(conn);
    return ok;
}

dmg_check_host *
dmg_check_host_run(const dmg_check_request *req, const char *uri)
{
    dmg_check_host *h = g_new0(dmg_check_host, 1);

    h->uri = g_strdup(uri);
    h->notes = g_ptr_array_new_with_free_func(g_free);
    h->not_analyzed = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
    if (!check_host_do(req, h, &h->error) && !h->error)
        g_set_error(&h->error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                    _("the check stopped without saying why"));
    return h;
}

typedef struct {
    const dmg_check_request *req;
    GPtrArray *results;          /* dmg_check_host *, in the order of uris */
    GMutex lock;                 /* protects done, failed and stderr */
    guint done;
    guint failed;
    gboolean progress;
} check_fleet;

static void
check_fleet_progress(check_fleet *f)
{
    /* Overwritten in place; "\r" alone would leave the tail of a longer
     * line, so the line is cleared first (ANSI EL: only on a terminal). */
    g_printerr("\r\033[K");
    if (f->failed)
        g_printerr(_("virt-dmaguard check: %u of %u hosts checked, %u could not be checked"),
                   f->done, f->results->len, f->failed);
    else
        g_printerr(_("virt-dmaguard check: %u of %u hosts checked"),
                   f->done, f->results->len);
}

static void
check_fleet_worker(gpointer data, gpointer user_data)
{
    check_fleet *f = user_data;
    guint i = GPOINTER_TO_UINT(data) - 1;
    dmg_check_host *h = g_ptr_array_index(f->results, i);
    dmg_check_host *done = dmg_check_host_run(f->req, h->uri);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&f->lock);

    /* Each worker owns its slot; the array itself is never resized. */
    dmg_check_host_free(g_steal_pointer(&f->results->pdata[i]));
    f->results->pdata[i] = done;
    f->done++;
    if (done->error)
        f->failed++;
    if (f->progress)
        check_fleet_progress(f);
}

GPtrArray *
dmg_check_fleet(const dmg_check_request *req, char **uris, guint jobs, gboolean progress)
{
    check_fleet f = { .req = req, .progress = progress };
    GThreadPool *pool;
    guint n = g_strv_length(uris);

    f.results = g_ptr_array_new_full(n, (GDestroyNotify)dmg_check_host_free);
    g_mutex_init(&f.lock);
    /* Placeholders first, so that a worker only writes its own slot. */
    for (guint i = 0; i < n; i++) {
        dmg_check_host *h = g_new0(dmg_check_host, 1);

        h->uri = g_strdup(uris[i]);
        h->notes = g_ptr_array_new_with_free_func(g_free);
        h->not_analyzed = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
        g_ptr_array_add(f.results, h);
    }
    if (progress)
        check_fleet_progress(&f);
    /* Not exclusive: the threads are GLib's shared ones, and the pool never
     * runs more than @jobs of them.  A pool that cannot start a thread
     * leaves the host to run here. */
    pool = g_thread_pool_new(check_fleet_worker, &f, (gint)MIN(jobs, n), FALSE, NULL);
    for (guint i = 0; i < n; i++) {
        if (!pool || !g_thread_pool_push(pool, GUINT_TO_POINTER(i + 1), NULL))
            check_fleet_worker(GUINT_TO_POINTER(i + 1), &f);
    }
    /* Wait for every queued host to finish. */
    if (pool)
        g_thread_pool_free(pool, FALSE, TRUE);
    if (progress)
        g_printerr("\n");
    g_mutex_clear(&f.lock);
    return f.results;
}

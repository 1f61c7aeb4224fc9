/*
 * libvirt_source.c: read domains through the public libvirt API, so that
 * any URI works: test:///, qemu:///system, qemu+tls://host/system.
 */
#include "libvirt_source.h"

#include <gio/gio.h>
#include <libvirt/virterror.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dmg_i18n.h"
#include "domain_conf.h"
#include "host_domcaps.h"
#include "libvirt_profile.h"

void
dmg_domain_xml_free(dmgDomainXML *d)
{
    if (!d)
        return;
    g_free(d->name);
    g_free(d->xml);
    g_clear_error(&d->error);
    g_free(d);
}

char *
dmg_default_uri(void)
{
    const char *env = g_getenv("DMAGUARD_NODE_XML");
    g_autofree char *path = NULL;
    g_autofree char *abs = NULL;

    if (env && *env)
        path = g_strdup(env);
    else if (g_file_test(DMG_SOURCE_EXAMPLES_DIR "/" DMG_EXAMPLE_NODE_XML, G_FILE_TEST_EXISTS))
        path = g_strdup(DMG_SOURCE_EXAMPLES_DIR "/" DMG_EXAMPLE_NODE_XML);
    else
        path = g_strdup(DMG_DATADIR "/" DMG_EXAMPLE_NODE_XML);
    abs = g_canonicalize_filename(path, NULL);
    return g_strdup_printf("test://%s", abs);
}

static void
dmg_libvirt_quiet(void *opaque, virErrorPtr err)
{
}

static void
dmg_libvirt_error(GError **error, const char *what, const char *subject)
{
    const char *msg = virGetLastErrorMessage();

    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s '%s': %s",
                what, subject, msg ? msg : _("unknown libvirt error"));
}

/* libvirt's keepalive needs an event loop: its default one, run by a
 * thread of its own for the life of the process, as virsh runs it.  The
 * thread answers the daemon's keepalive requests between calls; during a
 * call, the calling thread's own I/O loop sends and checks them. */
static gpointer
dmg_libvirt_event_thread(gpointer data)
{
    while (virEventRunDefaultImpl() == 0)
        ;
    return NULL;
}

static void
dmg_libvirt_event_loop(void)
{
    static gsize started;

    if (!g_once_init_enter(&started))
        return;
    if (virEventRegisterDefaultImpl() == 0)
        g_thread_unref(g_thread_new("libvirt-events", dmg_libvirt_event_thread, NULL));
    else
        virResetLastError();
    g_once_init_leave(&started, 1);
}

char *
dmg_libvirt_last_message(void)
{
    const char *msg = virGetLastErrorMessage();

    return g_strdup(msg ? msg : _("unknown libvirt error"));
}

/* One call, shared by the caller and the thread that makes it; the last
 * of the two to let go frees it. */
typedef struct {
    gint refs;
    GMutex lock;
    GCond cond;
    bool done;
    bool abandoned;
    dmg_libvirt_fn fn;
    gpointer data;
    GDestroyNotify abandon;
} dmgLibvirtCall;

static void
dmg_libvirt_call_unref(dmgLibvirtCall *c)
{
    if (!g_atomic_int_dec_and_test(&c->refs))
        return;
    g_mutex_clear(&c->lock);
    g_cond_clear(&c->cond);
    g_free(c);
}

static gpointer
dmg_libvirt_call_thread(gpointer opaque)
{
    dmgLibvirtCall *c = opaque;
    bool abandoned;

    c->fn(c->data);
    g_mutex_lock(&c->lock);
    c->done = true;
    abandoned = c->abandoned;
    g_cond_signal(&c->cond);
    g_mutex_unlock(&c->lock);
    if (abandoned && c->abandon)
        c->abandon(c->data);
    dmg_libvirt_call_unref(c);
    return NULL;
}

gboolean
dmg_libvirt_call_within(dmg_libvirt_fn fn, gpointer data, GDestroyNotify abandon,
                        guint timeout_s)
{
    dmgLibvirtCall *c = g_new0(dmgLibvirtCall, 1);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_s * G_TIME_SPAN_SECOND;
    bool done;

    c->refs = 2;
    c->fn = fn;
    c->data = data;
    c->abandon = abandon;
    g_mutex_init(&c->lock);
    g_cond_init(&c->cond);
    g_thread_unref(g_thread_new("dmg-libvirt-call", dmg_libvirt_call_thread, c));
    g_mutex_lock(&c->lock);
    while (!c->done && g_cond_wait_until(&c->cond, &c->lock, deadline))
        ;
    done = c->done;
    c->abandoned = !done;
    g_mutex_unlock(&c->lock);
    dmg_libvirt_call_unref(c);
    return done;
}

typedef struct {
    char *uri;
    gboolean readwrite;
    virConnectPtr conn;
    char *error;
} dmgLibvirtOpen;

static void
dmg_libvirt_open_free(gpointer opaque)
{
    dmgLibvirtOpen *o = opaque;

    if (o->conn)
        virConnectClose(o->conn);
    g_free(o->uri);
    g_free(o->error);
    g_free(o);
}

static void
dmg_libvirt_open_call(gpointer opaque)
{
    dmgLibvirtOpen *o = opaque;

    o->conn = o->readwrite ? virConnectOpen(o->uri) : virConnectOpenReadOnly(o->uri);
    if (!o->conn)
        o->error = dmg_libvirt_last_message();
}

virConnectPtr
dmg_libvirt_open(const char *uri, gboolean readwrite, GError **error)
{
    dmgLibvirtOpen *o = g_new0(dmgLibvirtOpen, 1);
    virConnectPtr conn;

    virSetErrorFunc(NULL, dmg_libvirt_quiet);
    dmg_libvirt_event_loop();
    /* Keepalive runs only once the connection is open: a daemon that
     * accepts the connection and never answers (stopped, deadlocked)
     * would hold the open forever. */
    o->uri = g_strdup(uri);
    o->readwrite = readwrite;
    if (!dmg_libvirt_call_within(dmg_libvirt_open_call, o, dmg_libvirt_open_free,
                                 DMG_LIBVIRT_OPEN_TIMEOUT)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    _("cannot connect to libvirt at '%s': no answer within %d s"),
                    uri, DMG_LIBVIRT_OPEN_TIMEOUT);
        return NULL;
    }
    if (!(conn = o->conn)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s '%s': %s",
                    _("cannot connect to libvirt at"), uri, o->error);
        dmg_libvirt_open_free(o);
        return NULL;
    }
    o->conn = NULL;
    dmg_libvirt_open_free(o);
    /* The deadline of every call on a remote daemon: when it stops
     * answering keepalive requests for INTERVAL * (COUNT + 1) seconds,
     * libvirt closes the connection and the pending call fails.  Drivers
     * in this process (test://) have no keepalive and nothing to wait
     * for. */
    if (virConnectSetKeepAlive(conn, DMG_KEEPALIVE_INTERVAL, DMG_KEEPALIVE_COUNT) < 0)
        virResetLastError();
    return conn;
}

static dmgDomainXML *
dmg_libvirt_domain_xml(virDomainPtr dom)
{
    dmgDomainXML *d = g_new0(dmgDomainXML, 1);
    char *xml = virDomainGetXMLDesc(dom, 0);

    d->name = g_strdup(virDomainGetName(dom));
    if (!xml) {
        /* Kept as an entry: one domain that vanished between the listing
         * and its dump is that domain's error, not the batch's. */
        dmg_libvirt_error(&d->error, _("cannot read the XML of domain"), d->name);
        return d;
    }
    d->xml = g_strdup(xml);
    d->len = strlen(d->xml);
    free(xml);
    return d;
}

static gint
dmg_domain_xml_cmp(gconstpointer a, gconstpointer b)
{
    const dmgDomainXML *da = *(dmgDomainXML *const *)a;
    const dmgDomainXML *db = *(dmgDomainXML *const *)b;

    return g_strcmp0(da->name, db->name);
}

static GPtrArray *
dmg_libvirt_all(virConnectPtr conn, GError **error)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_domain_xml_free);
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);

    if (n < 0) {
        dmg_libvirt_error(error, _("cannot list domains on"), virConnectGetURI(conn));
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        g_ptr_array_add(out, dmg_libvirt_domain_xml(doms[i]));
        virDomainFree(doms[i]);
    }
    free(doms);
    g_ptr_array_sort(out, dmg_domain_xml_cmp);
    return g_steal_pointer(&out);
}

GPtrArray *
dmg_libvirt_domains_batch(virConnectPtr conn, char **names, GError **error)
{
    g_autoptr(GPtrArray) out = NULL;

    if (!names)
        return dmg_libvirt_all(conn, error);
    out = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_domain_xml_free);
    for (char **n = names; *n; n++) {
        virDomainPtr dom = virDomainLookupByName(conn, *n);
        dmgDomainXML *d;

        if (!dom) {
            d = g_new0(dmgDomainXML, 1);
            d->name = g_strdup(*n);
            dmg_libvirt_error(&d->error, _("no domain named"), *n);
        } else {
            d = dmg_libvirt_domain_xml(dom);
            virDomainFree(dom);
        }
        g_ptr_array_add(out, d);
    }
    return g_steal_pointer(&out);
}

GPtrArray *
dmg_libvirt_domains(virConnectPtr conn, char **names, GError **error)
{
    g_autoptr(GPtrArray) out = dmg_libvirt_domains_batch(conn, names, error);

    for (guint i = 0; out && i < out->len; i++) {
        dmgDomainXML *d = g_ptr_array_index(out, i);

        if (d->error) {
            g_propagate_error(error, g_steal_pointer(&d->error));
            return NULL;
        }
    }
    return g_steal_pointer(&out);
}

static gboolean
dmg_libvirt_write_one(virDomainPtr dom, unsigned int flags, dmg_metadata_fn make_element,
                      gpointer data, GError **error)
{
    char *existing = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                          DMG_METADATA_NS, flags);
    g_autofree char *element = make_element(existing, data);

    free(existing);
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, element,
                             DMG_METADATA_PREFIX, DMG_METADATA_NS, flags) == 0)
        return TRUE;
    dmg_libvirt_error(error, _("cannot store the verdict in the metadata of domain"),
                      virDomainGetName(dom));
    return FALSE;
}

gboolean
dmg_libvirt_write_metadata(virConnectPtr conn, const char *name,
                           dmg_metadata_fn make_element, gpointer data, GError **error)
{
    virDomainPtr dom = virDomainLookupByName(conn, name);
    gboolean ok = TRUE;

    if (!dom) {
        dmg_libvirt_error(error, _("no domain named"), name);
        return FALSE;
    }
    /* The configuration lasts; a running domain's live XML is what
     * virsh and virt-manager show while it runs. */
    if (virDomainIsPersistent(dom) == 1)
        ok = dmg_libvirt_write_one(dom, VIR_DOMAIN_AFFECT_CONFIG, make_element, data, error);
    if (ok && virDomainIsActive(dom) == 1)
        ok = dmg_libvirt_write_one(dom, VIR_DOMAIN_AFFECT_LIVE, make_element, data, error);
    virDomainFree(dom);
    return ok;
}

void
dmg_libvirt_profile_init_library(dmgLibvirtProfile *p)
{
    unsigned long v = 0;

    /* virGetVersion() reports the library this process runs, and cannot
     * fail for a NULL type. */
    virGetVersion(&v, NULL, NULL);
    p->version = dmg_libvirt_version_decode(v);
    p->source = DMG_LIBVIRT_SOURCE_LIBRARY;
}

gboolean
dmg_libvirt_profile_init_connection(dmgLibvirtProfile *p, virConnectPtr conn,
                                    const char *uri, GError **error)
{
    unsigned long v = 0;

    if (virConnectGetLibVersion(conn, &v) < 0) {
        const char *msg = virGetLastErrorMessage();

        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("cannot ask the libvirt at %s for its version (%s); give it with --libvirt-version X.Y"),
                    uri, msg ? msg : _("unknown libvirt error"));
        return FALSE;
    }
    p->version = dmg_libvirt_version_decode(v);
    p->source = DMG_LIBVIRT_SOURCE_CONNECTION;
    return TRUE;
}

gboolean
dmg_libvirt_qemu_version(virConnectPtr conn, const char *uri, char **version,
                         GError **error)
{
    const char *type = virConnectGetType(conn);
    unsigned long v = 0;

    *version = NULL;
    if (!type || g_ascii_strcasecmp(type, "QEMU") != 0)
        return TRUE;
    /* qemuConnectGetVersion(): major * 1,000,000 + minor * 1,000 + micro
     * of the default emulator's capabilities. */
    if (virConnectGetVersion(conn, &v) < 0 || v == 0) {
        const char *msg = virGetLastErrorMessage();

        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("cannot ask the libvirt at %s for its QEMU version (%s); give it with --qemu-version X.Y"),
                    uri, msg ? msg : _("unknown libvirt error"));
        return FALSE;
    }
    *version = g_strdup_printf("%lu.%lu", v / 1000000, (v / 1000) % 1000);
    return TRUE;
}

/* The server part of "scheme://[user@]host[:port]/path?query". */
static bool
dmg_libvirt_uri_has_host(const char *uri)
{
    const char *p = uri ? strstr(uri, "://") : NULL;
    const char *end;
    const char *at;

    if (!p)
        return false;
    p += 3;
    end = p + strcspn(p, "/?#");
    at = memchr(p, '@', end - p);
    if (at)
        p = at + 1;
    return p < end && *p != ':';
}

bool
dmg_libvirt_uri_is_remote(virConnectPtr conn, const char *uri)
{
    char *canonical = conn ? virConnectGetURI(conn) : NULL;
    bool remote = dmg_libvirt_uri_has_host(canonical ? canonical : uri);

    free(canonical);
    return remote;
}

/* dmgDomcapsSource.fetch: at most @max + 1 bytes of the XML, so that the
 * reader sees an over-long answer as one. */
static char *
dmg_libvirt_domcaps_fetch(gpointer conn, const char *emulator, const char *arch,
                          const char *machine, const char *virttype, gsize max)
{
    char *xml = virConnectGetDomainCapabilities(conn, emulator, arch, machine,
                                                virttype, 0);
    char *out;

    if (!xml) {
        /* libvirt's message is dropped, never printed (dmg_libvirt_open
         * silenced the printing; the last error is this thread's). */
        virResetLastError();
        return NULL;
    }
    out = g_strndup(xml, max + 1);
    free(xml);
    return out;
}

static void
dmg_libvirt_domcaps_release(gpointer conn)
{
    virConnectClose(conn);
}

void
dmg_host_profile_use_domcaps(dmgHostProfile *host, virConnectPtr conn)
{
    dmgDomcapsSource source = { 0 };

    if (conn && virConnectRef(conn) == 0) {
        source.conn = conn;
        source.fetch = dmg_libvirt_domcaps_fetch;
        source.release = dmg_libvirt_domcaps_release;
    }
    dmg_host_profile_set_domcaps_source(host, &source);
}

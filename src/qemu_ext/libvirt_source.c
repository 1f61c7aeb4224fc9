/*
 * libvirt_source.c: read domains through the public libvirt API, so that
 * any URI works: test:///, qemu:///system, qemu+tls://host/system.
 */
#include "libvirt_source.h"

#include <gio/gio.h>
#include <libvirt/virterror.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dmg_i18n.h"
#include "domain_conf.h"
#include "libvirt_profile.h"

void
dmg_domain_xml_free(dmgDomainXML *d)
{
    if (!d)
        return;
    g_free(d->name);
    g_free(d->xml);
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

virConnectPtr
dmg_libvirt_open(const char *uri, gboolean readwrite, GError **error)
{
    virConnectPtr conn;

    virSetErrorFunc(NULL, dmg_libvirt_quiet);
    if (!(conn = readwrite ? virConnectOpen(uri) : virConnectOpenReadOnly(uri)))
        dmg_libvirt_error(error, _("cannot connect to libvirt at"), uri);
    return conn;
}

static dmgDomainXML *
dmg_libvirt_domain_xml(virDomainPtr dom, GError **error)
{
    dmgDomainXML *d = g_new0(dmgDomainXML, 1);
    char *xml = virDomainGetXMLDesc(dom, 0);

    d->name = g_strdup(virDomainGetName(dom));
    if (!xml) {
        dmg_libvirt_error(error, _("cannot read the XML of domain"), d->name);
        dmg_domain_xml_free(d);
        return NULL;
    }
    d->xml = g_strdup(xml);
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
    bool ok = true;

    if (n < 0) {
        dmg_libvirt_error(error, _("cannot list domains on"), virConnectGetURI(conn));
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        dmgDomainXML *d = ok ? dmg_libvirt_domain_xml(doms[i], error) : NULL;

        ok = ok && d;
        if (d)
            g_ptr_array_add(out, d);
        virDomainFree(doms[i]);
    }
    free(doms);
    if (!ok)
        return NULL;
    g_ptr_array_sort(out, dmg_domain_xml_cmp);
    return g_steal_pointer(&out);
}

GPtrArray *
dmg_libvirt_domains(virConnectPtr conn, char **names, GError **error)
{
    g_autoptr(GPtrArray) out = NULL;

    if (!names)
        return dmg_libvirt_all(conn, error);
    out = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_domain_xml_free);
    for (char **n = names; *n; n++) {
        virDomainPtr dom = virDomainLookupByName(conn, *n);
        dmgDomainXML *d;

        if (!dom) {
            dmg_libvirt_error(error, _("no domain named"), *n);
            return NULL;
        }
        d = dmg_libvirt_domain_xml(dom, error);
        virDomainFree(dom);
        if (!d)
            return NULL;
        g_ptr_array_add(out, d);
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

/*
 * host_domcaps.c: host facts from libvirt's domain capabilities.
 *
 * virConnectGetDomainCapabilities() (src/libvirt-domain.c) describes what
 * the host of a connection offers a domain of one emulator, architecture,
 * machine and virt type (docs/formatdomaincaps.rst).  The part read here,
 * as libvirt 9.0's QEMU driver formats it (virDomainCapsFormat,
 * src/conf/domain_capabilities.c):
 *
 *   <domainCapabilities>
 *     ...
 *     <devices>
 *       <hostdev supported='yes'>
 *         ...
 *         <enum name='pciBackend'>
 *           <value>default</value>
 *           <value>vfio</value>
 *         </enum>
 *       </hostdev>
 *     </devices>
 *   </domainCapabilities>
 *
 * virQEMUCapsFillDomainDeviceHostdevCaps() (src/qemu/qemu_capabilities.c)
 * lists "default" and "vfio" when qemuHostdevHostSupportsPassthroughVFIO()
 * (the host has an IOMMU, virHostHasIOMMU(), and /dev/vfio/vfio exists)
 * and the emulator has vfio-pci (QEMU_CAPS_DEVICE_VFIO_PCI), and formats
 * an empty <enum name='pciBackend'/> otherwise: the very test
 * qemuHostdevPreparePCIDevicesCheckSupport() refuses a start with
 * (libvirt_hostdev.c).
 *
 * libvirt refuses the call on a read-only connection (virCheckReadOnlyGoto
 * in virConnectGetDomainCapabilities), and its test driver has no domain
 * capabilities (VIR_ERR_NO_SUPPORT): both leave the fact unknown.  The
 * call itself is in libvirt_source.c (dmg_host_profile_use_domcaps), so
 * that this file links no libvirt: the hook realizes domains too.
 *
 * The XML is untrusted: bounded (DMG_DOMCAPS_XML_MAX), read without DTD,
 * entities or network (host_xml.c), and never quoted in a message.
 * Nothing here is global: each profile has its cache, each call its
 * parser and XPath context, and libvirt's last error is per thread.
 */
#include "host_domcaps.h"

#include <gio/gio.h>
#include <libxml/xpath.h>
#include <string.h>

#include "dmg_i18n.h"
#include "host_xml.h"

/* A <value> longer than this is none libvirt writes. */
#define DMG_DOMCAPS_VALUE_MAX 64

typedef struct {
    bool known;                  /* libvirt answered and @caps holds it */
    dmgDomainCaps caps;
    char *problem;               /* libvirt answered, and it was not read */
} dmgDomcapsEntry;

static void
dmg_domcaps_entry_free(dmgDomcapsEntry *e)
{
    if (!e)
        return;
    g_free(e->problem);
    g_free(e);
}

void
dmg_host_profile_set_domcaps_source(dmgHostProfile *host, const dmgDomcapsSource *source)
{
    if (host->domcaps_source.release)
        host->domcaps_source.release(host->domcaps_source.conn);
    host->domcaps_source = *source;
    g_clear_pointer(&host->domcaps, g_hash_table_unref);
    host->domcaps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify)dmg_domcaps_entry_free);
}

/* ---- the parser -------------------------------------------------------- */

static xmlDocPtr
dmg_domcaps_read(const char *xml, gsize len, GError **error)
{
    dmgHostXmlProblem problem;
    long line;
    xmlDocPtr doc = dmg_host_xml_read(xml, len, DMG_DOMCAPS_XML_MAX, &problem, &line);

    switch (problem) {
    case DMG_HOST_XML_OK:
        break;
    case DMG_HOST_XML_TOO_LONG:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the answer is longer than %d bytes"), DMG_DOMCAPS_XML_MAX);
        break;
    case DMG_HOST_XML_DOCTYPE:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the answer has a <!DOCTYPE> declaration, which domain capabilities never have"));
        break;
    case DMG_HOST_XML_MALFORMED:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the answer is not well-formed XML (line %ld)"), line);
        break;
    }
    return doc;
}

/* The stripped text of @n is @word. */
static bool
dmg_domcaps_value_is(xmlNodePtr n, const char *word)
{
    xmlChar *content = xmlNodeGetContent(n);
    g_autofree char *text = NULL;

    if (!content)
        return false;
    if (strlen((const char *)content) <= DMG_DOMCAPS_VALUE_MAX)
        text = g_strstrip(g_strdup((const char *)content));
    xmlFree(content);
    return text && strcmp(text, word) == 0;
}

gboolean
dmg_domcaps_parse(const char *xml, gsize len, dmgDomainCaps *caps,
                  gboolean *known, GError **error)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    xmlXPathContextPtr ctxt;
    xmlXPathObjectPtr obj;
    xmlNodeSetPtr nodes;

    *caps = (dmgDomainCaps){ 0 };
    *known = FALSE;
    if (!(doc = dmg_domcaps_read(xml, len, error)))
        return FALSE;
    root = xmlDocGetRootElement(doc);
    if (!root || root->ns || !xmlStrEqual(root->name, BAD_CAST "domainCapabilities")) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the answer is not a <domainCapabilities> document"));
        xmlFreeDoc(doc);
        return FALSE;
    }
    if (!(ctxt = xmlXPathNewContext(doc)))
        g_error("out of memory");
    /* The first such enum counts, as libvirt formats only one. */
    obj = xmlXPathEvalExpression(BAD_CAST "/domainCapabilities/devices/hostdev/enum[@name='pciBackend'][1]",
                                 ctxt);
    nodes = obj && obj->type == XPATH_NODESET ? obj->nodesetval : NULL;
    if (nodes && nodes->nodeNr > 0) {
        *known = TRUE;
        for (xmlNodePtr c = nodes->nodeTab[0]->children; c; c = c->next) {
            if (c->type != XML_ELEMENT_NODE || c->ns ||
                !xmlStrEqual(c->name, BAD_CAST "value"))
                continue;
            if (dmg_domcaps_value_is(c, "default"))
                caps->pci_backend_default = true;
            else if (dmg_domcaps_value_is(c, "vfio"))
                caps->pci_backend_vfio = true;
        }
    }
    xmlXPathFreeObject(obj);
    xmlXPathFreeContext(ctxt);
    xmlFreeDoc(doc);
    return TRUE;
}

/* ---- the cache --------------------------------------------------------- */

/* (emulator, arch, machine, virt type), each absent or length-prefixed,
 * so that no two tuples share a key. */
static char *
dmg_domcaps_key(const char *const fields[4])
{
    GString *key = g_string_new(NULL);

    for (guint i = 0; i < 4; i++) {
        if (fields[i])
            g_string_append_printf(key, "%zu:%s;", strlen(fields[i]), fields[i]);
        else
            g_string_append(key, "-;");
    }
    return g_string_free(key, FALSE);
}

static const dmgDomcapsEntry *
dmg_domcaps_entry(dmgHostProfile *host, const dmgDomainDef *def)
{
    const char *const fields[4] = {
        def->emulator, def->arch, def->machine,
        dmgDomainVirtTypeToString(def->virt_type),
    };
    g_autofree char *key = NULL;
    g_autofree char *xml = NULL;
    dmgDomcapsEntry *e;

    if (!host->domcaps_source.fetch || !host->domcaps)
        return NULL;
    key = dmg_domcaps_key(fields);
    if ((e = g_hash_table_lookup(host->domcaps, key)))
        return e;
    e = g_new0(dmgDomcapsEntry, 1);
    /* NULL: unknown, and not an error of the check (the test driver, a
     * read-only connection, an emulator the host does not have). */
    xml = host->domcaps_source.fetch(host->domcaps_source.conn, fields[0], fields[1],
                                     fields[2], fields[3], DMG_DOMCAPS_XML_MAX);
    if (xml) {
        g_autoptr(GError) err = NULL;
        gboolean known = FALSE;

        if (dmg_domcaps_parse(xml, strnlen(xml, DMG_DOMCAPS_XML_MAX + 1), &e->caps,
                              &known, &err))
            e->known = known;
        else
            e->problem = g_strdup(err->message);
    }
    g_hash_table_insert(host->domcaps, g_steal_pointer(&key), e);
    return e;
}

const dmgDomainCaps *
dmg_host_domcaps_lookup(dmgHostProfile *host, const dmgDomainDef *def)
{
    const dmgDomcapsEntry *e = dmg_domcaps_entry(host, def);

    return e && e->known ? &e->caps : NULL;
}

const char *
dmg_host_domcaps_problem(dmgHostProfile *host, const dmgDomainDef *def)
{
    const dmgDomcapsEntry *e = dmg_domcaps_entry(host, def);

    return e ? e->problem : NULL;
}

/*
 * host_nodedev.c: host devices from libvirt's node devices.
 *
 * libvirt describes each host device as a node device (docs/formatnode.rst;
 * src/conf/node_device_conf.c, virNodeDeviceDefFormat).  The parts read
 * here, as libvirt 9.0 formats them:
 *
 *   <device>
 *     <name>pci_0000_01_00_0</name>
 *     <parent>pci_0000_00_01_0</parent>
 *     <driver><name>vfio-pci</name></driver>
 *     <capability type='pci'>
 *       <domain>0</domain><bus>1</bus><slot>0</slot><function>0</function>
 *       <iommuGroup number='1'>
 *         <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
 *         <address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>
 *       </iommuGroup>
 *     </capability>
 *   </device>
 *
 *   <device>
 *     <name>mdev_4b20d080_1b54_4048_85b3_a6a62d165c01_0000_00_02_0</name>
 *     <parent>pci_0000_00_02_0</parent>
 *     <driver><name>vfio_mdev</name></driver>
 *     <capability type='mdev'>
 *       <type id='i915-GVTg_V5_4'/>
 *       <uuid>4b20d080-1b54-4048-85b3-a6a62d165c01</uuid>
 *       <parent_addr>0000:00:02.0</parent_addr>
 *       <iommuGroup number='30'/>
 *     </capability>
 *   </device>
 *
 * The PCI address elements are decimal (virXPathUInt, base 10), the
 * <address> attributes C-style (virXMLPropUInt, base 0: "0x01").  An mdev
 * is named mdev_UUID_PARENT since libvirt 7.3 (nodeDeviceGenerateName) and
 * mdev_UUID before, with '_' for '-'; the name is the fallback when there
 * is no <uuid>.  <driver> is there only when a driver is bound, and
 * libvirt's test driver never keeps it (its parser reads none).
 *
 * The XML is untrusted: read without DTD or entities (host_xml.c), each
 * document and the whole bounded, and no message quotes it beyond a
 * device's name.
 */
#include "host_nodedev.h"

#include <gio/gio.h>
#include <libxml/tree.h>
#include <libvirt/virterror.h>
#include <stdlib.h>
#include <string.h>

#include "dmg_i18n.h"
#include "host_xml.h"

/* A text value (a name, a number) longer than this is not one. */
#define DMG_NODEDEV_VALUE_MAX 256
#define DMG_NODEDEV_NAME_PRINT_MAX 80

/* One PCI or mdev node device, as read. */
typedef struct {
    char *devname;               /* printable node device name, for messages */
    bool mdev;
    char *name;                  /* PCI address or lower-case UUID */
    int group;                   /* -1 when the device lists none */
    char *driver;
    char *mdev_type;
    char *parent_node;           /* <parent>: a node device name */
    char *parent_addr;           /* mdev <parent_addr>, validated */
    GPtrArray *members;          /* PCI addresses of <iommuGroup> */
} dmgNodedev;

static void
dmg_nodedev_free(dmgNodedev *d)
{
    if (!d)
        return;
    g_free(d->devname);
    g_free(d->name);
    g_free(d->driver);
    g_free(d->mdev_type);
    g_free(d->parent_node);
    g_free(d->parent_addr);
    g_ptr_array_unref(d->members);
    g_free(d);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgNodedev, dmg_nodedev_free);

void
dmg_nodedev_xml_free(dmgNodedevXML *d)
{
    if (!d)
        return;
    g_free(d->name);
    g_free(d->xml);
    g_free(d);
}

/* A node device name fit for a message: libvirt's own are [a-z0-9_], a
 * test driver file may say anything. */
static char *
dmg_nodedev_printable(const char *name)
{
    GString *s = g_string_new(NULL);

    for (const char *p = name ? name : ""; *p; p++) {
        if (s->len == DMG_NODEDEV_NAME_PRINT_MAX) {
            g_string_append(s, "...");
            break;
        }
        g_string_append_c(s, g_ascii_isalnum(*p) || strchr("_-.:", *p) ? *p : '?');
    }
    if (!s->len)
        g_string_append_c(s, '?');
    return g_string_free(s, FALSE);
}

/* ---- values ------------------------------------------------------------ */

/* Driver names and mdev types as the kernel spells them: "vfio-pci",
 * "mlx5_vfio_pci", "i915-GVTg_V5_4", "nvidia-35". */
static bool
dmg_nodedev_word_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!g_ascii_isalnum(s[i]) && !strchr("-_.", s[i]))
            return false;
    }
    return true;
}

/* An unsigned number no larger than @max: base 10, or C-style (base 0:
 * "0x1f", "017", "31") as libvirt's virXMLPropUInt reads attributes. */
static bool
dmg_nodedev_uint(const char *s, bool c_style, guint64 max, guint64 *out)
{
    guint base = 10;

    if (!s)
        return false;
    if (c_style && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        base = 16;
    } else if (c_style && s[0] == '0' && s[1]) {
        s += 1;
        base = 8;
    }
    return g_ascii_string_to_unsigned(s, base, 0, max, out, NULL);
}

/* "4b20d080-1b54-4048-85b3-a6a62d165c01" from "mdev_4b20d080_1b54_4048_
 * 85b3_a6a62d165c01" or "mdev_..._0000_00_02_0", or NULL. */
static char *
dmg_nodedev_uuid_from_name(const char *name)
{
    g_autofree char *uuid = NULL;

    if (!name || !g_str_has_prefix(name, "mdev_") || strlen(name) < 5 + 36)
        return NULL;
    name += 5;
    if (name[36] != '\0' && name[36] != '_')
        return NULL;
    uuid = g_strndup(name, 36);
    for (size_t i = 8; i <= 23; i += 5) {
        if (uuid[i] != '_')
            return NULL;
        uuid[i] = '-';
    }
    if (!g_uuid_string_is_valid(uuid))
        return NULL;
    return g_ascii_strdown(uuid, -1);
}

/* "0000:00:02.0" as the profile's lookups spell it. */
static char *
dmg_nodedev_pci_name(guint64 domain, guint64 bus, guint64 slot, guint64 function)
{
    return g_strdup_printf("%04x:%02x:%02x.%x", (unsigned)domain, (unsigned)bus,
                           (unsigned)slot, (unsigned)function);
}

/* A PCI address in that spelling (any case), lower-cased; else NULL. */
static char *
dmg_nodedev_pci_addr_valid(const char *s)
{
    static const char pattern[] = "xxxx:xx:xx.x";

    if (!s || strlen(s) != sizeof(pattern) - 1)
        return NULL;
    for (size_t i = 0; pattern[i]; i++) {
        if (pattern[i] == 'x' ? !g_ascii_isxdigit(s[i]) : s[i] != pattern[i])
            return NULL;
    }
    return g_ascii_strdown(s, -1);
}

/* ---- XML --------------------------------------------------------------- */

static xmlDocPtr
dmg_nodedev_read(const dmgNodedevXML *in, const char *devname, GError **error)
{
    size_t len = strnlen(in->xml, DMG_NODEDEV_XML_MAX + 1);
    dmgHostXmlProblem problem;
    long line;
    xmlDocPtr doc = dmg_host_xml_read(in->xml, len, DMG_NODEDEV_XML_MAX, &problem, &line);

    switch (problem) {
    case DMG_HOST_XML_OK:
        break;
    case DMG_HOST_XML_TOO_LONG:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("node device %s: its XML is longer than %d bytes"),
                    devname, DMG_NODEDEV_XML_MAX);
        break;
    case DMG_HOST_XML_DOCTYPE:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("node device %s: its XML has a <!DOCTYPE> declaration, which node device XML never has"),
                    devname);
        break;
    case DMG_HOST_XML_MALFORMED:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("node device %s: malformed XML (line %ld)"), devname, line);
        break;
    }
    return doc;
}

static bool
dmg_nodedev_is(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && !n->ns &&
        strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr
dmg_nodedev_child(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent->children; c; c = c->next) {
        if (dmg_nodedev_is(c, name))
            return c;
    }
    return NULL;
}

/* The text of @n, stripped; NULL when absent or too long to be a value. */
static char *
dmg_nodedev_text(xmlNodePtr n)
{
    g_autofree char *raw = NULL;
    xmlChar *content;

    if (!n || !(content = xmlNodeGetContent(n)))
        return NULL;
    raw = g_strdup((const char *)content);
    xmlFree(content);
    g_strstrip(raw);
    if (!*raw || strlen(raw) > DMG_NODEDEV_VALUE_MAX)
        return NULL;
    return g_steal_pointer(&raw);
}

static char *
dmg_nodedev_prop(xmlNodePtr n, const char *name)
{
    xmlChar *v = n ? xmlGetNoNsProp(n, (const xmlChar *)name) : NULL;
    char *out = NULL;

    if (v && strlen((const char *)v) <= DMG_NODEDEV_VALUE_MAX)
        out = g_strdup((const char *)v);
    xmlFree(v);
    return out;
}

static bool
dmg_nodedev_group(xmlNodePtr cap, int *group)
{
    xmlNodePtr g = dmg_nodedev_child(cap, "iommuGroup");
    g_autofree char *num = dmg_nodedev_prop(g, "number");
    guint64 v;

    *group = -1;
    if (!g)
        return true;
    if (!dmg_nodedev_uint(num, false, G_MAXINT, &v))
        return false;
    *group = (int)v;
    return true;
}

static bool
dmg_nodedev_parse_pci(xmlNodePtr cap, dmgNodedev *d)
{
    static const char *const elems[] = { "domain", "bus", "slot", "function" };
    static const char *const attrs[] = { "domain", "bus", "slot", "function" };
    static const guint64 max[] = { 0xffff, 0xff, 0x1f, 0x7 };
    guint64 a[4];
    xmlNodePtr g;

    for (guint i = 0; i < 4; i++) {
        g_autofree char *t = dmg_nodedev_text(dmg_nodedev_child(cap, elems[i]));

        if (!dmg_nodedev_uint(t, false, max[i], &a[i]))
            return false;
    }
    d->name = dmg_nodedev_pci_name(a[0], a[1], a[2], a[3]);
    if (!dmg_nodedev_group(cap, &d->group))
        return false;
    if (!(g = dmg_nodedev_child(cap, "iommuGroup")))
        return true;
    for (xmlNodePtr c = g->children; c; c = c->next) {
        guint64 m[4];

        if (!dmg_nodedev_is(c, "address"))
            continue;
        for (guint i = 0; i < 4; i++) {
            g_autofree char *v = dmg_nodedev_prop(c, attrs[i]);

            if (!dmg_nodedev_uint(v, true, max[i], &m[i]))
                return false;
        }
        g_ptr_array_add(d->members, dmg_nodedev_pci_name(m[0], m[1], m[2], m[3]));
    }
    return true;
}

static bool
dmg_nodedev_parse_mdev(xmlNodePtr cap, const char *libvirt_name, dmgNodedev *d)
{
    g_autofree char *uuid = dmg_nodedev_text(dmg_nodedev_child(cap, "uuid"));
    g_autofree char *type = dmg_nodedev_prop(dmg_nodedev_child(cap, "type"), "id");
    g_autofree char *paddr = dmg_nodedev_text(dmg_nodedev_child(cap, "parent_addr"));

    if (uuid && !g_uuid_string_is_valid(uuid))
        return false;
    d->name = uuid ? g_ascii_strdown(uuid, -1) : dmg_nodedev_uuid_from_name(libvirt_name);
    if (!d->name)
        return false;
    if (type && !dmg_nodedev_word_valid(type))
        return false;
    d->mdev_type = g_steal_pointer(&type);
    /* Another parent (a ccw subchannel) is not a PCI address: not kept. */
    d->parent_addr = dmg_nodedev_pci_addr_valid(paddr);
    return dmg_nodedev_group(cap, &d->group);
}

/* One node device; *out stays NULL for a device that is neither PCI nor
 * mdev. */
static gboolean
dmg_nodedev_parse(const dmgNodedevXML *in, dmgNodedev **out, GError **error)
{
    g_autofree char *devname = dmg_nodedev_printable(in->name);
    g_autoptr(dmgNodedev) d = NULL;
    xmlDocPtr doc;
    xmlNodePtr root, cap = NULL, drv;
    bool ok = false, mdev = false;

    *out = NULL;
    if (!(doc = dmg_nodedev_read(in, devname, error)))
        return FALSE;
    root = xmlDocGetRootElement(doc);
    if (!root || !dmg_nodedev_is(root, "device")) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("node device %s: its XML is not a <device>"), devname);
        xmlFreeDoc(doc);
        return FALSE;
    }
    for (xmlNodePtr c = root->children; c && !cap; c = c->next) {
        g_autofree char *type = NULL;

        if (!dmg_nodedev_is(c, "capability"))
            continue;
        type = dmg_nodedev_prop(c, "type");
        mdev = g_strcmp0(type, "mdev") == 0;
        if (mdev || g_strcmp0(type, "pci") == 0)
            cap = c;
    }
    if (!cap) {
        xmlFreeDoc(doc);
        return TRUE;
    }

    d = g_new0(dmgNodedev, 1);
    d->devname = g_strdup(devname);
    d->members = g_ptr_array_new_with_free_func(g_free);
    d->mdev = mdev;
    d->parent_node = dmg_nodedev_text(dmg_nodedev_child(root, "parent"));
    drv = dmg_nodedev_child(root, "driver");
    d->driver = dmg_nodedev_text(drv ? dmg_nodedev_child(drv, "name") : NULL);
    if (d->driver && !dmg_nodedev_word_valid(d->driver)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("node device %s: its <driver> does not name a driver"), devname);
    } else if (mdev && !dmg_nodedev_parse_mdev(cap, in->name, d)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("node device %s: not an mdev dmaguard can read (its UUID, type or IOMMU group)"),
                    devname);
    } else if (!mdev && !dmg_nodedev_parse_pci(cap, d)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("node device %s: not a PCI device dmaguard can read (its address or IOMMU group)"),
                    devname);
    } else {
        ok = true;
    }
    xmlFreeDoc(doc);
    if (!ok)
        return FALSE;
    *out = g_steal_pointer(&d);
    return TRUE;
}

/* ---- the profile ------------------------------------------------------- */

static void
dmg_nodedev_group_add(GHashTable *groups, int group, const char *name)
{
    GHashTable *set;

    if (group < 0)
        return;
    if (!(set = g_hash_table_lookup(groups, GINT_TO_POINTER(group)))) {
        set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_hash_table_insert(groups, GINT_TO_POINTER(group), set);
    }
    g_hash_table_add(set, g_strdup(name));
}

static gint
dmg_nodedev_cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every member of a group: the addresses a PCI device lists and every
 * device, PCI or mdev, that names the group. */
static void
dmg_nodedev_fill_group(GHashTable *groups, dmgHostDevice *dev)
{
    GHashTable *set = dev->iommu_group >= 0
        ? g_hash_table_lookup(groups, GINT_TO_POINTER(dev->iommu_group)) : NULL;
    GHashTableIter iter;
    gpointer key;

    if (!set)
        return;
    g_hash_table_iter_init(&iter, set);
    while (g_hash_table_iter_next(&iter, &key, NULL))
        g_ptr_array_add(dev->group_devices, g_strdup(key));
    g_ptr_array_sort(dev->group_devices, dmg_nodedev_cmp_str);
}

gboolean
dmg_host_profile_from_nodedev_xml(dmgHostProfile *profile, const char *uri,
                                  GPtrArray *xmls, GError **error)
{
    g_autoptr(GPtrArray) devs = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_nodedev_free);
    g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) pci_by_node = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) groups =
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                              (GDestroyNotify)g_hash_table_unref);

    for (guint i = 0; i < xmls->len; i++) {
        const dmgNodedevXML *in = g_ptr_array_index(xmls, i);
        dmgNodedev *d = NULL;
        dmgNodedev *dup;

        if (!dmg_nodedev_parse(in, &d, error))
            return FALSE;
        if (!d)
            continue;
        g_ptr_array_add(devs, d);
        if ((dup = g_hash_table_lookup(by_name, d->name))) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("node devices %s and %s both describe host device %s"),
                        dup->devname, d->devname, d->name);
            return FALSE;
        }
        g_hash_table_insert(by_name, d->name, d);
        if (!d->mdev && in->name)
            g_hash_table_insert(pci_by_node, in->name, d->name);
        dmg_nodedev_group_add(groups, d->group, d->name);
        for (guint j = 0; j < d->members->len; j++)
            dmg_nodedev_group_add(groups, d->group, g_ptr_array_index(d->members, j));
    }

    dmg_host_profile_use_nodedev(profile, uri);
    for (guint i = 0; i < devs->len; i++) {
        dmgNodedev *d = g_ptr_array_index(devs, i);
        dmgHostDevice *dev = dmg_host_profile_add_device(profile, d->name);
        const char *parent = d->parent_addr;

        dev->iommu_group = d->group;
        dev->driver = g_strdup(d->driver);
        dev->mdev_type = g_strdup(d->mdev_type);
        if (d->mdev && !parent && d->parent_node)
            parent = g_hash_table_lookup(pci_by_node, d->parent_node);
        dev->parent = d->mdev ? g_strdup(parent) : NULL;
        dmg_nodedev_fill_group(groups, dev);
    }
    dmg_host_profile_apply_device_drivers(profile);
    return TRUE;
}

static const char *
dmg_nodedev_libvirt_msg(void)
{
    const char *msg = virGetLastErrorMessage();

    return msg ? msg : _("unknown libvirt error");
}

static gboolean
dmg_nodedev_fetch(virNodeDevicePtr *devs, int n, GPtrArray *out, GError **error)
{
    gsize total = 0;

    for (int i = 0; i < n; i++) {
        g_autoptr(dmgNodedevXML) d = g_new0(dmgNodedevXML, 1);
        char *xml;
        size_t len;

        d->name = g_strdup(virNodeDeviceGetName(devs[i]));
        if (!(xml = virNodeDeviceGetXMLDesc(devs[i], 0))) {
            g_autofree char *name = dmg_nodedev_printable(d->name);

            g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                        _("cannot read the XML of node device %s: %s"),
                        name, dmg_nodedev_libvirt_msg());
            return FALSE;
        }
        len = strnlen(xml, DMG_NODEDEV_XML_MAX + 1);
        total += len;
        d->xml = g_strndup(xml, len);
        free(xml);
        if (total > DMG_NODEDEV_TOTAL_MAX) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("the node devices' XML is longer than %d bytes in all"),
                        DMG_NODEDEV_TOTAL_MAX);
            return FALSE;
        }
        g_ptr_array_add(out, g_steal_pointer(&d));
    }
    return TRUE;
}

gboolean
dmg_host_profile_read_nodedev(dmgHostProfile *profile, virConnectPtr conn,
                              const char *uri, GError **error)
{
    g_autoptr(GPtrArray) xmls = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_nodedev_xml_free);
    virNodeDevicePtr *devs = NULL;
    gboolean ok;
    int n;

    n = virConnectListAllNodeDevices(conn, &devs,
                                     VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV |
                                     VIR_CONNECT_LIST_NODE_DEVICES_CAP_MDEV);
    if (n < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("cannot list the node devices of %s (%s); give the host's sysfs tree with --sysfs DIR"),
                    uri, dmg_nodedev_libvirt_msg());
        return FALSE;
    }
    if (n > DMG_NODEDEV_COUNT_MAX) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("%s has more than %d PCI and mdev node devices"),
                    uri, DMG_NODEDEV_COUNT_MAX);
        ok = FALSE;
    } else {
        ok = dmg_nodedev_fetch(devs, n, xmls, error);
    }
    for (int i = 0; i < n; i++)
        virNodeDeviceFree(devs[i]);
    free(devs);
    return ok && dmg_host_profile_from_nodedev_xml(profile, uri, xmls, error);
}

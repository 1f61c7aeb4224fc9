/*
 * controller_conf.c: <controller type='pci'>, the guest's PCI buses, after
 * libvirt's virDomainControllerDefParseXML() (src/conf/domain_conf.c).  A
 * pSeries guest's pci-root controllers are its PHBs (PCI host bridges),
 * which libvirt's ppc64 memlock limit counts (libvirt_memlock.c), and that
 * is all controllers are read for.  So only the PCI controllers a pSeries
 * guest can have are read: pci-root, pci-bridge, and one without a model.
 * The PCIe ones (a q35 guest has a dozen root ports) are dropped by the
 * reader; building them cost `check` a tenth of its time (bench/).
 */
#include "domain_conf_priv.h"

#include <string.h>

#include "dmg_i18n.h"
#include "xml_read.h"

static bool
dmg_sax_attr_is(const xmlChar **attributes, int nb_attributes, const char *name,
                const char *value)
{
    size_t len;
    const char *v = dmg_sax_attr(attributes, nb_attributes, name, &len);

    return v && len == strlen(value) && strncmp(v, value, len) == 0;
}

/* What the reader keeps (xml_read.h): type='pci', with model pci-root,
 * pci-bridge or none. */
bool
dmg_controller_wanted(const xmlChar **attributes, int nb_attributes)
{
    size_t len;

    return dmg_sax_attr_is(attributes, nb_attributes, "type", "pci") &&
           (!dmg_sax_attr(attributes, nb_attributes, "model", &len) ||
            dmg_sax_attr_is(attributes, nb_attributes, "model", "pci-root") ||
            dmg_sax_attr_is(attributes, nb_attributes, "model", "pci-bridge"));
}

/* The largest index read: an index is the bus number of the addresses of
 * the devices on the controller, and a PCI bus number is 8 bits (libvirt's
 * virPCIDeviceAddressParseXML() and dmg_parse_pci_address() take bus
 * 0-0xFF). */
#define DMG_PCI_CONTROLLER_INDEX_MAX 0xFF

int
dmg_controller_parse(const dmgXmlCtx *ctx, xmlNodePtr node, dmgDomainDef *def,
                     GError **error)
{
    g_autofree char *type = dmg_xml_prop(node, "type");
    dmgPCIControllerDef c = { .model = -1 };
    int found;

    if (g_strcmp0(type, "pci") != 0)
        return 0;
    if (dmg_xml_prop_enum(ctx, node, "model", dmgControllerModelPCITypeFromString,
                          _("a PCI controller model such as 'pci-root', 'pcie-root', 'pci-bridge' or 'pcie-root-port'"),
                          &c.model, error) < 0 ||
        (found = dmg_xml_prop_uint(ctx, node, "index", 10, DMG_PCI_CONTROLLER_INDEX_MAX,
                                   &c.index, error)) < 0 ||
        dmg_parse_guest_address(ctx, node, &c.guest, error) < 0)
        return -1;
    /* No index: G_MAXUINT until every controller is read
     * (dmg_controllers_assign_indexes()).  Two controllers with one
     * index, which libvirt refuses ("Multiple 'pci' controllers with
     * index"), are not looked for; nor are the indexes of the PCIe
     * controllers the reader dropped, which no pSeries guest has. */
    if (found == 0)
        c.index = G_MAXUINT;
    g_array_append_val(def->pci_controllers, c);
    return 0;
}

static bool
dmg_controller_index_used(const dmgDomainDef *def, unsigned index)
{
    for (guint i = 0; i < def->pci_controllers->len; i++) {
        if (g_array_index(def->pci_controllers, dmgPCIControllerDef, i).index == index)
            return true;
    }
    return false;
}

/* A PCI controller without an index takes the lowest unused one, in
 * document order (virDomainAssignControllerIndexes() in
 * src/conf/domain_postparse.c). */
void
dmg_controllers_assign_indexes(dmgDomainDef *def)
{
    for (guint i = 0; i < def->pci_controllers->len; i++) {
        dmgPCIControllerDef *c = &g_array_index(def->pci_controllers, dmgPCIControllerDef, i);
        unsigned idx = 0;

        if (c->index != G_MAXUINT)
            continue;
        while (dmg_controller_index_used(def, idx))
            idx++;
        c->index = idx;
    }
}

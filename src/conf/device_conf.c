/*
 * device_conf.c: what every device element has, its <alias> and its
 * <address type='pci'/>, after libvirt's src/conf/device_conf.c
 * (virPCIDeviceAddressParseXML, virDomainDeviceInfoParseXML).
 */
#include "domain_conf_priv.h"

#include <string.h>

char *
dmg_parse_alias(xmlNodePtr dev)
{
    xmlNodePtr alias = dmg_xml_child(dev, "alias");

    return alias ? dmg_xml_prop(alias, "name") : NULL;
}

/* A PCI address: <address domain='0x0000' bus='0x01' slot='0x00'
 * function='0x0'/>.  Ranges as libvirt's virPCIDeviceAddressParseXML. */
int
dmg_parse_pci_address(const dmgXmlCtx *ctx, xmlNodePtr addr,
                      dmgPCIAddress *out, GError **error)
{
    out->domain = out->bus = out->slot = out->function = 0;
    if (dmg_xml_prop_uint(ctx, addr, "domain", 0, 0xFFFF, &out->domain, error) < 0 ||
        dmg_xml_prop_uint(ctx, addr, "bus", 0, 0xFF, &out->bus, error) < 0 ||
        dmg_xml_prop_uint(ctx, addr, "slot", 0, 0x1F, &out->slot, error) < 0 ||
        dmg_xml_prop_uint(ctx, addr, "function", 0, 7, &out->function, error) < 0)
        return -1;
    out->present = true;
    return 0;
}

/* The guest-side <address type='pci'/> of a device, when given. */
int
dmg_parse_guest_address(const dmgXmlCtx *ctx, xmlNodePtr dev,
                        dmgPCIAddress *out, GError **error)
{
    xmlNodePtr addr = dmg_xml_child(dev, "address");
    g_autofree char *type = NULL;

    if (!addr)
        return 0;
    type = dmg_xml_prop(addr, "type");
    if (!type || strcmp(type, "pci") != 0)
        return 0;
    return dmg_parse_pci_address(ctx, addr, out, error);
}

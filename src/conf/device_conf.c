/*
 * device_conf.c: what every device element has, its <alias>, its
 * <address>, and a virtio device's <driver> options, after libvirt's
 * src/conf/device_conf.c (virPCIDeviceAddressParseXML,
 * virCCWDeviceAddressParseXML, virDomainDeviceInfoParseXML).
 */
#include "domain_conf_priv.h"

#include <string.h>

#include "dmg_i18n.h"

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

/* <address type='ccw'/>: all of cssid, ssid and devno, or none of them
 * (libvirt assigns one), within the channel subsystem's ranges
 * (virCCWDeviceAddressParseXML, virCCWDeviceAddressIsValid). */
static int
dmg_parse_ccw_address(const dmgXmlCtx *ctx, xmlNodePtr addr,
                      dmgCCWAddress *out, GError **error)
{
    int cssid, ssid, devno;

    memset(out, 0, sizeof(*out));
    if ((cssid = dmg_xml_prop_uint(ctx, addr, "cssid", 0, 0xFE, &out->cssid, error)) < 0 ||
        (ssid = dmg_xml_prop_uint(ctx, addr, "ssid", 0, 3, &out->ssid, error)) < 0 ||
        (devno = dmg_xml_prop_uint(ctx, addr, "devno", 0, 0xFFFF, &out->devno, error)) < 0)
        return -1;
    if (cssid && ssid && devno) {
        out->present = true;
    } else if (cssid || ssid || devno) {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_INVALID,
                    _("%s:%ld: invalid partial specification for virtio ccw address: give cssid, ssid and devno, or none of them"),
                    ctx->source, xmlGetLineNo(addr));
        return -1;
    }
    return 0;
}

/* The guest-side <address type=.../> of a device, when given
 * (virDomainDeviceAddressParseXML): its type, and the PCI or CCW fields. */
int
dmg_parse_guest_address(const dmgXmlCtx *ctx, xmlNodePtr dev,
                        dmgDeviceAddress *out, GError **error)
{
    xmlNodePtr addr = dmg_xml_child(dev, "address");
    int found;

    memset(out, 0, sizeof(*out));
    if (!addr)
        return 0;
    found = dmg_xml_prop_enum(ctx, addr, "type", dmgAddressTypeFromString,
                              _("an address type libvirt knows, such as 'pci', 'ccw', 'virtio-mmio' or 'unassigned'"),
                              &out->type, error);
    if (found < 0)
        return -1;
    if (found == 0 || out->type == DMG_ADDRESS_NONE) {
        /* libvirt: "No type specified for device address"; 'none' is
         * not a type one can give (virDomainDeviceAddressParseXML). */
        dmg_xml_error_missing(ctx, addr, _("the attribute 'type'"), error);
        return -1;
    }
    if (out->type == DMG_ADDRESS_PCI) {
        xmlNodePtr zpci = dmg_xml_child(addr, "zpci");
        int uid, fid;

        if (dmg_parse_pci_address(ctx, addr, &out->pci, error) < 0)
            return -1;
        /* virZPCIDeviceAddressParseXML(): uid and fid, each optional;
         * their ranges are checked at validation (libvirt_validate.c). */
        if (zpci) {
            if ((uid = dmg_xml_prop_uint(ctx, zpci, "uid", 0, G_MAXUINT, &out->pci.zpci_uid, error)) < 0 ||
                (fid = dmg_xml_prop_uint(ctx, zpci, "fid", 0, G_MAXUINT, &out->pci.zpci_fid, error)) < 0)
                return -1;
            out->pci.zpci_uid_set = uid > 0;
            out->pci.zpci_fid_set = fid > 0;
        }
        return 0;
    }
    if (out->type == DMG_ADDRESS_CCW)
        return dmg_parse_ccw_address(ctx, addr, &out->ccw, error);
    if (out->type == DMG_ADDRESS_DIMM) {
        /* virDomainDeviceDimmAddressParseXML(): slot required, base in
         * hexadecimal. */
        found = dmg_xml_prop_uint(ctx, addr, "slot", 10, G_MAXUINT, &out->dimm.slot, error);
        if (found == 0)
            dmg_xml_error_missing(ctx, addr, _("the attribute 'slot'"), error);
        if (found <= 0 ||
            dmg_xml_prop_uint64(ctx, addr, "base", 16, &out->dimm.base, error) < 0)
            return -1;
    }
    return 0;
}

/* A virtio device's <driver iommu= ats= packed= page_per_vq=/>
 * (virDomainVirtioOptionsParseXML). */
int
dmg_parse_virtio_options(const dmgXmlCtx *ctx, xmlNodePtr driver,
                         dmgVirtioOptions *out, GError **error)
{
    memset(out, 0, sizeof(*out));
    if (!driver)
        return 0;
    if (dmg_xml_prop_on_off(ctx, driver, "iommu", &out->iommu, error) < 0 ||
        dmg_xml_prop_on_off(ctx, driver, "ats", &out->ats, error) < 0 ||
        dmg_xml_prop_on_off(ctx, driver, "packed", &out->packed, error) < 0 ||
        dmg_xml_prop_on_off(ctx, driver, "page_per_vq", &out->page_per_vq, error) < 0)
        return -1;
    return 0;
}

/*
 * hostdev_conf.c: the devices assigned with VFIO, <hostdev> and
 * <interface type='hostdev'>, after libvirt's src/conf/domain_conf.c
 * (virDomainHostdevDefParseXML, virDomainNetDefParseXML); and the QEMU
 * frontend properties set on them by <qemu:override> (libvirt's
 * src/qemu/qemu_domain.c, qemuDomainDefNamespaceParse) or by dmaguard's
 * own <metadata>.
 */
#include "domain_conf_priv.h"

#include <string.h>

#include "dmg_i18n.h"

void
dmg_hostdev_def_free(dmgHostdevDef *h)
{
    if (!h)
        return;
    g_free(h->alias);
    g_free(h->driver_name);
    g_free(h->driver_model);
    g_free(h->teaming_persistent);
    g_free(h->mdev_uuid);
    g_free(h->source_key);
    g_free(h);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgHostdevDef, dmg_hostdev_def_free);

/* ------------------------------------------------------------------ */
/* <hostdev>                                                           */

/* The source of a USB or SCSI hostdev, only to tell two of them apart
 * as virDomainHostdevMatchSubsysUSB() and ...SCSIHost() / ...SCSIiSCSI()
 * do: a USB device by its host bus and device when given, else by vendor
 * and product; a SCSI one by adapter, bus, target and unit, or for iSCSI
 * by host, port and name; a scsi_host by its wwpn. */
static int
dmg_hostdev_parse_source_key(const dmgXmlCtx *ctx, xmlNodePtr node, dmgHostdevDef *h,
                             GError **error)
{
    xmlNodePtr source = dmg_xml_child(node, "source");
    xmlNodePtr addr = dmg_xml_child(source, "address");
    g_autofree char *protocol = source ? dmg_xml_prop(source, "protocol") : NULL;
    unsigned a = 0, b = 0, c = 0, d = 0;

    if (!source)
        return 0;
    if (h->type == DMG_HOSTDEV_SUBSYS_USB) {
        xmlNodePtr vendor = dmg_xml_child(source, "vendor");
        xmlNodePtr product = dmg_xml_child(source, "product");

        if (addr && (dmg_xml_prop_uint(ctx, addr, "bus", 0, G_MAXUINT, &a, error) < 0 ||
                     dmg_xml_prop_uint(ctx, addr, "device", 0, G_MAXUINT, &b, error) < 0))
            return -1;
        if (a && b) {
            h->source_key = g_strdup_printf("usb:%u.%u", a, b);
            return 0;
        }
        if ((vendor && dmg_xml_prop_uint(ctx, vendor, "id", 0, 0xFFFF, &c, error) < 0) ||
            (product && dmg_xml_prop_uint(ctx, product, "id", 0, 0xFFFF, &d, error) < 0))
            return -1;
        h->source_key = g_strdup_printf("usb:%04x:%04x", c, d);
    } else if (h->type == DMG_HOSTDEV_SUBSYS_SCSI && g_strcmp0(protocol, "iscsi") == 0) {
        xmlNodePtr host = dmg_xml_child(source, "host");
        g_autofree char *name = dmg_xml_prop(source, "name");
        g_autofree char *hname = host ? dmg_xml_prop(host, "name") : NULL;
        g_autofree char *port = host ? dmg_xml_prop(host, "port") : NULL;

        h->source_key = g_strdup_printf("iscsi:%s:%s:%s", hname ? hname : "",
                                        port ? port : "", name ? name : "");
    } else if (h->type == DMG_HOSTDEV_SUBSYS_SCSI) {
        xmlNodePtr adapter = dmg_xml_child(source, "adapter");
        g_autofree char *name = adapter ? dmg_xml_prop(adapter, "name") : NULL;

        if (addr && (dmg_xml_prop_uint(ctx, addr, "bus", 0, G_MAXUINT, &a, error) < 0 ||
                     dmg_xml_prop_uint(ctx, addr, "target", 0, G_MAXUINT, &b, error) < 0 ||
                     dmg_xml_prop_uint(ctx, addr, "unit", 0, G_MAXUINT, &c, error) < 0))
            return -1;
        h->source_key = g_strdup_printf("scsi:%s:%u:%u:%u", name ? name : "", a, b, c);
    } else if (h->type == DMG_HOSTDEV_SUBSYS_SCSI_HOST) {
        g_autofree char *wwpn = dmg_xml_prop(source, "wwpn");

        h->source_key = g_strdup_printf("scsi_host:%s:%s", protocol ? protocol : "",
                                        wwpn ? wwpn : "");
    }
    return 0;
}

static int
dmg_hostdev_parse_pci(const dmgXmlCtx *ctx, xmlNodePtr node,
                      dmgHostdevDef *h, GError **error)
{
    xmlNodePtr source = dmg_xml_child(node, "source");
    xmlNodePtr addr = dmg_xml_child(source, "address");
    xmlNodePtr driver = dmg_xml_child(node, "driver");
    xmlNodePtr teaming = dmg_xml_child(node, "teaming");

    if (!addr) {
        dmg_xml_error_missing(ctx, node, _("<source><address .../></source> with the host PCI address"),
                              error);
        return -1;
    }
    if (dmg_parse_pci_address(ctx, addr, &h->source, error) < 0)
        return -1;
    if (driver) {
        h->driver_name = dmg_xml_prop(driver, "name");
        h->driver_model = dmg_xml_prop(driver, "model");
        if (dmg_xml_prop_yes_no(ctx, driver, "iommufd", &h->iommufd, error) < 0)
            return -1;
    }
    if (teaming) {
        if (dmg_xml_prop_enum(ctx, teaming, "type", dmgTeamingTypeFromString,
                              _("'persistent' or 'transient'"),
                              &h->teaming, error) < 0)
            return -1;
        h->teaming_persistent = dmg_xml_prop(teaming, "persistent");
    }
    return 0;
}

static int
dmg_hostdev_parse_mdev(const dmgXmlCtx *ctx, xmlNodePtr node,
                       dmgHostdevDef *h, GError **error)
{
    xmlNodePtr addr = dmg_xml_child(dmg_xml_child(node, "source"), "address");
    int found;

    found = dmg_xml_prop_enum(ctx, node, "model", dmgMdevModelTypeFromString,
                              _("'vfio-pci', 'vfio-ccw' or 'vfio-ap'"),
                              &h->mdev_model, error);
    if (found < 0)
        return -1;
    if (found == 0) {
        dmg_xml_error_missing(ctx, node, _("the attribute 'model' (vfio-pci, vfio-ccw or vfio-ap)"),
                              error);
        return -1;
    }
    if (dmg_xml_prop_on_off(ctx, node, "display", &h->display, error) < 0 ||
        dmg_xml_prop_on_off(ctx, node, "ramfb", &h->ramfb, error) < 0)
        return -1;
    if (!addr || !(h->mdev_uuid = dmg_xml_prop(addr, "uuid"))) {
        dmg_xml_error_missing(ctx, node, _("<source><address uuid='...'/></source> naming the mediated device"),
                              error);
        return -1;
    }
    if (!g_uuid_string_is_valid(h->mdev_uuid)) {
        dmg_xml_error_invalid(ctx, addr, "uuid", h->mdev_uuid,
                              _("a UUID such as 4b20d080-1b54-4048-85b3-a6a62d165c01"),
                              error);
        return -1;
    }
    return 0;
}

dmgHostdevDef *
dmg_hostdev_parse(const dmgXmlCtx *ctx, xmlNodePtr node, GError **error)
{
    g_autoptr(dmgHostdevDef) h = g_new0(dmgHostdevDef, 1);
    int ret = 0;

    h->line = xmlGetLineNo(node);
    h->mode = DMG_HOSTDEV_MODE_SUBSYS;
    if (dmg_xml_prop_enum(ctx, node, "mode", dmgHostdevModeTypeFromString,
                          _("'subsystem' or 'capabilities'"),
                          &h->mode, error) < 0)
        return NULL;
    if (h->mode == DMG_HOSTDEV_MODE_CAPABILITIES) {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_UNSUPPORTED,
                    _("%s:%d: <hostdev mode='capabilities'> is only for LXC containers; QEMU/KVM domains use mode='subsystem'"),
                    ctx->source, h->line);
        return NULL;
    }
    switch (dmg_xml_prop_enum(ctx, node, "type", dmgHostdevSubsysTypeFromString,
                              _("'usb', 'pci', 'scsi', 'scsi_host' or 'mdev'"),
                              &h->type, error)) {
    case -1:
        return NULL;
    case 0:
        dmg_xml_error_missing(ctx, node, _("the attribute 'type'"), error);
        return NULL;
    }

    h->alias = dmg_parse_alias(node);
    /* virDomainDeviceBootParseXML(): order is a positive integer. */
    if (dmg_xml_child(node, "boot") &&
        dmg_xml_prop_uint(ctx, dmg_xml_child(node, "boot"), "order", 10, G_MAXINT,
                          &h->boot_order, error) < 0)
        return NULL;
    if (h->type == DMG_HOSTDEV_SUBSYS_PCI)
        ret = dmg_hostdev_parse_pci(ctx, node, h, error);
    else if (h->type == DMG_HOSTDEV_SUBSYS_MDEV)
        ret = dmg_hostdev_parse_mdev(ctx, node, h, error);
    else
        ret = dmg_hostdev_parse_source_key(ctx, node, h, error);
    if (ret < 0 || dmg_parse_guest_address(ctx, node, &h->guest, error) < 0)
        return NULL;
    return g_steal_pointer(&h);
}

/* <interface type='hostdev'> is a VFIO PCI hostdev too.  libvirt parses
 * interfaces before hostdevs and lists these first in def->hostdevs. */
int
dmg_interface_hostdevs_parse(const dmgXmlCtx *ctx, xmlNodePtr devices,
                             dmgDomainDef *def, GError **error)
{
    for (xmlNodePtr cur = devices ? devices->children : NULL; cur; cur = cur->next) {
        g_autofree char *type = NULL;
        g_autoptr(dmgHostdevDef) h = NULL;

        if (!dmg_xml_is(cur, NULL, "interface") ||
            g_strcmp0((type = dmg_xml_prop(cur, "type")), "hostdev") != 0)
            continue;
        h = g_new0(dmgHostdevDef, 1);
        h->line = xmlGetLineNo(cur);
        h->mode = DMG_HOSTDEV_MODE_SUBSYS;
        h->type = DMG_HOSTDEV_SUBSYS_PCI;
        h->is_interface = true;
        h->alias = dmg_parse_alias(cur);
        if (dmg_hostdev_parse_pci(ctx, cur, h, error) < 0 ||
            dmg_parse_guest_address(ctx, cur, &h->guest, error) < 0)
            return -1;
        g_ptr_array_add(def->hostdevs, g_steal_pointer(&h));
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Device properties: <qemu:override> and dmaguard's <metadata>       */

/* Set a tristate property; qemu:override is what QEMU really receives, so
 * it wins over dmaguard's metadata, and a disagreement is reported. */
static void
dmg_prop_set(dmgDomainDef *def, const char *alias, const char *prop,
             dmgTristate *slot, int *slot_src, dmgTristate val, int src)
{
    if (*slot != DMG_TRISTATE_ABSENT && *slot != val) {
        bool override = src == DMG_PROP_SRC_QEMU_OVERRIDE ||
                        *slot_src == DMG_PROP_SRC_QEMU_OVERRIDE;

        g_ptr_array_add(def->parse_warnings,
                        override
                        ? g_strdup_printf(_("%s: %s is set to different values in <qemu:override> and in dmaguard's <metadata>; QEMU receives the <qemu:override> value"),
                                          alias, prop)
                        : g_strdup_printf(_("%s: %s is set twice, to different values, in dmaguard's <metadata>; the first one counts"),
                                          alias, prop));
        if (src != DMG_PROP_SRC_QEMU_OVERRIDE)
            return;
    }
    *slot = val;
    *slot_src = src;
}

static int
dmg_override_property(const dmgXmlCtx *ctx, xmlNodePtr prop, dmgDomainDef *def,
                      dmgHostdevDef *h, GError **error)
{
    g_autofree char *name = dmg_xml_prop(prop, "name");
    g_autofree char *type = dmg_xml_prop(prop, "type");
    g_autofree char *value = dmg_xml_prop(prop, "value");
    bool is_bool_prop = g_strcmp0(name, "x-balloon-allowed") == 0 ||
                        g_strcmp0(name, "x-migration-iommu-pt") == 0;
    int onoff;

    if (!name || (!is_bool_prop && g_strcmp0(name, "enable-migration") != 0))
        return 0;
    if (g_strcmp0(type, "remove") == 0)
        return 0;
    if (is_bool_prop) {
        dmgTristate val;

        if (g_strcmp0(type, "bool") != 0 ||
            (g_strcmp0(value, "true") != 0 && g_strcmp0(value, "false") != 0)) {
            dmg_xml_error_invalid(ctx, prop, "value", value ? value : "",
                                  _("type='bool' with value 'true' or 'false' (QEMU's property is a boolean)"),
                                  error);
            return -1;
        }
        val = strcmp(value, "true") == 0 ? DMG_TRISTATE_ON : DMG_TRISTATE_OFF;
        if (strcmp(name, "x-balloon-allowed") == 0)
            dmg_prop_set(def, h->alias, name, &h->balloon_allowed,
                         &h->balloon_allowed_src, val, DMG_PROP_SRC_QEMU_OVERRIDE);
        else
            dmg_prop_set(def, h->alias, name, &h->migration_iommu_pt,
                         &h->migration_iommu_pt_src, val, DMG_PROP_SRC_QEMU_OVERRIDE);
        return 0;
    }
    if (g_strcmp0(type, "string") != 0 ||
        (onoff = dmgOnOffAutoTypeFromString(value)) < 0) {
        dmg_xml_error_invalid(ctx, prop, "value", value ? value : "",
                              _("type='string' with value 'on', 'off' or 'auto' (QEMU's enable-migration is OnOffAuto)"),
                              error);
        return -1;
    }
    h->enable_migration = onoff;
    h->enable_migration_src = DMG_PROP_SRC_QEMU_OVERRIDE;
    return 0;
}

/* <qemu:override><qemu:device alias='X'><qemu:frontend><qemu:property/> */
int
dmg_qemu_override_parse(const dmgXmlCtx *ctx, xmlNodePtr root,
                        dmgDomainDef *def, GError **error)
{
    xmlNodePtr ovr = dmg_xml_child_ns(root, DMG_QEMU_NS, "override");

    for (xmlNodePtr dev = ovr ? ovr->children : NULL; dev; dev = dev->next) {
        g_autofree char *alias = NULL;
        xmlNodePtr front;
        dmgHostdevDef *h;

        if (!dmg_xml_is(dev, DMG_QEMU_NS, "device"))
            continue;
        alias = dmg_xml_prop(dev, "alias");
        if (!(h = dmg_domain_def_find_hostdev(def, alias))) {
            g_ptr_array_add(def->parse_warnings,
                            g_strdup_printf(_("<qemu:device alias='%s'> in <qemu:override> matches no <hostdev>; its properties are not analyzed"),
                                            alias ? alias : ""));
            continue;
        }
        front = dmg_xml_child_ns(dev, DMG_QEMU_NS, "frontend");
        for (xmlNodePtr p = front ? front->children : NULL; p; p = p->next) {
            if (dmg_xml_is(p, DMG_QEMU_NS, "property") &&
                dmg_override_property(ctx, p, def, h, error) < 0)
                return -1;
        }
    }
    return 0;
}

/* A typo in the metadata must not pass silently: the schema refuses it,
 * and so does this warning. */
static void
dmg_metadata_check_attrs(xmlNodePtr node, dmgDomainDef *def)
{
    static const char *const known[] = { "alias", "balloon-allowed", "migration-iommu-pt", NULL };

    for (xmlAttrPtr a = node->properties; a; a = a->next) {
        if (a->ns || g_strv_contains(known, (const char *)a->name))
            continue;
        g_ptr_array_add(def->parse_warnings,
                        g_strdup_printf(_("line %ld: <dmaguard:hostdev> has an unknown attribute '%s', ignored; the attributes are alias, balloon-allowed and migration-iommu-pt"),
                                        xmlGetLineNo(node), (const char *)a->name));
    }
}

/* <metadata><dmaguard:domain><dmaguard:hostdev alias= balloon-allowed=
 * migration-iommu-pt=/> (schemas/dmaguard-metadata.rng) */
int
dmg_metadata_parse(const dmgXmlCtx *ctx, xmlNodePtr root, dmgDomainDef *def,
                   GError **error)
{
    xmlNodePtr md = dmg_xml_child_ns(dmg_xml_child(root, "metadata"),
                                     DMG_METADATA_NS, "domain");

    for (xmlNodePtr cur = md ? md->children : NULL; cur; cur = cur->next) {
        g_autofree char *alias = NULL;
        dmgTristate balloon = DMG_TRISTATE_ABSENT, pt = DMG_TRISTATE_ABSENT;
        dmgHostdevDef *h;

        if (cur->type != XML_ELEMENT_NODE)
            continue;
        if (dmg_xml_is(cur, DMG_METADATA_NS, "verdict")) {
            g_autofree char *stored_balloon = dmg_xml_prop(cur, "balloon");
            g_autofree char *migration = dmg_xml_prop(cur, "migration");

            def->stored_digest = dmg_xml_prop(cur, "digest");
            def->stored_checked = dmg_xml_prop(cur, "checked");
            def->stored_summary = g_strdup_printf(_("balloon %s, migration %s"),
                                                  stored_balloon ? stored_balloon : "?",
                                                  migration ? migration : "?");
            continue;
        }
        if (!dmg_xml_is(cur, DMG_METADATA_NS, "hostdev")) {
            g_ptr_array_add(def->parse_warnings,
                            g_strdup_printf(_("line %ld: <%s> inside <dmaguard:domain> is not a dmaguard element and is ignored; use <dmaguard:hostdev> (schemas/dmaguard-metadata.rng)"),
                                            xmlGetLineNo(cur), (const char *)cur->name));
            continue;
        }
        dmg_metadata_check_attrs(cur, def);
        if (dmg_xml_prop_yes_no(ctx, cur, "balloon-allowed", &balloon, error) < 0 ||
            dmg_xml_prop_yes_no(ctx, cur, "migration-iommu-pt", &pt, error) < 0)
            return -1;
        if (!(alias = dmg_xml_prop(cur, "alias"))) {
            g_ptr_array_add(def->parse_warnings,
                            g_strdup_printf(_("line %ld: <dmaguard:hostdev> has no alias attribute and is ignored; name the device with alias='...'"),
                                            xmlGetLineNo(cur)));
            continue;
        }
        if (!(h = dmg_domain_def_find_hostdev(def, alias))) {
            g_ptr_array_add(def->parse_warnings,
                            g_strdup_printf(_("<dmaguard:hostdev alias='%s'> in <metadata> matches no <hostdev>; use the device's <alias name=...> or hostdevN"),
                                            alias ? alias : ""));
            continue;
        }
        if (balloon)
            dmg_prop_set(def, h->alias, "x-balloon-allowed", &h->balloon_allowed,
                         &h->balloon_allowed_src, balloon, DMG_PROP_SRC_METADATA);
        if (pt)
            dmg_prop_set(def, h->alias, "x-migration-iommu-pt",
                         &h->migration_iommu_pt, &h->migration_iommu_pt_src,
                         pt, DMG_PROP_SRC_METADATA);
    }
    return 0;
}

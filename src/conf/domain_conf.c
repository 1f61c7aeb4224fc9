/*
 * domain_conf.c: parse the parts of a libvirt <domain> that matter for DMA,
 * ballooning and migration.  Unknown elements are ignored, as libvirt's
 * parser ignores them; invalid values of known ones are errors.
 */
#include "domain_conf.h"

#include <string.h>

#include "dmg_i18n.h"
#include "xml_read.h"
#include "xml_util.h"

/* The children of <devices> that dmg_devices_parse() and
 * dmg_interface_hostdevs_parse() read.  The reader drops every other
 * device (disks, controllers, graphics: most of a real domain) before
 * libxml2 builds nodes for it. */
static const char *const dmg_device_elements[] = {
    "hostdev", "interface", "memballoon", "iommu", "memory", NULL,
};

DMG_ENUM_IMPL(dmgDomainVirt, DMG_DOMAIN_VIRT_LAST, "qemu", "kvm");
DMG_ENUM_IMPL(dmgIoapic, DMG_IOAPIC_LAST, "default", "kvm", "qemu");
DMG_ENUM_IMPL(dmgHostdevMode, DMG_HOSTDEV_MODE_LAST,
              "subsystem", "capabilities");
DMG_ENUM_IMPL(dmgHostdevSubsys, DMG_HOSTDEV_SUBSYS_LAST,
              "usb", "pci", "scsi", "scsi_host", "mdev");
DMG_ENUM_IMPL(dmgMdevModel, DMG_MDEV_MODEL_LAST,
              "vfio-pci", "vfio-ccw", "vfio-ap");
DMG_ENUM_IMPL(dmgTeaming, DMG_TEAMING_LAST, "none", "persistent", "transient");
DMG_ENUM_IMPL(dmgOnOffAuto, DMG_ON_OFF_AUTO_LAST, "auto", "on", "off");
DMG_ENUM_IMPL(dmgPropSource, DMG_PROP_SRC_LAST,
              "none", "qemu:override", "metadata");
DMG_ENUM_IMPL(dmgMemballoonModel, DMG_MEMBALLOON_LAST,
              "virtio", "xen", "none",
              "virtio-transitional", "virtio-non-transitional");
DMG_ENUM_IMPL(dmgIOMMUModel, DMG_IOMMU_MODEL_LAST,
              "intel", "smmuv3", "virtio", "amd");
DMG_ENUM_IMPL(dmgMemoryModel, DMG_MEMORY_MODEL_LAST,
              "dimm", "nvdimm", "virtio-pmem", "virtio-mem", "sgx-epc");

/* ------------------------------------------------------------------ */
/* Freeing                                                             */

static void
dmg_hostdev_def_free(dmgHostdevDef *h)
{
    if (!h)
        return;
    g_free(h->alias);
    g_free(h->driver_name);
    g_free(h->driver_model);
    g_free(h->teaming_persistent);
    g_free(h->mdev_uuid);
    g_free(h);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgHostdevDef, dmg_hostdev_def_free);

static void
dmg_memory_def_free(dmgMemoryDef *m)
{
    if (!m)
        return;
    g_free(m->alias);
    g_free(m);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgMemoryDef, dmg_memory_def_free);

void
dmg_domain_def_free(dmgDomainDef *def)
{
    if (!def)
        return;
    g_free(def->name);
    g_free(def->uuid);
    g_free(def->arch);
    g_free(def->machine);
    g_free(def->stored_digest);
    g_free(def->stored_checked);
    g_free(def->stored_summary);
    g_ptr_array_unref(def->hostdevs);
    g_ptr_array_unref(def->memories);
    g_ptr_array_unref(def->parse_warnings);
    if (def->memballoon) {
        g_free(def->memballoon->alias);
        g_free(def->memballoon);
    }
    if (def->iommu) {
        g_free(def->iommu->alias);
        g_free(def->iommu);
    }
    g_free(def);
}

static dmgDomainDef *
dmg_domain_def_new(void)
{
    dmgDomainDef *def = g_new0(dmgDomainDef, 1);

    def->hostdevs = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_hostdev_def_free);
    def->memories = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_memory_def_free);
    def->parse_warnings = g_ptr_array_new_with_free_func(g_free);
    def->vcpus = 1;
    return def;
}

/* ------------------------------------------------------------------ */
/* Shared pieces                                                       */

static char *
dmg_parse_alias(xmlNodePtr dev)
{
    xmlNodePtr alias = dmg_xml_child(dev, "alias");

    return alias ? dmg_xml_prop(alias, "name") : NULL;
}

/* A PCI address: <address domain='0x0000' bus='0x01' slot='0x00'
 * function='0x0'/>.  Ranges as libvirt's virPCIDeviceAddressParseXML. */
static int
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
static int
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

/* ------------------------------------------------------------------ */
/* <hostdev>                                                           */

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

static dmgHostdevDef *
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
    if (h->type == DMG_HOSTDEV_SUBSYS_PCI)
        ret = dmg_hostdev_parse_pci(ctx, node, h, error);
    else if (h->type == DMG_HOSTDEV_SUBSYS_MDEV)
        ret = dmg_hostdev_parse_mdev(ctx, node, h, error);
    if (ret < 0 || dmg_parse_guest_address(ctx, node, &h->guest, error) < 0)
        return NULL;
    return g_steal_pointer(&h);
}

/* ------------------------------------------------------------------ */
/* <memballoon>, <iommu>, <memory model=...>                           */

static int
dmg_memballoon_parse(const dmgXmlCtx *ctx, xmlNodePtr node,
                     dmgDomainDef *def, GError **error)
{
    g_autofree dmgMemballoonDef *b = g_new0(dmgMemballoonDef, 1);
    xmlNodePtr stats = dmg_xml_child(node, "stats");
    unsigned period;
    int found;

    if (def->memballoon) {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_INVALID,
                    _("%s:%ld: only a single memory balloon device is supported; remove the second <memballoon>"),
                    ctx->source, xmlGetLineNo(node));
        return -1;
    }
    b->line = xmlGetLineNo(node);
    b->stats_period = -1;
    found = dmg_xml_prop_enum(ctx, node, "model", dmgMemballoonModelTypeFromString,
                              _("'virtio', 'virtio-transitional', 'virtio-non-transitional', 'xen' or 'none'"),
                              &b->model, error);
    if (found < 0)
        return -1;
    if (found == 0) {
        dmg_xml_error_missing(ctx, node, _("the attribute 'model'"), error);
        return -1;
    }
    if (dmg_xml_prop_on_off(ctx, node, "autodeflate", &b->autodeflate, error) < 0 ||
        dmg_xml_prop_on_off(ctx, node, "freePageReporting",
                            &b->free_page_reporting, error) < 0)
        return -1;
    if (stats) {
        found = dmg_xml_prop_uint(ctx, stats, "period", 10, G_MAXINT, &period, error);
        if (found < 0)
            return -1;
        if (found)
            b->stats_period = period;
    }
    if (dmg_parse_guest_address(ctx, node, &b->guest, error) < 0)
        return -1;
    b->alias = dmg_parse_alias(node);
    def->memballoon = g_steal_pointer(&b);
    return 0;
}

static int
dmg_iommu_parse(const dmgXmlCtx *ctx, xmlNodePtr node, dmgDomainDef *def,
                GError **error)
{
    g_autofree dmgIOMMUDef *io = g_new0(dmgIOMMUDef, 1);
    xmlNodePtr drv = dmg_xml_child(node, "driver");
    int found;

    if (def->iommu) {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_INVALID,
                    _("%s:%ld: only a single IOMMU device is supported; remove the second <iommu>"),
                    ctx->source, xmlGetLineNo(node));
        return -1;
    }
    io->line = xmlGetLineNo(node);
    found = dmg_xml_prop_enum(ctx, node, "model", dmgIOMMUModelTypeFromString,
                              _("'intel', 'smmuv3', 'virtio' or 'amd'"),
                              &io->model, error);
    if (found <= 0) {
        if (found == 0)
            dmg_xml_error_missing(ctx, node, _("the attribute 'model'"), error);
        return -1;
    }
    if (drv &&
        (dmg_xml_prop_on_off(ctx, drv, "intremap", &io->intremap, error) < 0 ||
         dmg_xml_prop_on_off(ctx, drv, "caching_mode", &io->caching_mode, error) < 0 ||
         dmg_xml_prop_on_off(ctx, drv, "eim", &io->eim, error) < 0 ||
         dmg_xml_prop_on_off(ctx, drv, "iotlb", &io->iotlb, error) < 0 ||
         dmg_xml_prop_uint(ctx, drv, "aw_bits", 10, 64, &io->aw_bits, error) < 0 ||
         dmg_xml_prop_on_off(ctx, drv, "dma_translation", &io->dma_translation, error) < 0 ||
         dmg_xml_prop_on_off(ctx, drv, "passthrough", &io->passthrough, error) < 0))
        return -1;
    io->alias = dmg_parse_alias(node);
    def->iommu = g_steal_pointer(&io);
    return 0;
}

static int
dmg_memory_target_parse(const dmgXmlCtx *ctx, xmlNodePtr target,
                        dmgMemoryDef *m, GError **error)
{
    xmlNodePtr size = dmg_xml_child(target, "size");
    xmlNodePtr block = dmg_xml_child(target, "block");
    xmlNodePtr requested = dmg_xml_child(target, "requested");
    xmlNodePtr node = dmg_xml_child(target, "node");
    unsigned n;

    if (!size) {
        dmg_xml_error_missing(ctx, target, _("<size>"), error);
        return -1;
    }
    if (dmg_xml_scaled_value(ctx, size, 1024, &m->size, error) < 0 ||
        (block && dmg_xml_scaled_value(ctx, block, 1024, &m->block, error) < 0) ||
        (requested &&
         dmg_xml_scaled_value(ctx, requested, 1024, &m->requested, error) < 0))
        return -1;
    if (node) {
        if (dmg_xml_uint_text(ctx, node, G_MAXINT, &n, error) < 0)
            return -1;
        m->node = n;
    }
    return 0;
}

static int
dmg_memory_parse(const dmgXmlCtx *ctx, xmlNodePtr node, dmgDomainDef *def,
                 GError **error)
{
    g_autoptr(dmgMemoryDef) m = g_new0(dmgMemoryDef, 1);
    xmlNodePtr target = dmg_xml_child(node, "target");
    xmlNodePtr pagesize = dmg_xml_child(dmg_xml_child(node, "source"), "pagesize");
    int found;

    m->line = xmlGetLineNo(node);
    m->node = -1;
    found = dmg_xml_prop_enum(ctx, node, "model", dmgMemoryModelTypeFromString,
                              _("'dimm', 'nvdimm', 'virtio-pmem', 'virtio-mem' or 'sgx-epc'"),
                              &m->model, error);
    if (found <= 0) {
        if (found == 0)
            dmg_xml_error_missing(ctx, node, _("the attribute 'model'"), error);
        return -1;
    }
    if (!target) {
        dmg_xml_error_missing(ctx, node, _("<target>"), error);
        return -1;
    }
    if (dmg_memory_target_parse(ctx, target, m, error) < 0 ||
        (pagesize &&
         dmg_xml_scaled_value(ctx, pagesize, 1024, &m->source_pagesize, error) < 0))
        return -1;
    m->alias = dmg_parse_alias(node);
    g_ptr_array_add(def->memories, g_steal_pointer(&m));
    return 0;
}

/* <interface type='hostdev'> is a VFIO PCI hostdev too.  libvirt parses
 * interfaces before hostdevs and lists these first in def->hostdevs. */
static int
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

static int
dmg_devices_parse(const dmgXmlCtx *ctx, xmlNodePtr devices, dmgDomainDef *def,
                  GError **error)
{
    if (dmg_interface_hostdevs_parse(ctx, devices, def, error) < 0)
        return -1;
    for (xmlNodePtr cur = devices ? devices->children : NULL; cur; cur = cur->next) {
        int ret = 0;

        if (dmg_xml_is(cur, NULL, "hostdev")) {
            dmgHostdevDef *h = dmg_hostdev_parse(ctx, cur, error);

            if (!h)
                return -1;
            g_ptr_array_add(def->hostdevs, h);
        } else if (dmg_xml_is(cur, NULL, "memballoon")) {
            ret = dmg_memballoon_parse(ctx, cur, def, error);
        } else if (dmg_xml_is(cur, NULL, "iommu")) {
            ret = dmg_iommu_parse(ctx, cur, def, error);
        } else if (dmg_xml_is(cur, NULL, "memory")) {
            ret = dmg_memory_parse(ctx, cur, def, error);
        }
        if (ret < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Memory and the domain header                                        */

static int
dmg_memory_backing_parse(const dmgXmlCtx *ctx, xmlNodePtr mb, dmgDomainDef *def,
                         GError **error)
{
    xmlNodePtr huge = dmg_xml_child(mb, "hugepages");
    xmlNodePtr page = dmg_xml_child(huge, "page");
    guint64 kib_size;

    def->locked = dmg_xml_child(mb, "locked") != NULL;
    def->hugepages = huge != NULL;
    if (page) {
        g_autofree char *size = dmg_xml_prop(page, "size");
        g_autofree char *unit = dmg_xml_prop(page, "unit");

        /* <page size='1' unit='G'/>: size is an attribute here, so reuse
         * the element parser on a scratch node holding it as text. */
        if (size) {
            xmlNodePtr tmp = xmlNewNode(NULL, BAD_CAST "page");
            int ret;

            xmlNodeSetContent(tmp, BAD_CAST size);
            if (unit)
                xmlSetProp(tmp, BAD_CAST "unit", BAD_CAST unit);
            tmp->line = page->line;
            ret = dmg_xml_scaled_value(ctx, tmp, 1024, &kib_size, error);
            xmlFreeNode(tmp);
            if (ret < 0)
                return -1;
            def->hugepage_size = kib_size;
        }
    }
    return 0;
}

static int
dmg_domain_memory_parse(const dmgXmlCtx *ctx, xmlNodePtr root,
                        dmgDomainDef *def, GError **error)
{
    xmlNodePtr mem = dmg_xml_child(root, "memory");
    xmlNodePtr cur = dmg_xml_child(root, "currentMemory");
    xmlNodePtr max = dmg_xml_child(root, "maxMemory");
    xmlNodePtr vcpu = dmg_xml_child(root, "vcpu");
    xmlNodePtr hard = dmg_xml_child(dmg_xml_child(root, "memtune"), "hard_limit");
    xmlNodePtr mb = dmg_xml_child(root, "memoryBacking");

    if (!mem) {
        dmg_xml_error_missing(ctx, root, _("<memory>, the guest's memory size"),
                              error);
        return -1;
    }
    if (dmg_xml_scaled_value(ctx, mem, 1024, &def->memory, error) < 0 ||
        (cur && dmg_xml_scaled_value(ctx, cur, 1024, &def->current_memory, error) < 0) ||
        (max && dmg_xml_scaled_value(ctx, max, 1024, &def->max_memory, error) < 0) ||
        (max && dmg_xml_prop_uint(ctx, max, "slots", 10, 4096,
                                  &def->max_memory_slots, error) < 0) ||
        (vcpu && dmg_xml_uint_text(ctx, vcpu, 16384, &def->vcpus, error) < 0) ||
        (hard && dmg_xml_scaled_value(ctx, hard, 1024, &def->hard_limit, error) < 0) ||
        (mb && dmg_memory_backing_parse(ctx, mb, def, error) < 0))
        return -1;
    if (!cur)
        def->current_memory = def->memory;
    return 0;
}

static int
dmg_domain_header_parse(const dmgXmlCtx *ctx, xmlNodePtr root,
                        dmgDomainDef *def, GError **error)
{
    xmlNodePtr name = dmg_xml_child(root, "name");
    xmlNodePtr uuid = dmg_xml_child(root, "uuid");
    xmlNodePtr ostype = dmg_xml_child(dmg_xml_child(root, "os"), "type");
    xmlNodePtr ioapic = dmg_xml_child(dmg_xml_child(root, "features"), "ioapic");
    g_autofree char *type = dmg_xml_prop(root, "type");

    if (!type) {
        dmg_xml_error_missing(ctx, root, _("the attribute 'type' (kvm or qemu)"),
                              error);
        return -1;
    }
    if ((def->virt_type = dmgDomainVirtTypeFromString(type)) < 0) {
        g_autofree char *shown = dmg_xml_value_for_message(type);

        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_UNSUPPORTED,
                    _("%s:%ld: domain type '%s' is not a QEMU domain: dmaguard analyzes <domain type='kvm'> and <domain type='qemu'>"),
                    ctx->source, xmlGetLineNo(root), shown);
        return -1;
    }
    if (!name || !*(def->name = dmg_xml_text(name))) {
        dmg_xml_error_missing(ctx, root, _("a non-empty <name>"), error);
        return -1;
    }
    if (uuid) {
        def->uuid = dmg_xml_text(uuid);
        if (!g_uuid_string_is_valid(def->uuid)) {
            dmg_xml_error_invalid(ctx, uuid, NULL, def->uuid, _("a UUID"), error);
            return -1;
        }
    }
    if (ostype) {
        def->arch = dmg_xml_prop(ostype, "arch");
        def->machine = dmg_xml_prop(ostype, "machine");
    }
    if (ioapic &&
        dmg_xml_prop_enum(ctx, ioapic, "driver", dmgIoapicTypeFromString,
                          _("'kvm' or 'qemu'"), &def->ioapic_driver, error) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Aliases and device properties                                       */

/* libvirt names devices at start (qemuAssignDeviceAliases): hostdevN by
 * the hostdev's index, balloon0, iommu0, dimmN / virtiomemN. */
static void
dmg_domain_assign_aliases(dmgDomainDef *def)
{
    unsigned counts[DMG_MEMORY_MODEL_LAST] = { 0 };
    static const char *const mem_prefix[DMG_MEMORY_MODEL_LAST] = {
        "dimm", "nvdimm", "virtiopmem", "virtiomem", "epc",
    };

    for (guint i = 0; i < def->hostdevs->len; i++) {
        dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);

        if (!h->alias) {
            h->alias = g_strdup_printf("hostdev%u", i);
            h->alias_generated = true;
        }
    }
    if (def->memballoon && !def->memballoon->alias) {
        def->memballoon->alias = g_strdup("balloon0");
        def->memballoon->alias_generated = true;
    }
    if (def->iommu && !def->iommu->alias)
        def->iommu->alias = g_strdup("iommu0");
    for (guint i = 0; i < def->memories->len; i++) {
        dmgMemoryDef *m = g_ptr_array_index(def->memories, i);
        unsigned idx = counts[m->model]++;

        if (!m->alias) {
            m->alias = g_strdup_printf("%s%u", mem_prefix[m->model], idx);
            m->alias_generated = true;
        }
    }
}

dmgHostdevDef *
dmg_domain_def_find_hostdev(const dmgDomainDef *def, const char *alias)
{
    for (guint i = 0; i < def->hostdevs->len; i++) {
        dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);

        if (g_strcmp0(h->alias, alias) == 0)
            return h;
    }
    return NULL;
}

char *
dmg_hostdev_source_string(const dmgHostdevDef *h)
{
    if (h->type == DMG_HOSTDEV_SUBSYS_MDEV)
        return g_strdup(h->mdev_uuid);
    if (h->type == DMG_HOSTDEV_SUBSYS_PCI)
        return g_strdup_printf("%04x:%02x:%02x.%x", h->source.domain,
                               h->source.bus, h->source.slot,
                               h->source.function);
    return g_strdup(dmgHostdevSubsysTypeToString(h->type));
}

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
static int
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
static int
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

/* ------------------------------------------------------------------ */
/* The document                                                        */

static dmgDomainDef *
dmg_domain_def_parse_root(const dmgXmlCtx *ctx, xmlNodePtr root, GError **error)
{
    g_autoptr(dmgDomainDef) def = dmg_domain_def_new();

    if (!dmg_xml_is(root, NULL, "domain")) {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_XML,
                    _("%s:%ld: the root element is <%s>, expected a libvirt <domain>"),
                    ctx->source, root ? xmlGetLineNo(root) : 0L,
                    root ? (const char *)root->name : "");
        return NULL;
    }
    if (dmg_domain_header_parse(ctx, root, def, error) < 0 ||
        dmg_domain_memory_parse(ctx, root, def, error) < 0 ||
        dmg_devices_parse(ctx, dmg_xml_child(root, "devices"), def, error) < 0)
        return NULL;
    dmg_domain_assign_aliases(def);
    if (dmg_metadata_parse(ctx, root, def, error) < 0 ||
        dmg_qemu_override_parse(ctx, root, def, error) < 0)
        return NULL;
    return g_steal_pointer(&def);
}

dmgDomainDef *
dmg_domain_def_parse_string(const char *xml, gsize len, const char *source,
                            GError **error)
{
    dmgXmlCtx ctx = { .source = source ? source : "<domain>" };
    xmlDocPtr doc = dmg_xml_read(xml, len, ctx.source, dmg_device_elements, error);
    dmgDomainDef *def;

    if (!doc)
        return NULL;
    def = dmg_domain_def_parse_root(&ctx, xmlDocGetRootElement(doc), error);
    xmlFreeDoc(doc);
    return def;
}

dmgDomainDef *
dmg_domain_def_parse_file(const char *path, GError **error)
{
    g_autofree char *xml = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &xml, &len, error))
        return NULL;
    return dmg_domain_def_parse_string(xml, len, path, error);
}

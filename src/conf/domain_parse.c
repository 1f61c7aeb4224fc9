/*
 * domain_parse.c: parse the parts of a libvirt <domain> that matter for DMA,
 * ballooning and migration.  Unknown elements are ignored, as libvirt's
 * parser ignores them; invalid values of known ones are errors.
 *
 * This is the document and the dispatch of <devices>, after libvirt's
 * virDomainDefParseNode() (src/conf/domain_conf.c); the elements are parsed
 * in hostdev_conf.c, memory_conf.c and device_conf.c.
 */
#include "dmg_file.h"
#include "domain_conf_priv.h"

#include <string.h>

#include "dmg_i18n.h"
#include "xml_read.h"

/* The children of <devices> that dmg_devices_parse() and
 * dmg_interface_hostdevs_parse() read (<graphics> only counted, for an
 * mdev's display).  The reader drops every other device (consoles,
 * channels, inputs, sound: most of a real domain) before libxml2 builds
 * nodes for it; of a <disk> it keeps only the chain of <backingStore>s,
 * whose types say whether the disk is NVMe, and of the controllers only
 * the PCI ones dmg_controller_parse() reads, with their <address>. */
static const dmgKeepDevice dmg_device_elements[] = {
    { .name = "emulator" }, { .name = "hostdev" }, { .name = "interface" },
    { .name = "memballoon" }, { .name = "iommu" }, { .name = "memory" },
    { .name = "graphics" },
    { .name = "disk", .only_child = "backingStore" },
    { .name = "controller", .only_child = "address", .wanted = dmg_controller_wanted },
    { .name = NULL },
};

/* Longer than any path the kernel resolves (PATH_MAX). */
#define DMG_EMULATOR_MAX 4096

static dmgDomainDef *
dmg_domain_def_new(void)
{
    dmgDomainDef *def = g_new0(dmgDomainDef, 1);

    def->hostdevs = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_hostdev_def_free);
    def->memories = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_memory_def_free);
    def->parse_warnings = g_ptr_array_new_with_free_func(g_free);
    def->numa_cells = g_array_new(FALSE, FALSE, sizeof(guint64));
    def->hugepage_list = g_array_new(FALSE, TRUE, sizeof(dmgHugepageDef));
    g_array_set_clear_func(def->hugepage_list, dmg_hugepage_def_clear);
    def->numa_cpus = g_ptr_array_new_with_free_func(g_free);
    def->vdpa_interfaces = g_ptr_array_new_null_terminated(0, g_free, TRUE);
    def->pci_controllers = g_array_new(FALSE, FALSE, sizeof(dmgPCIControllerDef));
    def->vcpus = 1;
    return def;
}

/* ------------------------------------------------------------------ */
/* <devices>                                                           */

/* <emulator>: the QEMU binary libvirt runs for the domain.  As libvirt
 * (string(./devices/emulator[1])), the first one counts and an empty one
 * is none. */
static int
dmg_emulator_parse(const dmgXmlCtx *ctx, xmlNodePtr node, dmgDomainDef *def,
                   GError **error)
{
    g_autofree char *path = NULL;

    if (def->emulator)
        return 0;
    path = dmg_xml_text(node);
    if (strlen(path) > DMG_EMULATOR_MAX) {
        dmg_xml_error_invalid(ctx, node, NULL, path, _("a path of at most 4096 bytes"), error);
        return -1;
    }
    if (*path)
        def->emulator = g_steal_pointer(&path);
    return 0;
}

static int
dmg_devices_parse(const dmgXmlCtx *ctx, xmlNodePtr devices, dmgDomainDef *def,
                  GError **error)
{
    unsigned nets = 0;

    if (dmg_interface_hostdevs_parse(ctx, devices, def, error) < 0)
        return -1;
    /* <interface type='vdpa'>: a vhost-vdpa netdev, which pins guest
     * memory as VFIO does.  libvirt names interfaces that are not
     * hostdevs netN, counting them in order (qemuAssignDeviceNetAlias()). */
    for (xmlNodePtr cur = devices ? devices->children : NULL; cur; cur = cur->next) {
        g_autofree char *type = NULL;
        char *alias;

        if (!dmg_xml_is(cur, NULL, "interface") ||
            g_strcmp0((type = dmg_xml_prop(cur, "type")), "hostdev") == 0)
            continue;
        /* A user alias (ua-...) takes no number. */
        alias = dmg_parse_alias(cur);
        if (!alias)
            alias = g_strdup_printf("net%u", nets++);
        if (g_strcmp0(type, "vdpa") == 0)
            g_ptr_array_add(def->vdpa_interfaces, alias);
        else
            g_free(alias);
    }
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
        } else if (dmg_xml_is(cur, NULL, "graphics")) {
            def->graphics++;
        } else if (dmg_xml_is(cur, NULL, "emulator")) {
            ret = dmg_emulator_parse(ctx, cur, def, error);
        } else if (dmg_xml_is(cur, NULL, "disk")) {
            ret = dmg_disk_parse(ctx, cur, def, error);
        } else if (dmg_xml_is(cur, NULL, "controller")) {
            ret = dmg_controller_parse(ctx, cur, def, error);
        }
        if (ret < 0)
            return -1;
    }
    dmg_controllers_assign_indexes(def);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The domain header                                                   */

static int
dmg_launch_security_from_string(const char *s)
{
    int v = dmgLaunchSecurityTypeFromString(s);

    return v == DMG_LAUNCH_SECURITY_NONE ? -1 : v;
}

static int
dmg_domain_header_parse(const dmgXmlCtx *ctx, xmlNodePtr root,
                        dmgDomainDef *def, GError **error)
{
    xmlNodePtr name = dmg_xml_child(root, "name");
    xmlNodePtr uuid = dmg_xml_child(root, "uuid");
    xmlNodePtr ostype = dmg_xml_child(dmg_xml_child(root, "os"), "type");
    xmlNodePtr ioapic = dmg_xml_child(dmg_xml_child(root, "features"), "ioapic");
    xmlNodePtr launch = dmg_xml_child(root, "launchSecurity");

    def->acpi = dmg_xml_child(dmg_xml_child(root, "features"), "acpi") != NULL;
    g_autofree char *type = dmg_xml_prop(root, "type");

    if (!type) {
        dmg_xml_error_missing(ctx, root, _("the attribute 'type' (kvm, qemu or hvf)"),
                              error);
        return -1;
    }
    if ((def->virt_type = dmgDomainVirtTypeFromString(type)) < 0) {
        g_autofree char *shown = dmg_xml_value_for_message(type);

        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_UNSUPPORTED,
                    _("%s:%ld: domain type '%s' is not a QEMU domain: dmaguard analyzes <domain type='kvm'>, 'qemu' and 'hvf'"),
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
    /* "" is not a type libvirt takes: start the lookup at 'sev'. */
    if (launch &&
        dmg_xml_prop_enum(ctx, launch, "type", dmg_launch_security_from_string,
                          _("'sev' or 's390-pv'"), &def->launch_security, error) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Aliases                                                             */

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

        h->index = i;
        if (!h->alias) {
            h->alias = g_strdup_printf("hostdev%u", i);
            h->alias_generated = true;
        }
    }
    /* Aliases changed: the lookup index is rebuilt on its next use. */
    g_clear_pointer(&def->hostdev_index, g_hash_table_unref);
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

    if (!dmg_file_read(path, DMG_FILE_MAX_XML, &xml, &len, error))
        return NULL;
    return dmg_domain_def_parse_string(xml, len, path, error);
}

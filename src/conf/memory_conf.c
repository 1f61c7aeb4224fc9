/*
 * memory_conf.c: what decides how guest memory is sized, backed, given
 * back and translated for DMA: <memory>, <currentMemory>, <maxMemory>,
 * <memtune>, <memoryBacking>, and the devices <memballoon>, <iommu> and
 * <memory model=...>, after libvirt's src/conf/domain_conf.c
 * (virDomainDefParseMemory, virDomainMemballoonDefParseXML,
 * virDomainIOMMUDefParseXML, virDomainMemoryDefParseXML).
 */
#include "domain_conf_priv.h"

#include "dmg_i18n.h"

void
dmg_memory_def_free(dmgMemoryDef *m)
{
    if (!m)
        return;
    g_free(m->alias);
    g_free(m);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgMemoryDef, dmg_memory_def_free);

/* ------------------------------------------------------------------ */
/* <memballoon>, <iommu>, <memory model=...>                           */

int
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
    if (dmg_parse_guest_address(ctx, node, &b->guest, error) < 0 ||
        dmg_parse_virtio_options(ctx, dmg_xml_child(node, "driver"), &b->virtio, error) < 0)
        return -1;
    b->alias = dmg_parse_alias(node);
    def->memballoon = g_steal_pointer(&b);
    return 0;
}

int
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
    if (dmg_parse_guest_address(ctx, node, &io->guest, error) < 0)
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

int
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
         dmg_xml_scaled_value(ctx, pagesize, 1024, &m->source_pagesize, error) < 0) ||
        dmg_parse_guest_address(ctx, node, &m->guest, error) < 0)
        return -1;
    m->alias = dmg_parse_alias(node);
    g_ptr_array_add(def->memories, g_steal_pointer(&m));
    return 0;
}

static gboolean dmg_bitmap_parse(const char *text, guint max, guint8 *set);

/* ------------------------------------------------------------------ */
/* The guest's memory                                                  */

static int
dmg_memory_backing_parse(const dmgXmlCtx *ctx, xmlNodePtr mb, dmgDomainDef *def,
                         GError **error)
{
    xmlNodePtr huge = dmg_xml_child(mb, "hugepages");

    def->locked = dmg_xml_child(mb, "locked") != NULL;
    def->hugepages = huge != NULL;
    /* Every <page size= unit= nodeset=/>, for virDomainDefMemtuneValidate():
     * its size and the guest NUMA nodes of its nodeset
     * (virDomainHugepagesParseXML()).  The first one's size backs the
     * guest's memory. */
    for (xmlNodePtr p = huge ? huge->children : NULL; p; p = p->next) {
        g_autofree char *nodeset = NULL;
        dmgHugepageDef hp = { 0 };

        if (!dmg_xml_is(p, NULL, "page"))
            continue;
        if (def->hugepage_list->len >= DMG_DOMAIN_MAX_NUMA_CELLS) {
            dmg_xml_error_invalid(ctx, p, NULL, "page", _("at most 4096 <page> elements"), error);
            return -1;
        }
        if (dmg_xml_prop_scaled(ctx, p, "size", "unit", 1024, &hp.size, error) < 0)
            return -1;
        if ((nodeset = dmg_xml_prop(p, "nodeset"))) {
            hp.nodes = g_new0(guint8, DMG_DOMAIN_MAX_NUMA_CELLS);
            if (!dmg_bitmap_parse(nodeset, DMG_DOMAIN_MAX_NUMA_CELLS - 1, hp.nodes)) {
                g_free(hp.nodes);
                dmg_xml_error_invalid(ctx, p, "nodeset", nodeset,
                                      _("a list of guest NUMA node numbers and ranges such as '0-1'"), error);
                return -1;
            }
        }
        if (!def->hugepage_list->len)
            def->hugepage_size = hp.size;
        g_array_append_val(def->hugepage_list, hp);
    }
    return 0;
}

#define DMG_MAX_VCPU_ID 16384

/* A cell's cpus, in libvirt's bitmap syntax (virBitmapParse(): "0-3,^2,8"),
 * formatted back as libvirt does (virBitmapFormat(): "0-1,3,8"); NULL and
 * an error when it is not one. */
/* libvirt's bitmap syntax (virBitmapParse(): "0-3,^2,8") into @set of
 * @max + 1 entries; FALSE when @text is not one. */
static gboolean
dmg_bitmap_parse(const char *text, guint max, guint8 *set)
{
    g_auto(GStrv) items = g_strsplit(text, ",", -1);

    for (char **it = items; *it; it++) {
        char *item = g_strstrip(*it);
        bool neg = item[0] == '^';
        guint64 lo, hi;
        g_auto(GStrv) ends = g_strsplit(item + neg, "-", 2);

        if (!ends[0] ||
            !g_ascii_string_to_unsigned(ends[0], 10, 0, max, &lo, NULL) ||
            (ends[1] && !g_ascii_string_to_unsigned(ends[1], 10, lo, max, &hi, NULL)) ||
            (neg && ends[1]))
            return FALSE;
        if (!ends[1])
            hi = lo;
        for (guint64 v = lo; v <= hi; v++)
            set[v] = !neg;
    }
    return TRUE;
}

static char *
dmg_cpus_parse(const dmgXmlCtx *ctx, xmlNodePtr cell, const char *text, GError **error)
{
    g_autofree guint8 *set = g_new0(guint8, DMG_MAX_VCPU_ID + 1);
    g_autoptr(GString) out = g_string_new(NULL);

    if (!dmg_bitmap_parse(text, DMG_MAX_VCPU_ID, set)) {
        dmg_xml_error_invalid(ctx, cell, "cpus", text,
                              _("a list of vCPU numbers and ranges such as '0-3,^2,8'"), error);
        return NULL;
    }
    for (guint v = 0; v <= DMG_MAX_VCPU_ID; v++) {
        guint end = v;

        if (!set[v])
            continue;
        while (end < DMG_MAX_VCPU_ID && set[end + 1])
            end++;
        g_string_append_printf(out, "%s%u", out->len ? "," : "", v);
        if (end > v)
            g_string_append_printf(out, "-%u", end);
        v = end;
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

/* <cpu><numa><cell memory='N' unit='KiB'/>...: each guest NUMA node's
 * size (virDomainNumaDefParseXML()).  libvirt requires 'memory'; the
 * cells come in document order (libvirt requires ids 0..N-1 in order). */
static int
dmg_numa_parse(const dmgXmlCtx *ctx, xmlNodePtr numa, dmgDomainDef *def, GError **error)
{
    for (xmlNodePtr cell = numa ? numa->children : NULL; cell; cell = cell->next) {
        guint64 bytes = 0;
        int found;

        if (!dmg_xml_is(cell, NULL, "cell"))
            continue;
        if (def->numa_cells->len >= DMG_DOMAIN_MAX_NUMA_CELLS) {
            g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_INVALID,
                        _("%s:%ld: more than %u NUMA cells; dmaguard reads at most that many"),
                        ctx->source, xmlGetLineNo(cell), DMG_DOMAIN_MAX_NUMA_CELLS);
            return -1;
        }
        found = dmg_xml_prop_scaled(ctx, cell, "memory", "unit", 1024, &bytes, error);
        if (found < 0)
            return -1;
        if (found == 0) {
            dmg_xml_error_missing(ctx, cell, _("the attribute 'memory' of the NUMA <cell>"), error);
            return -1;
        }
        g_array_append_val(def->numa_cells, bytes);
        {
            g_autofree char *cpus = dmg_xml_prop(cell, "cpus");
            char *fmt = cpus ? dmg_cpus_parse(ctx, cell, cpus, error) : g_strdup("");

            if (!fmt)
                return -1;
            g_ptr_array_add(def->numa_cpus, fmt);
        }
    }
    return 0;
}

/* <cpu><topology sockets='S' dies='D' cores='C' threads='T'/>: libvirt
 * requires all but dies (default 1) when the element is there
 * (virCPUDefParseXML()). */
static int
dmg_topology_parse(const dmgXmlCtx *ctx, xmlNodePtr topo, dmgDomainDef *def, GError **error)
{
    static const char *const need[] = { "sockets", "cores", "threads" };
    unsigned *slots[] = { &def->cpu_sockets, &def->cpu_cores, &def->cpu_threads };

    if (!topo)
        return 0;
    def->cpu_dies = 1;
    if (dmg_xml_prop_uint(ctx, topo, "dies", 10, 16384, &def->cpu_dies, error) < 0)
        return -1;
    for (gsize i = 0; i < G_N_ELEMENTS(need); i++) {
        int found = dmg_xml_prop_uint(ctx, topo, need[i], 10, 16384, slots[i], error);

        if (found < 0)
            return -1;
        if (found == 0 || *slots[i] == 0) {
            g_autofree char *what = g_strdup_printf(_("a non-zero '%s' attribute of <topology>"), need[i]);

            dmg_xml_error_missing(ctx, topo, what, error);
            return -1;
        }
    }
    return 0;
}

int
dmg_domain_memory_parse(const dmgXmlCtx *ctx, xmlNodePtr root,
                        dmgDomainDef *def, GError **error)
{
    xmlNodePtr mem = dmg_xml_child(root, "memory");
    xmlNodePtr cur = dmg_xml_child(root, "currentMemory");
    xmlNodePtr max = dmg_xml_child(root, "maxMemory");
    xmlNodePtr vcpu = dmg_xml_child(root, "vcpu");
    xmlNodePtr hard = dmg_xml_child(dmg_xml_child(root, "memtune"), "hard_limit");
    xmlNodePtr mb = dmg_xml_child(root, "memoryBacking");

    if (mem && dmg_xml_scaled_value(ctx, mem, 1024, &def->memory, error) < 0)
        return -1;
    if (
        (cur && dmg_xml_scaled_value(ctx, cur, 1024, &def->current_memory, error) < 0) ||
        (max && dmg_xml_scaled_value(ctx, max, 1024, &def->max_memory, error) < 0) ||
        (max && dmg_xml_prop_uint(ctx, max, "slots", 10, 4096,
                                  &def->max_memory_slots, error) < 0) ||
        (vcpu && dmg_xml_uint_text(ctx, vcpu, 16384, &def->vcpus, error) < 0) ||
        (vcpu && dmg_xml_prop_uint(ctx, vcpu, "current", 10, 16384, &def->vcpus_current, error) < 0) ||
        dmg_topology_parse(ctx, dmg_xml_child(dmg_xml_child(root, "cpu"), "topology"), def, error) < 0 ||
        (hard && dmg_xml_scaled_value(ctx, hard, 1024, &def->hard_limit, error) < 0) ||
        (mb && dmg_memory_backing_parse(ctx, mb, def, error) < 0) ||
        dmg_numa_parse(ctx, dmg_xml_child(dmg_xml_child(root, "cpu"), "numa"), def, error) < 0)
        return -1;
    /* virDomainDefPostParseMemory() (src/conf/domain_postparse.c): the
     * NUMA cells give the size when <memory> does not; neither is an
     * error.  (qemu_postparse.c sizes the initial memory from the cells
     * in any case.) */
    if (!mem) {
        for (guint i = 0; i < def->numa_cells->len; i++)
            def->memory += g_array_index(def->numa_cells, guint64, i);
        if (!def->memory) {
            dmg_xml_error_missing(ctx, root, _("<memory>, the guest's memory size (or <cpu><numa> cells with theirs)"),
                                  error);
            return -1;
        }
    }
    /* virDomainDefPostParseMemtune(): without guest NUMA, a nodeset of
     * only node 0 means the default page. */
    for (guint i = 0; !def->numa_cells->len && i < def->hugepage_list->len; i++) {
        dmgHugepageDef *hp = &g_array_index(def->hugepage_list, dmgHugepageDef, i);
        bool beyond_zero = false;

        for (guint n = 1; hp->nodes && n < DMG_DOMAIN_MAX_NUMA_CELLS; n++)
            beyond_zero |= hp->nodes[n];
        if (hp->nodes && !beyond_zero)
            g_clear_pointer(&hp->nodes, g_free);
    }
    if (!cur)
        def->current_memory = def->memory;
    def->hard_limit_set = hard != NULL;
    return 0;
}

/*
 * qemu_command.c: build QEMU's arguments from the realized machine.
 *
 * Nothing here decides a rule: the devices, their settings and the errors
 * come from the VMM model.  This file only knows QEMU's spelling, and asks
 * the version table (qemu_profile.c) whether a property exists before it
 * emits one, refusing the domain when the XML asks for a missing one, as
 * libvirt refuses a domain whose QEMU lacks a capability.
 */
#include "qemu_command.h"

#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "virtio/balloon.h"
#include "dmg_i18n.h"
#include "virtio/memory_device.h"
#include "vfio/vfio.h"
#include "viommu.h"

G_DEFINE_QUARK(dmg-qemu-command-error-quark, dmg_qemu_command_error)

#define DMG_HUGEPAGE_PATH "/dev/hugepages/libvirt/qemu"

typedef struct {
    vmm_machine *m;
    const dmgQemuProfile *qemu;
    GPtrArray *lines;
    bool machine_unsupported;
} cmd_ctx;

/* ------------------------------------------------------------------ */
/* Lines and values                                                    */

static bool
cmd_needs_quote(const char *value)
{
    for (const char *p = value; *p; p++) {
        if (!g_ascii_isalnum(*p) && !strchr("_,=.:/@%+-", *p))
            return true;
    }
    return false;
}

static void
cmd_add(cmd_ctx *c, const char *opt, const char *value)
{
    g_autofree char *quoted = cmd_needs_quote(value) ? g_shell_quote(value) : g_strdup(value);

    g_ptr_array_add(c->lines, g_strdup_printf("%s %s", opt, quoted));
}

static void
cmd_add_json(cmd_ctx *c, const char *opt, JsonBuilder *b)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *json = NULL;

    json_generator_set_root(gen, root);
    json = json_generator_to_data(gen, NULL);
    cmd_add(c, opt, json);
}

/* Does @driver have @prop in this QEMU?  If not, the domain is refused:
 * the XML asked for it. */
static bool
cmd_has(cmd_ctx *c, const char *device, const char *driver, const char *prop)
{
    g_autofree char *why = NULL;
    g_autofree char *ver = NULL;
    g_autofree char *msg = NULL;

    if (dmg_qemu_profile_has_property(c->qemu, driver, prop, &why))
        return true;
    ver = dmg_qemu_version_string(c->qemu->version);
    msg = g_strdup_printf(_("%s: unsupported configuration: %s property '%s' is not supported by QEMU %s (it needs %s); remove the setting or choose a QEMU that has it"),
                          device, driver, prop, ver, why);
    vmm_findings__error(&c->m->findings, "qemu-property-missing", device, msg);
    return false;
}

static void
cmd_refuse_setting(cmd_ctx *c, const char *device, const char *driver,
                   const char *setting)
{
    g_autofree char *msg = g_strdup_printf(_("%s: unsupported configuration: %s has no '%s' setting; remove it from <iommu><driver>"),
                                           device, driver, setting);

    vmm_findings__error(&c->m->findings, "qemu-setting-unsupported", device, msg);
}

static JsonBuilder *
cmd_device_begin(const char *driver)
{
    JsonBuilder *b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "driver");
    json_builder_add_string_value(b, driver);
    return b;
}

static void
cmd_str(JsonBuilder *b, const char *name, const char *val)
{
    json_builder_set_member_name(b, name);
    json_builder_add_string_value(b, val);
}

static void
cmd_bool(JsonBuilder *b, const char *name, bool val)
{
    json_builder_set_member_name(b, name);
    json_builder_add_boolean_value(b, val);
}

static void
cmd_int(JsonBuilder *b, const char *name, gint64 val)
{
    json_builder_set_member_name(b, name);
    json_builder_add_int_value(b, val);
}

/* libvirt's qemuBuildDeviceAddressPCIProps(): bus 0 is the root bus. */
static void
cmd_pci_address(cmd_ctx *c, JsonBuilder *b, const vmm_pci_addr *a)
{
    g_autofree char *bus = NULL;
    g_autofree char *addr = NULL;

    if (!a->present)
        return;
    if (a->bus == 0)
        bus = g_strdup(c->m->cfg.type == VMM_MACHINE_Q35 ? "pcie.0" : "pci.0");
    else
        bus = g_strdup_printf("pci.%u", a->bus);
    addr = a->function ? g_strdup_printf("0x%x.0x%x", a->slot, a->function)
                       : g_strdup_printf("0x%x", a->slot);
    cmd_str(b, "bus", bus);
    cmd_str(b, "addr", addr);
}

static void
cmd_device_end(cmd_ctx *c, JsonBuilder *b)
{
    json_builder_end_object(b);
    cmd_add_json(c, "-device", b);
}

/* ------------------------------------------------------------------ */
/* Machine and memory                                                  */

static const char *
cmd_machine_name(const vmm_machine *m)
{
    switch (m->cfg.type) {
    case VMM_MACHINE_PC:
        return "pc";
    case VMM_MACHINE_Q35:
        return "q35";
    case VMM_MACHINE_VIRT:
        return "virt";
    case VMM_MACHINE_S390_CCW:
        return "s390-ccw-virtio";
    case VMM_MACHINE_OTHER:
        break;
    }
    return NULL;
}

static void
cmd_machine(cmd_ctx *c)
{
    vmm_machine *m = c->m;
    const char *name = cmd_machine_name(m);
    g_autoptr(GString) opt = NULL;

    /* qemuBuildMachineCommandLine(): the type as the domain names it, a
     * versioned one ("pc-q35-7.2") kept as it is; any other machine
     * (pseries, vexpress-a9, ppce500) too, with the devices this model
     * emits on the transport libvirt gives them (qemu_postparse.c). */
    if (m->cfg.machine_name)
        name = m->cfg.machine_name;
    if (!name) {
        c->machine_unsupported = true;
        return;
    }
    opt = g_string_new(name);
    /* Interrupt remapping lives in QEMU's IOAPIC (libvirt: ioapic driver='qemu'). */
    if (m->cfg.split_irqchip)
        g_string_append(opt, ",kernel_irqchip=split");
    if (m->iommu && m->iommu->cfg.model == VIOMMU_SMMUV3)
        g_string_append(opt, ",iommu=smmuv3");
    cmd_add(c, "-machine", opt->str);
}

static void
cmd_memory(cmd_ctx *c)
{
    const vmm_machine_config *cfg = &c->m->cfg;
    g_autoptr(GString) opt = g_string_new(NULL);

    g_string_append_printf(opt, "size=%" PRIu64 "k", (guint64)cfg->ram_size / 1024);
    if (cfg->maxmem)
        g_string_append_printf(opt, ",slots=%u,maxmem=%" PRIu64 "k",
                               cfg->ram_slots, (guint64)cfg->maxmem / 1024);
    cmd_add(c, "-m", opt->str);
    if (cfg->mem_locked)
        cmd_add(c, "-overcommit", "mem-lock=on");
}

/* qemuBuildSmpCommandLine() (libvirt 9.0): the vCPUs at start, maxcpus
 * when fewer than the maximum, and the topology: the domain's (with dies,
 * which every QEMU dmaguard knows takes: QEMU_CAPS_SMP_DIES, x86 since
 * 4.1), else one socket per vCPU. */
static void
cmd_smp(cmd_ctx *c)
{
    const vmm_machine_config *cfg = &c->m->cfg;
    g_autoptr(GString) opt = g_string_new(NULL);

    g_string_append_printf(opt, "%u", cfg->smp_cpus);
    if (cfg->smp_cpus != cfg->smp_maxcpus)
        g_string_append_printf(opt, ",maxcpus=%u", cfg->smp_maxcpus);
    if (cfg->smp_sockets)
        g_string_append_printf(opt, ",sockets=%u,dies=%u,cores=%u,threads=%u",
                               cfg->smp_sockets, cfg->smp_dies, cfg->smp_cores,
                               cfg->smp_threads);
    else
        g_string_append_printf(opt, ",sockets=%u,cores=1,threads=1", cfg->smp_maxcpus);
    cmd_add(c, "-smp", opt->str);
}

/* qemuBuildNumaCommandLine() (libvirt 9.0, with QEMU's memdev): per guest
 * node a memory backend "ram-nodeN" of its size (a hugepage file,
 * preallocated, when the domain is backed by huge pages), then -numa with
 * its vCPU ranges each as a cpus= of its own. */
static void
cmd_numa(cmd_ctx *c)
{
    const vmm_machine_config *cfg = &c->m->cfg;

    for (unsigned i = 0; i < cfg->nr_numa; i++) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autofree char *id = g_strdup_printf("ram-node%u", i);
        g_autoptr(GString) opt = g_string_new(NULL);
        g_auto(GStrv) ranges = g_strsplit(cfg->numa_cpus[i], ",", -1);

        json_builder_begin_object(b);
        if (cfg->backend_page_size) {
            cmd_str(b, "qom-type", "memory-backend-file");
            cmd_str(b, "id", id);
            cmd_str(b, "mem-path", DMG_HUGEPAGE_PATH);
            cmd_bool(b, "prealloc", true);
        } else {
            cmd_str(b, "qom-type", "memory-backend-ram");
            cmd_str(b, "id", id);
        }
        cmd_int(b, "size", (gint64)cfg->numa_sizes[i]);
        json_builder_end_object(b);
        cmd_add_json(c, "-object", b);
        g_string_append_printf(opt, "node,nodeid=%u", i);
        for (char **r = ranges; *r && **r; r++)
            g_string_append_printf(opt, ",cpus=%s", *r);
        g_string_append_printf(opt, ",memdev=%s", id);
        cmd_add(c, "-numa", opt->str);
    }
}

/* Each memory device gets its own backend, named "mem" + alias as
 * libvirt's qemuBuildMemoryDeviceProps does. */
static void
cmd_memory_backend(cmd_ctx *c, const memory_device *md)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *id = g_strdup_printf("mem%s", md->alias);

    json_builder_begin_object(b);
    if (md->page_size) {
        cmd_str(b, "qom-type", "memory-backend-file");
        cmd_str(b, "id", id);
        cmd_str(b, "mem-path", DMG_HUGEPAGE_PATH);
    } else {
        cmd_str(b, "qom-type", "memory-backend-ram");
        cmd_str(b, "id", id);
    }
    cmd_int(b, "size", (gint64)md->cfg.size);
    json_builder_end_object(b);
    cmd_add_json(c, "-object", b);
}

static void
cmd_memory_device(cmd_ctx *c, const memory_device *md)
{
    bool virtio = md->cfg.model == MEMORY_DEVICE_VIRTIO_MEM;
    const char *driver = virtio ? "virtio-mem-pci" : "pc-dimm";
    g_autoptr(JsonBuilder) b = cmd_device_begin(driver);
    g_autofree char *memdev = g_strdup_printf("mem%s", md->alias);

    if (md->cfg.node >= 0)
        cmd_int(b, "node", md->cfg.node);
    if (virtio) {
        cmd_int(b, "block-size", (gint64)md->cfg.block_size);
        if (md->cfg.requested)
            cmd_int(b, "requested-size", (gint64)md->cfg.requested);
    }
    cmd_str(b, "memdev", memdev);
    /* qemuBuildMemoryDeviceProps(): a virtio-mem on huge pages
     * preallocates what it plugs, when this QEMU can
     * (qemuBuildMemoryGetPagesize()'s prealloc); libvirt leaves it out
     * silently otherwise. */
    if (virtio && md->page_size &&
        dmg_qemu_profile_has_property(c->qemu, driver, "prealloc", NULL))
        cmd_bool(b, "prealloc", true);
    cmd_str(b, "id", md->alias);
    if (virtio) {
        cmd_pci_address(c, b, &md->cfg.guest);
    } else if (md->cfg.slot >= 0) {
        /* qemuBuildDeviceAddressProps() for a dimm address: "u:slot",
         * "P:addr" (only a non-zero base). */
        cmd_int(b, "slot", md->cfg.slot);
        if (md->cfg.addr)
            cmd_int(b, "addr", (gint64)md->cfg.addr);
    }
    cmd_device_end(c, b);
}

/* ------------------------------------------------------------------ */
/* vIOMMU                                                              */

static void
cmd_iommu_switch(cmd_ctx *c, JsonBuilder *b, const char *driver, vmm_switch sw,
                 const char *setting, const char *prop, bool onoffauto)
{
    if (sw == VMM_UNSET)
        return;
    if (!prop) {
        cmd_refuse_setting(c, c->m->iommu->alias, driver, setting);
        return;
    }
    if (!cmd_has(c, c->m->iommu->alias, driver, prop))
        return;
    if (onoffauto)
        cmd_str(b, prop, sw == VMM_ON ? "on" : "off");
    else
        cmd_bool(b, prop, sw == VMM_ON);
}

/* Which QEMU property each libvirt <driver> setting becomes, per model
 * (libvirt qemuBuildIOMMUCommandLine); NULL: the model has none. */
typedef struct {
    const char *driver;
    const char *intremap, *caching_mode, *eim, *iotlb, *aw_bits, *dma_translation, *pt;
} cmd_iommu_props;

static const cmd_iommu_props iommu_props[] = {
    [VIOMMU_INTEL] = { "intel-iommu", "intremap", "caching-mode", "eim", "device-iotlb",
                       "aw-bits", "dma-translation", "pt" },
    [VIOMMU_AMD] = { "amd-iommu", "intremap", NULL, NULL, "device-iotlb", NULL, NULL, "pt" },
    [VIOMMU_VIRTIO] = { "virtio-iommu-pci", NULL, NULL, NULL, NULL, "aw-bits", NULL, NULL },
    [VIOMMU_SMMUV3] = { "smmuv3", NULL, NULL, NULL, NULL, NULL, NULL, NULL },
};

static void
cmd_iommu(cmd_ctx *c)
{
    const viommu *io = c->m->iommu;
    const cmd_iommu_props *p;
    g_autoptr(JsonBuilder) b = NULL;

    if (!io)
        return;
    p = &iommu_props[io->cfg.model];
    b = cmd_device_begin(p->driver);
    cmd_str(b, "id", io->alias);
    cmd_iommu_switch(c, b, p->driver, io->cfg.intremap, "intremap", p->intremap, true);
    cmd_iommu_switch(c, b, p->driver, io->cfg.caching_mode, "caching_mode", p->caching_mode, false);
    cmd_iommu_switch(c, b, p->driver, io->cfg.eim, "eim", p->eim, true);
    cmd_iommu_switch(c, b, p->driver, io->cfg.iotlb, "iotlb", p->iotlb, false);
    if (io->cfg.aw_bits) {
        if (!p->aw_bits)
            cmd_refuse_setting(c, io->alias, p->driver, "aw_bits");
        else if (cmd_has(c, io->alias, p->driver, p->aw_bits))
            cmd_int(b, p->aw_bits, io->cfg.aw_bits);
    }
    cmd_iommu_switch(c, b, p->driver, io->cfg.dma_translation, "dma_translation",
                     p->dma_translation, false);
    cmd_iommu_switch(c, b, p->driver, io->cfg.passthrough, "passthrough", p->pt, false);
    if (io->cfg.model == VIOMMU_VIRTIO)
        cmd_pci_address(c, b, &io->cfg.guest);
    /* smmuv3 is a machine property, not a device. */
    if (io->cfg.model != VIOMMU_SMMUV3)
        cmd_device_end(c, b);
}

/* ------------------------------------------------------------------ */
/* VFIO devices and the balloon                                        */

static void
cmd_vfio_device(cmd_ctx *c, const vfio_device *dev)
{
    static const char *const drivers[] = {
        [VFIO_KIND_PCI] = "vfio-pci", [VFIO_KIND_MDEV_PCI] = "vfio-pci",
        [VFIO_KIND_CCW] = "vfio-ccw", [VFIO_KIND_AP] = "vfio-ap",
    };
    /* qemuBuildHostdevMdevModelTypeString(): ramfb needs the nohotplug
     * variant of vfio-pci. */
    const char *driver = dev->kind == VFIO_KIND_MDEV_PCI && dev->ramfb
        ? "vfio-pci-nohotplug" : drivers[dev->kind];
    g_autoptr(JsonBuilder) b = cmd_device_begin(driver);

    if (dev->kind == VFIO_KIND_PCI) {
        cmd_str(b, "host", dev->host);
    } else {
        g_autofree char *sysfsdev = g_strdup_printf("/sys/bus/mdev/devices/%s", dev->host);

        cmd_str(b, "sysfsdev", sysfsdev);
    }
    cmd_str(b, "id", dev->alias);
    /* qemuBuildHostdevMediatedDevProps(): display as given, ramfb only
     * when on. */
    if (dev->display != VMM_UNSET)
        cmd_str(b, "display", dev->display == VMM_ON ? "on" : "off");
    if (dev->ramfb)
        cmd_bool(b, "ramfb", true);
    if (dev->kind == VFIO_KIND_PCI || dev->kind == VFIO_KIND_MDEV_PCI)
        cmd_pci_address(c, b, &dev->guest);
    if (dev->balloon_allowed_prop && cmd_has(c, dev->alias, driver, "x-balloon-allowed"))
        cmd_bool(b, "x-balloon-allowed", true);
    if (dev->enable_migration != VFIO_MIGRATION_AUTO &&
        cmd_has(c, dev->alias, driver, "enable-migration"))
        cmd_str(b, "enable-migration", dev->enable_migration == VFIO_MIGRATION_ON ? "on" : "off");
    if (dev->iommu_passthrough && cmd_has(c, dev->alias, driver, "x-migration-iommu-pt"))
        cmd_bool(b, "x-migration-iommu-pt", true);
    cmd_device_end(c, b);
}

/* qemuBuildVirtioDevGetConfig(): the base name, the transport's suffix
 * (-pci, -ccw, -device for virtio-mmio), then -transitional or
 * -non-transitional, which libvirt appends on any transport although
 * only PCI has them (it reports but does not fail: QEMU then refuses
 * the unknown type). */
static char *
cmd_virtio_driver(const char *base, vmm_virtio_transport transport,
                  virtio_balloon_model model)
{
    static const char *const suffix[] = {
        [VMM_VIRTIO_PCI] = "pci", [VMM_VIRTIO_CCW] = "ccw", [VMM_VIRTIO_MMIO] = "device",
    };

    return g_strdup_printf("%s-%s%s", base, suffix[transport],
                           model == VIRTIO_BALLOON_PCI_TRANSITIONAL ? "-transitional"
                           : model == VIRTIO_BALLOON_PCI_NON_TRANSITIONAL ? "-non-transitional"
                           : "");
}

/* qemuBuildVirtioDevProps(): the virtio options right after the driver. */
static void
cmd_virtio_options(cmd_ctx *c, JsonBuilder *b, const char *device, const char *driver,
                   const vmm_virtio_options *o)
{
    const struct { vmm_switch sw; const char *prop; } opts[] = {
        { o->iommu_platform, "iommu_platform" },
        { o->ats, "ats" },
        { o->packed, "packed" },
        { o->page_per_vq, "page-per-vq" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(opts); i++) {
        if (opts[i].sw != VMM_UNSET && cmd_has(c, device, driver, opts[i].prop))
            cmd_bool(b, opts[i].prop, opts[i].sw == VMM_ON);
    }
}

/* qemuBuildMemballoonCommandLine(): driver, virtio options, id,
 * deflate-on-oom, free-page-reporting, then the address
 * (qemuBuildDeviceAddressProps(): bus/addr on PCI, devno on CCW in
 * VIR_CCW_DEVICE_ADDRESS_FMT, nothing on virtio-mmio). */
static void
cmd_balloon(cmd_ctx *c)
{
    const virtio_balloon *bal = c->m->balloon;
    g_autofree char *driver = NULL;
    g_autoptr(JsonBuilder) b = NULL;

    if (!bal)
        return;
    driver = cmd_virtio_driver("virtio-balloon", bal->cfg.transport, bal->cfg.model);
    b = cmd_device_begin(driver);
    cmd_virtio_options(c, b, bal->alias, driver, &bal->cfg.virtio);
    cmd_str(b, "id", bal->alias);
    if (bal->cfg.deflate_on_oom != VMM_UNSET && cmd_has(c, bal->alias, driver, "deflate-on-oom"))
        cmd_bool(b, "deflate-on-oom", bal->cfg.deflate_on_oom == VMM_ON);
    if (bal->cfg.free_page_reporting != VMM_UNSET &&
        cmd_has(c, bal->alias, driver, "free-page-reporting"))
        cmd_bool(b, "free-page-reporting", bal->cfg.free_page_reporting == VMM_ON);
    if (bal->cfg.transport == VMM_VIRTIO_PCI) {
        cmd_pci_address(c, b, &bal->cfg.guest);
    } else if (bal->cfg.transport == VMM_VIRTIO_CCW && bal->cfg.ccw.present) {
        g_autofree char *devno = g_strdup_printf("%x.%x.%04x", bal->cfg.ccw.cssid,
                                                 bal->cfg.ccw.ssid, bal->cfg.ccw.devno);

        cmd_str(b, "devno", devno);
    }
    cmd_device_end(c, b);
}

/* ------------------------------------------------------------------ */

/* The domain's <emulator>, as libvirt runs it; else the usual binary of
 * the architecture. */
static char *
cmd_binary(const vmm_machine *m, const dmgQemuProfile *qemu)
{
    if (qemu->emulator)
        return g_strdup(qemu->emulator);
    return g_strdup_printf("/usr/bin/qemu-system-%s", m->cfg.arch);
}

static char *
cmd_join_refusals(GPtrArray *list)
{
    g_autoptr(GString) s = g_string_new(NULL);

    for (guint i = 0; i < list->len; i++)
        g_string_append_printf(s, "%s%s", i ? "\n" : "", (char *)g_ptr_array_index(list, i));
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* QEMU would refuse the domain: every error, one per line. */
static void
cmd_refuse(vmm_machine *m, GError **error)
{
    g_autoptr(GPtrArray) msgs = g_ptr_array_new();
    g_autofree char *joined = NULL;

    for (guint i = 0; i < m->findings.errors->len; i++)
        g_ptr_array_add(msgs, ((vmm_finding *)g_ptr_array_index(m->findings.errors, i))->message);
    joined = cmd_join_refusals(msgs);
    g_set_error_literal(error, DMG_QEMU_COMMAND_ERROR, DMG_QEMU_COMMAND_ERROR_CONFIG, joined);
}

GPtrArray *
dmg_qemu_command_build(vmm_machine *m, const dmgQemuProfile *qemu, GError **error)
{
    g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
    cmd_ctx c = { .m = m, .qemu = qemu, .lines = lines };

    g_ptr_array_add(lines, cmd_binary(m, qemu));
    cmd_machine(&c);
    cmd_memory(&c);
    cmd_smp(&c);
    cmd_numa(&c);
    for (guint i = 0; i < m->memory_devices->len; i++)
        cmd_memory_backend(&c, g_ptr_array_index(m->memory_devices, i));
    /* The vIOMMU comes before the PCI devices it translates for. */
    cmd_iommu(&c);
    for (guint i = 0; i < m->memory_devices->len; i++)
        cmd_memory_device(&c, g_ptr_array_index(m->memory_devices, i));
    for (guint i = 0; i < m->devices->len; i++)
        cmd_vfio_device(&c, g_ptr_array_index(m->devices, i));
    cmd_balloon(&c);
    if (m->findings.errors->len) {
        cmd_refuse(m, error);
        return NULL;
    }
    if (c.machine_unsupported) {
        g_set_error(error, DMG_QEMU_COMMAND_ERROR, DMG_QEMU_COMMAND_ERROR_UNSUPPORTED,
                    _("unsupported configuration: the domain names no machine type and dmaguard knows no default for its architecture; add <os><type machine='...'>"));
        return NULL;
    }
    return g_steal_pointer(&lines);
}

char *
dmg_qemu_command_format(GPtrArray *lines)
{
    g_autoptr(GString) s = g_string_new(NULL);

    for (guint i = 0; i < lines->len; i++)
        g_string_append_printf(s, "%s%s", (char *)g_ptr_array_index(lines, i),
                               i + 1 < lines->len ? " \\\n" : "\n");
    return g_string_free(g_steal_pointer(&s), FALSE);
}

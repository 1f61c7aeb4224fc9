/*
 * domain_realize.c: domain XML + host profile + QEMU profile -> a realized
 * VMM machine.  Devices are realized in the order QEMU creates them:
 * accelerator, vIOMMU, memory devices, host devices, balloon.
 */
#include "domain_realize.h"

#include <string.h>
#include <unistd.h>

#include "virtio/balloon.h"
#include "dmg_i18n.h"
#include "virtio/memory_device.h"
#include "vfio/device.h"
#include "viommu.h"

#define DMG_VIRTIO_MEM_DEFAULT_BLOCK (2 * 1024 * 1024)

static vmm_machine_type
dmg_machine_type(const dmgDomainDef *def)
{
    const char *mt = def->machine;

    if (!mt) {
        /* libvirt's default for x86 is the i440fx "pc" machine. */
        if (!def->arch || g_str_has_prefix(def->arch, "x86") ||
            g_str_equal(def->arch, "i686"))
            return VMM_MACHINE_PC;
        return VMM_MACHINE_OTHER;
    }
    if (strstr(mt, "q35"))
        return VMM_MACHINE_Q35;
    if (g_str_has_prefix(mt, "pc"))
        return VMM_MACHINE_PC;
    if (g_str_has_prefix(mt, "virt"))
        return VMM_MACHINE_VIRT;
    if (g_str_has_prefix(mt, "s390-ccw"))
        return VMM_MACHINE_S390_CCW;
    return VMM_MACHINE_OTHER;
}

static vmm_switch
dmg_switch(dmgTristate t)
{
    return t == DMG_TRISTATE_ON ? VMM_ON : t == DMG_TRISTATE_OFF ? VMM_OFF : VMM_UNSET;
}

static vmm_pci_addr
dmg_pci_addr(const dmgDeviceAddress *a)
{
    const dmgPCIAddress *p = &a->pci;

    return (vmm_pci_addr){ a->type == DMG_ADDRESS_PCI && p->present,
                           p->bus, p->slot, p->function, false };
}

/* libvirt's <memory> counts memory devices too; -m size is the rest. */
static guint64
dmg_initial_memory(const dmgDomainDef *def)
{
    guint64 devices = 0;

    for (guint i = 0; i < def->memories->len; i++)
        devices += ((dmgMemoryDef *)g_ptr_array_index(def->memories, i))->size;
    return def->memory > devices ? def->memory - devices : 0;
}

static void
dmg_machine_config(const dmgDomainDef *def, const dmgHostProfile *host,
                   const dmgQemuProfile *qemu, const vfio_backend_ops *backend,
                   vmm_machine_config *cfg)
{
    *cfg = (vmm_machine_config){ 0 };
    cfg->type = dmg_machine_type(def);
    cfg->arch = def->arch;
    cfg->kvm = def->virt_type == DMG_DOMAIN_VIRT_KVM;
    /* An unknown answer (no /dev/kvm here) counts as a synchronous MMU:
     * every KVM since Linux 2.6.27 has one. */
    cfg->kvm_sync_mmu = host->kvm_sync_mmu != 0;
    cfg->kvm_nr_memslots = host->kvm_nr_memslots;
    cfg->confidential = def->launch_security == DMG_LAUNCH_SECURITY_SEV ? VMM_CONFIDENTIAL_SEV
                      : def->launch_security == DMG_LAUNCH_SECURITY_S390_PV ? VMM_CONFIDENTIAL_S390_PV
                      : VMM_CONFIDENTIAL_NONE;
    cfg->vdpa_netdevs = (const char *const *)def->vdpa_interfaces->pdata;
    cfg->machine_name = def->machine;
    cfg->smp_maxcpus = def->vcpus ? def->vcpus : 1;
    cfg->smp_cpus = def->vcpus_current && def->vcpus_current < cfg->smp_maxcpus
        ? def->vcpus_current : cfg->smp_maxcpus;
    cfg->smp_sockets = def->cpu_sockets;
    cfg->smp_dies = def->cpu_dies;
    cfg->smp_cores = def->cpu_cores;
    cfg->smp_threads = def->cpu_threads;
    cfg->nr_numa = def->numa_cells->len;
    cfg->numa_sizes = (const guint64 *)def->numa_cells->data;
    cfg->numa_cpus = (const char *const *)def->numa_cpus->pdata;
    cfg->split_irqchip = def->ioapic_driver == DMG_IOAPIC_QEMU;
    cfg->mem_locked = def->locked;
    cfg->ram_size = dmg_initial_memory(def);
    cfg->maxmem = def->max_memory;
    cfg->ram_slots = def->max_memory_slots;
    if (def->hugepages)
        cfg->backend_page_size = def->hugepage_size ? def->hugepage_size : 2 * 1024 * 1024;
    cfg->dma_entry_limit = host->dma_entry_limit;
    cfg->vfio_backend = backend;
    dmg_qemu_profile_compat(qemu, &cfg->compat);
}

static void
dmg_realize_parse_warnings(const dmgDomainDef *def, vmm_machine *m)
{
    for (guint i = 0; i < def->parse_warnings->len; i++)
        vmm_findings__warn(&m->findings, "xml-ignored", NULL,
                          g_ptr_array_index(def->parse_warnings, i));
}

static void
dmg_realize_iommu(const dmgDomainDef *def, vmm_machine *m)
{
    static const viommu_model models[DMG_IOMMU_MODEL_LAST] = {
        [DMG_IOMMU_MODEL_INTEL] = VIOMMU_INTEL,
        [DMG_IOMMU_MODEL_SMMUV3] = VIOMMU_SMMUV3,
        [DMG_IOMMU_MODEL_VIRTIO] = VIOMMU_VIRTIO,
        [DMG_IOMMU_MODEL_AMD] = VIOMMU_AMD,
    };
    const dmgIOMMUDef *io = def->iommu;
    viommu_config cfg;

    if (!io)
        return;
    cfg = (viommu_config){
        .model = models[io->model],
        .alias = io->alias,
        .intremap = dmg_switch(io->intremap),
        .caching_mode = dmg_switch(io->caching_mode),
        .eim = dmg_switch(io->eim),
        .iotlb = dmg_switch(io->iotlb),
        .aw_bits = io->aw_bits,
        .dma_translation = dmg_switch(io->dma_translation),
        .passthrough = dmg_switch(io->passthrough),
        .guest = dmg_pci_addr(&io->guest),
    };
    m->iommu = viommu__realize(m, &cfg);
}

static void
dmg_realize_memory_devices(const dmgDomainDef *def, vmm_machine *m)
{
    for (guint i = 0; i < def->memories->len; i++) {
        const dmgMemoryDef *mem = g_ptr_array_index(def->memories, i);
        g_autoptr(GError) err = NULL;
        memory_device_config cfg = {
            .alias = mem->alias,
            .size = mem->size,
            .block_size = mem->block ? mem->block : DMG_VIRTIO_MEM_DEFAULT_BLOCK,
            .requested = mem->requested,
            .node = mem->node,
            .guest = dmg_pci_addr(&mem->guest),
            /* qemuBuildMemoryGetPagesize(): the device's own <source>
             * <pagesize>, where the host's normal page size means no
             * huge pages at all. */
            .page_size = !mem->source_pagesize ? 0
                       : mem->source_pagesize == (guint64)sysconf(_SC_PAGESIZE) ? VMM_PAGE_SIZE_SMALL
                       : mem->source_pagesize,
            .slot = mem->guest.type == DMG_ADDRESS_DIMM ? (int)mem->guest.dimm.slot : -1,
            .addr = mem->guest.type == DMG_ADDRESS_DIMM ? mem->guest.dimm.base : 0,
        };

        if (mem->model == DMG_MEMORY_MODEL_DIMM)
            cfg.model = MEMORY_DEVICE_DIMM;
        else if (mem->model == DMG_MEMORY_MODEL_VIRTIO_MEM)
            cfg.model = MEMORY_DEVICE_VIRTIO_MEM;
        else
            continue;
        if (!memory_device__realize(m, &cfg, &err))
            vmm_findings__error_from(&m->findings, mem->alias, err);
    }
}

int
dmg_hostdev_group(const dmgDomainDef *def, const dmgHostdevDef *h,
                  dmgHostProfile *host)
{
    const dmgHostDevice *hd = h->type == DMG_HOSTDEV_SUBSYS_MDEV
        ? dmg_host_profile_mdev(host, h->mdev_uuid)
        : dmg_host_profile_pci(host, h->source.domain, h->source.bus,
                               h->source.slot, h->source.function);
    guint idx = h->index;

    if (hd->present && hd->iommu_group >= 0)
        return hd->iommu_group;
    /* The parser numbered it; a def built by hand is searched. */
    if (idx >= def->hostdevs->len || g_ptr_array_index(def->hostdevs, idx) != h)
        g_ptr_array_find(def->hostdevs, h, &idx);
    return -2 - (int)idx;
}

/* A property QEMU does not have makes QEMU refuse to start when it comes
 * through <qemu:override>, whatever its value; from dmaguard's metadata it
 * is the setting the device is meant to have, and without the property it
 * has no effect. */
static bool
dmg_realize_prop_available(const dmgHostdevDef *h, const dmgQemuProfile *qemu,
                           vmm_machine *m, const char *prop, int src, bool on)
{
    g_autofree char *why = NULL;
    g_autofree char *qver = dmg_qemu_version_string(qemu->version);
    g_autofree char *msg = NULL;

    if (src == DMG_PROP_SRC_NONE ||
        dmg_qemu_profile_has_property(qemu, "vfio-pci", prop, &why))
        return true;
    if (src == DMG_PROP_SRC_QEMU_OVERRIDE) {
        msg = g_strdup_printf(_("%s: <qemu:override> sets %s, but QEMU %s has no such vfio-pci property (it needs %s), so QEMU refuses to start: \"Property 'vfio-pci.%s' not found\". Remove the override"),
                              h->alias, prop, qver, why, prop);
        vmm_findings__error(&m->findings, "qemu-property-missing", h->alias, msg);
    } else if (on) {
        msg = g_strdup_printf(_("%s: metadata asks for %s, but QEMU %s lacks it (it needs %s); the setting has no effect"),
                              h->alias, prop, qver, why);
        vmm_findings__warn(&m->findings, "qemu-property-missing", h->alias, msg);
    }
    return false;
}

/* libvirt binds vfio-pci to a managed device at start; a device still on
 * its host driver (i915, nvidia) is judged as vfio-pci, with a warning. */
static const dmgDriverCaps *
dmg_realize_driver(const dmgHostdevDef *h, const dmgHostDevice *hd,
                   dmgHostProfile *host, vmm_machine *m, const char **driver)
{
    const dmgDriverCaps *caps;

    if (h->type == DMG_HOSTDEV_SUBSYS_MDEV)
        *driver = "mdev";
    else if (h->driver_model)
        *driver = h->driver_model;   /* libvirt binds this variant driver */
    else if (hd->present && hd->driver)
        *driver = hd->driver;
    else
        *driver = "vfio-pci";
    caps = dmg_host_profile_driver_caps(host, *driver);
    if (!caps && !strstr(*driver, "vfio")) {
        g_autofree char *msg = g_strdup_printf(_("%s: the host device is bound to %s, not to a VFIO driver; with managed='yes' libvirt rebinds it to vfio-pci at start, otherwise the start fails. Judged as vfio-pci"),
                                               h->alias, *driver);

        vmm_findings__warn(&m->findings, "host-driver-not-vfio", h->alias, msg);
        *driver = "vfio-pci";
        caps = dmg_host_profile_driver_caps(host, *driver);
    }
    return caps;
}

static void
dmg_realize_props(const dmgHostdevDef *h, const dmgQemuProfile *qemu,
                  vmm_machine *m, vfio_device_config *cfg)
{
    bool on;

    on = h->balloon_allowed == DMG_TRISTATE_ON;
    cfg->balloon_allowed = dmg_realize_prop_available(h, qemu, m, "x-balloon-allowed",
                                                      h->balloon_allowed_src, on) && on;
    on = h->migration_iommu_pt == DMG_TRISTATE_ON;
    cfg->iommu_passthrough = dmg_realize_prop_available(h, qemu, m, "x-migration-iommu-pt",
                                                        h->migration_iommu_pt_src, on) && on;
    cfg->enable_migration = VFIO_MIGRATION_AUTO;
    if (dmg_realize_prop_available(h, qemu, m, "enable-migration",
                                   h->enable_migration_src, true))
        cfg->enable_migration = (vfio_enable_migration)h->enable_migration;
}

/* QEMU stops at the first error; a report goes on, so the user sees every
 * problem at once.  After an error whose fix the message names, realize
 * again as QEMU would once the user applied that fix. */
static bool
dmg_realize_apply_fix(vmm_machine *m, const GError *err, vfio_device_config *cfg)
{
    if (g_error_matches(err, VMM_ERROR, VMM_ERR_BALLOON_OPTIN_NOT_MDEV)) {
        cfg->balloon_allowed = false;
        return true;
    }
    if (g_error_matches(err, VMM_ERROR, VMM_ERR_IOMMU_CACHING_MODE_REQUIRED) && m->iommu) {
        viommu__assume_caching_mode(m->iommu);
        return true;
    }
    return false;
}

static void
dmg_realize_hostdev(const dmgDomainDef *def, const dmgHostdevDef *h,
                    dmgHostProfile *host, const dmgQemuProfile *qemu,
                    vmm_machine *m)
{
    static const vfio_device_kind mdev_kinds[DMG_MDEV_MODEL_LAST] = {
        [DMG_MDEV_MODEL_VFIO_PCI] = VFIO_KIND_MDEV_PCI,
        [DMG_MDEV_MODEL_VFIO_CCW] = VFIO_KIND_CCW,
        [DMG_MDEV_MODEL_VFIO_AP] = VFIO_KIND_AP,
    };
    bool mdev = h->type == DMG_HOSTDEV_SUBSYS_MDEV;
    g_autofree char *host_name = dmg_hostdev_source_string(h);
    const dmgHostDevice *hd = mdev ? dmg_host_profile_mdev(host, h->mdev_uuid)
        : dmg_host_profile_pci(host, h->source.domain, h->source.bus,
                               h->source.slot, h->source.function);
    const dmgDriverCaps *caps;
    vfio_device_config cfg = { 0 };
    g_autoptr(GError) err = NULL;

    if (!hd->present) {
        g_autofree char *msg = host->devices_source == DMG_HOST_DEVICES_NODEDEV
            ? g_strdup_printf(_("%s: host device %s is not among the node devices of %s; it is analyzed as a singleton IOMMU group with driver vfio-pci. Check the address, or pass --sysfs for another host"),
                              h->alias, host_name, host->nodedev_uri)
            : g_strdup_printf(_("%s: host device %s is not present under %s; it is analyzed as a singleton IOMMU group with driver vfio-pci. Check the address, or pass --sysfs for another host"),
                              h->alias, host_name, host->sysfs_root);

        vmm_findings__warn(&m->findings, "device-not-on-host", h->alias, msg);
    }
    caps = dmg_realize_driver(h, hd, host, m, &cfg.driver);
    cfg.alias = h->alias;
    cfg.host = host_name;
    cfg.kind = mdev ? mdev_kinds[h->mdev_model] : VFIO_KIND_PCI;
    cfg.group = dmg_hostdev_group(def, h, host);
    dmg_realize_props(h, qemu, m, &cfg);
    cfg.failover_pair = h->teaming == DMG_TEAMING_TRANSIENT;
    cfg.caps_migration = caps && caps->migration;
    cfg.caps_dirty_tracking = caps && caps->dirty_tracking;
    cfg.caps_p2p = caps && caps->p2p;
    cfg.iommu_dirty_tracking = h->iommufd == DMG_TRISTATE_ON && host->iommu_dirty_tracking;
    cfg.guest = dmg_pci_addr(&h->guest);
    cfg.display = dmg_switch(h->display);
    cfg.ramfb = h->ramfb == DMG_TRISTATE_ON;
    while (!vfio_device__realize(m, &cfg, &err)) {
        bool retry;

        vmm_findings__error_from(&m->findings, h->alias, err);
        retry = dmg_realize_apply_fix(m, err, &cfg);
        g_clear_error(&err);
        if (!retry)
            break;
    }
}

static void
dmg_realize_balloon(const dmgDomainDef *def, vmm_machine *m)
{
    const dmgMemballoonDef *b = def->memballoon;
    virtio_balloon_config cfg;

    if (!b || b->model == DMG_MEMBALLOON_NONE || b->model == DMG_MEMBALLOON_XEN)
        return;
    cfg = (virtio_balloon_config){
        .alias = b->alias,
        .model = b->model == DMG_MEMBALLOON_VIRTIO_TRANSITIONAL ? VIRTIO_BALLOON_PCI_TRANSITIONAL
               : b->model == DMG_MEMBALLOON_VIRTIO_NON_TRANSITIONAL ? VIRTIO_BALLOON_PCI_NON_TRANSITIONAL
               : VIRTIO_BALLOON_PCI,
        .deflate_on_oom = dmg_switch(b->autodeflate),
        .free_page_reporting = dmg_switch(b->free_page_reporting),
        /* The address type qemu_postparse.c settled names the transport. */
        .transport = b->guest.type == DMG_ADDRESS_CCW ? VMM_VIRTIO_CCW
                   : b->guest.type == DMG_ADDRESS_VIRTIO_MMIO ? VMM_VIRTIO_MMIO
                   : VMM_VIRTIO_PCI,
        .guest = dmg_pci_addr(&b->guest),
        .ccw = { b->guest.ccw.present, b->guest.ccw.cssid, b->guest.ccw.ssid,
                 b->guest.ccw.devno },
        .virtio = {
            .iommu_platform = dmg_switch(b->virtio.iommu),
            .ats = dmg_switch(b->virtio.ats),
            .packed = dmg_switch(b->virtio.packed),
            .page_per_vq = dmg_switch(b->virtio.page_per_vq),
        },
    };
    /* Where libvirt puts it on PCI: the slot the XML gives, else
     * qemuDomainAssignPCIAddresses() picks a pcie-root-port on a PCI
     * Express machine (q35, ARM virt) for a modern virtio device, and
     * the root bus on pc. */
    cfg.guest.express_port = (m->cfg.type == VMM_MACHINE_Q35 || m->cfg.type == VMM_MACHINE_VIRT) &&
                             (!cfg.guest.present || cfg.guest.bus != 0);
    virtio_balloon__realize(m, &cfg);
}

vmm_machine *
dmg_domain_realize(const dmgDomainDef *def, dmgHostProfile *host,
                   const dmgQemuProfile *qemu, const vfio_backend_ops *backend)
{
    return dmg_domain_realize_on(def, host, qemu, backend, NULL);
}

vmm_machine *
dmg_domain_realize_on(const dmgDomainDef *def, dmgHostProfile *host,
                      const dmgQemuProfile *qemu, const vfio_backend_ops *backend,
                      address_space *memory)
{
    vmm_machine_config cfg;
    vmm_machine *m;

    dmg_machine_config(def, host, qemu, backend, &cfg);
    m = vmm_machine__new(&cfg);
    m->memory = memory;
    dmg_realize_parse_warnings(def, m);
    if (def->memory_align_error) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: %s; libvirt refuses to start the domain. Give sizes below 8 EiB"),
                                               def->memory_align_error);

        vmm_findings__error(&m->findings, "libvirt-memory-size", NULL, msg);
    }
    vmm_machine__init_accel(m);
    dmg_libvirt_validate_machine(def, qemu, m);
    dmg_libvirt_validate_vcpu_topology(def, qemu, m);
    dmg_libvirt_validate_memory(def, host, m);
    dmg_libvirt_validate_iommu(def, m);
    dmg_libvirt_validate_hostdevs(def, m);
    dmg_libvirt_validate_addresses(def, m);
    dmg_libvirt_validate_aliases(def, m);
    dmg_libvirt_validate_hugepages(def, m);
    dmg_libvirt_hostdev_check(def, host, m);
    dmg_libvirt_migration_check(def, host, qemu, m);
    dmg_realize_iommu(def, m);
    dmg_realize_memory_devices(def, m);
    for (guint i = 0; i < def->hostdevs->len; i++) {
        const dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);

        /* A PCI hostdev with <address type='unassigned'/> is detached
         * from its host driver but never given to QEMU
         * (qemuBuildHostdevCommandLine(), libvirt 6.0): no VFIO device,
         * so no pins and no blocker. */
        if (h->guest.type == DMG_ADDRESS_UNASSIGNED)
            continue;
        if (h->type == DMG_HOSTDEV_SUBSYS_PCI || h->type == DMG_HOSTDEV_SUBSYS_MDEV)
            dmg_realize_hostdev(def, h, host, qemu, m);
    }
    dmg_realize_balloon(def, m);
    vmm_machine__done(m);
    return m;
}

/*
 * libvirt_validate.c: what libvirt's QEMU driver validates before it ever
 * runs QEMU (src/qemu/qemu_validate.c), for the parts of a domain dmaguard
 * models.  Each rule is named after the libvirt function it mirrors and
 * reports libvirt's words: VIR_ERR_CONFIG_UNSUPPORTED, which virsh prints
 * as "unsupported configuration: ...".
 */
#include "domain_realize.h"

#include <stdio.h>
#include <string.h>

#include "dmg_i18n.h"
#include "qemu_postparse.h"

/* QEMU_MAX_VCPUS_WITHOUT_EIM (src/qemu/qemu_validate.c). */
#define DMG_MAX_VCPUS_WITHOUT_EIM 255

static bool
dmg_arch_is_x86(const char *arch)
{
    /* libvirt's default arch on this host: x86 unless the XML says. */
    return !arch || g_str_equal(arch, "x86_64") || g_str_equal(arch, "i686");
}

/* The "cpu-max" QEMU reports in query-machines for the machine type,
 * which libvirt reads into virQEMUCapsGetMachineMaxCpus(); 0 when unknown.
 * A versioned type keeps the limit of its version; an alias ("q35", "pc")
 * or no machine is the newest type of @qemu.  From hw/i386/pc_q35.c and
 * pc_piix.c, cross-checked with libvirt's caps_7.2.0/caps_8.0.0.x86_64.xml:
 *   - i440fx ("pc", "pc-i440fx-*"): 255;
 *   - q35: 255 up to pc-q35-2.7, 288 from 2.8 ("pc: q35: Bump max_cpus to
 *     288"), 1024 from 8.1 ("pc: q35: Bump max_cpus to 1024"; pc-q35-8.0
 *     keeps 288), 4096 from 9.0 ("pc: q35: Bump max_cpus to 4096 vcpus";
 *     pc-q35-8.2 keeps 1024). */
static unsigned
dmg_machine_max_cpus(const dmgDomainDef *def, const dmgQemuProfile *qemu)
{
    const char *mt = def->machine;
    unsigned major = qemu->version.major, minor = qemu->version.minor;

    if (!dmg_arch_is_x86(def->arch))
        return 0;
    if (!mt || g_str_equal(mt, "pc") || g_str_has_prefix(mt, "pc-i440fx-"))
        return 255;
    if (g_str_equal(mt, "q35")) {
        /* the alias: the newest q35 of this QEMU */
    } else if (!g_str_has_prefix(mt, "pc-q35-") ||
               sscanf(mt + strlen("pc-q35-"), "%u.%u", &major, &minor) != 2) {
        return 0;
    }
    if (major < 2 || (major == 2 && minor <= 7))
        return 255;
    if (major < 8 || (major == 8 && minor == 0))
        return 288;
    if (major < 9)
        return 1024;
    return 4096;
}

static bool
dmg_machine_is_q35(const dmgDomainDef *def)
{
    return def->machine && (g_str_equal(def->machine, "q35") ||
                            g_str_has_prefix(def->machine, "pc-q35-"));
}

/* qemuValidateDomainVCpuTopology() (libvirt 9.0): the machine type's limit,
 * then more than 255 vCPUs on x86 only on q35 and only with the IOMMU's
 * extended interrupt mode (<iommu model='intel'><driver eim='on'/>). */
void
dmg_libvirt_validate_vcpu_topology(const dmgDomainDef *def, const dmgQemuProfile *qemu,
                                   vmm_machine *m)
{
    unsigned max = dmg_machine_max_cpus(def, qemu);
    unsigned vcpus = def->vcpus ? def->vcpus : 1;

    if (max && vcpus > max) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: Maximum CPUs greater than specified machine type limit %u; the domain has %u vCPUs. Give at most %u, or a machine type that allows more"),
                                               max, vcpus, max);

        vmm_findings__error(&m->findings, "libvirt-vcpus-machine-limit", NULL, msg);
        return;
    }
    /* With QEMU_CAPS_QUERY_HOTPLUGGABLE_CPUS (QEMU 2.7, so every QEMU
     * dmaguard knows): the topology must multiply out to the maximum, and
     * on pseries, which hotplugs a core at a time, the vCPUs at start are
     * a multiple of the threads per core
     * (qemuValidateDefGetVcpuHotplugGranularity()). */
    if (def->cpu_sockets) {
        unsigned dies = def->cpu_dies ? def->cpu_dies : 1;
        guint64 topology = (guint64)def->cpu_sockets * dies * def->cpu_cores * def->cpu_threads;
        unsigned current = def->vcpus_current ? def->vcpus_current : vcpus;

        if (topology != vcpus) {
            g_autofree char *product = g_strdup_printf("%" G_GUINT64_FORMAT, topology);
            g_autofree char *msg = g_strdup_printf(_("unsupported configuration: CPU topology doesn't match maximum vcpu count; sockets, dies, cores and threads multiply to %s but <vcpu> is %u"),
                                                   product, vcpus);

            vmm_findings__error(&m->findings, "libvirt-vcpu-topology", NULL, msg);
            return;
        }
        if (def->machine && g_str_has_prefix(def->machine, "pseries") &&
            def->cpu_threads && current % def->cpu_threads) {
            g_autofree char *msg = g_strdup_printf(_("unsupported configuration: vCPUs count must be a multiple of the vCPU hotplug granularity (%u); a pseries guest plugs a whole core, so give <vcpu current=> as a multiple of %u"),
                                                   def->cpu_threads, def->cpu_threads);

            vmm_findings__error(&m->findings, "libvirt-vcpu-topology", NULL, msg);
            return;
        }
    }
    if (!dmg_arch_is_x86(def->arch) || vcpus <= DMG_MAX_VCPUS_WITHOUT_EIM)
        return;
    if (!dmg_machine_is_q35(def)) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: more than %d vCPUs are only supported on q35-based machine types; use machine='q35' with <iommu model='intel'><driver intremap='on' eim='on'/></iommu>"),
                                               DMG_MAX_VCPUS_WITHOUT_EIM);

        vmm_findings__error(&m->findings, "libvirt-vcpus-need-q35", NULL, msg);
    } else if (!def->iommu || def->iommu->eim != DMG_TRISTATE_ON) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: more than %d vCPUs require extended interrupt mode enabled on the iommu device; add <iommu model='intel'><driver intremap='on' eim='on'/></iommu> with <ioapic driver='qemu'/>"),
                                               DMG_MAX_VCPUS_WITHOUT_EIM);

        vmm_findings__error(&m->findings, "libvirt-vcpus-need-eim",
                            def->iommu ? def->iommu->alias : NULL, msg);
    }
}


/* virDomainMemoryDefValidate() (src/conf/domain_validate.c, libvirt 9.0):
 * the guest node exists; for virtio-mem, requested <= size, a block size
 * that is a power of two and at least the host's THP size
 * (virHostMemGetTHPSize(), which libvirt reads on the host that starts the
 * domain: read from the judged sysfs tree, host_profile.c; libvirt's own
 * fallback, 2 MiB, when it cannot be read), and requested a
 * multiple of it.  VIR_ERR_XML_DETAIL: virsh prints the bare message
 * (the real libvirtd in tests/libvirt-daemon.sh shows it). */
static void
dmg_libvirt_validate_memory_device(const dmgDomainDef *def, const dmgMemoryDef *mem,
                                   const dmgHostProfile *host, vmm_machine *m)
{
    /* The judged host's THP size, else libvirt's fallback. */
    const guint64 thp = host && host->thp_size ? host->thp_size : 2 * 1024 * 1024;
    g_autofree char *msg = NULL;

    if (mem->node >= 0 && def->numa_cells->len == 0) {
        vmm_findings__error(&m->findings, "libvirt-memory-numa", mem->alias,
                            _("can't add memory backend as guest has no NUMA nodes configured; add <cpu><numa><cell .../></numa></cpu> or remove <node>"));
        return;
    }
    if (mem->node >= 0 && (guint)mem->node >= def->numa_cells->len) {
        msg = g_strdup_printf(_("can't add memory backend for guest node '%d' as the guest has only '%u' NUMA nodes configured; give a <node> below %u"),
                              mem->node, def->numa_cells->len, def->numa_cells->len);
        vmm_findings__error(&m->findings, "libvirt-memory-numa", mem->alias, msg);
        return;
    }
    if (mem->model != DMG_MEMORY_MODEL_VIRTIO_MEM)
        return;
    if (mem->requested > mem->size) {
        g_autofree char *kib = g_strdup_printf("%" G_GUINT64_FORMAT, mem->size / 1024);

        msg = g_strdup_printf(_("requested size must be smaller than or equal to @size (%sKiB); lower <requested> or raise <size>"), kib);
    } else if (mem->block && (mem->block & (mem->block - 1))) {
        msg = g_strdup(_("block size must be a power of two; give <block> as 2 MiB, 4 MiB, ..."));
    } else if (mem->block && mem->block < thp) {
        g_autofree char *kib = g_strdup_printf("%" G_GUINT64_FORMAT, thp / 1024);

        msg = g_strdup_printf(_("block size too small, must be at least %sKiB; raise <block>"), kib);
    } else if (mem->block && mem->requested % mem->block) {
        msg = g_strdup(_("requested size must be an integer multiple of block size; round <requested> to a multiple of <block>"));
    }
    if (msg)
        vmm_findings__error(&m->findings, "libvirt-memory-device", mem->alias, msg);
}

/* virDomainDefPostParseMemory() (src/conf/domain_postparse.c, libvirt
 * 9.0), at define: the memory devices fit in <memory> (without NUMA
 * cells, whose total replaces <memory>), some initial memory is left,
 * <maxMemory> comes with its slots, and holds the total.
 * VIR_ERR_XML_ERROR: virsh prints "XML error: ...".  Returns false when
 * libvirt stops there. */
static bool
dmg_libvirt_post_parse_memory(const dmgDomainDef *def, guint64 hotplug, vmm_machine *m)
{
    const char *msg = NULL;

    if (!def->numa_cells->len && hotplug > def->memory)
        msg = _("XML error: Total size of memory devices exceeds the total memory size; raise <memory> or make the devices smaller");
    else if (def->memory <= hotplug)
        msg = _("XML error: Memory size must be specified via <memory> or in the <numa> configuration; give the initial memory in <memory> (with the devices) or in the NUMA cells");
    else if (!!def->max_memory != !!def->max_memory_slots)
        msg = _("XML error: both maximum memory size and memory slot count must be specified; give <maxMemory slots='N'>");
    else if (def->max_memory && def->max_memory < def->memory)
        msg = _("XML error: maximum memory size must be equal or greater than the actual memory size; raise <maxMemory> to at least <memory> with the memory devices");
    if (msg)
        vmm_findings__error(&m->findings, "libvirt-memory-size", NULL, msg);
    return msg == NULL;
}

/* qemuDomainDefValidateMemoryHotplug() and ...HotplugDevice()
 * (src/qemu/qemu_domain.c, libvirt 9.0), run by qemuValidateDomainDef():
 * memory devices need <maxMemory>; with it, a guest NUMA node (except on
 * ppc64), no more devices than slots, a target node on dimms and
 * virtio-mem when there are NUMA nodes, no hotplug of sgx-epc, and the
 * devices within <maxMemory> less the initial memory. */
void
dmg_libvirt_validate_memory(const dmgDomainDef *def, const dmgHostProfile *host,
                            vmm_machine *m)
{
    guint64 initial = 0, hotplug = 0;
    bool ppc64 = dmg_arch_is_ppc64(def->arch);
    guint nmems = def->memories->len;

    for (guint i = 0; i < nmems; i++)
        hotplug += ((dmgMemoryDef *)g_ptr_array_index(def->memories, i))->size;
    if (!dmg_libvirt_post_parse_memory(def, hotplug, m))
        return;
    hotplug = 0;
    for (guint i = 0; i < nmems; i++)
        dmg_libvirt_validate_memory_device(def, g_ptr_array_index(def->memories, i), host, m);
    /* virDomainDefHasMemoryHotplug() */
    if (!def->max_memory_slots && !def->max_memory) {
        if (nmems)
            vmm_findings__error(&m->findings, "libvirt-memory-hotplug", NULL,
                                _("unsupported configuration: cannot use/hotplug a memory device when domain 'maxMemory' is not defined; add <maxMemory slots='N' unit='GiB'>SIZE</maxMemory>"));
        return;
    }
    if (!ppc64 && def->numa_cells->len == 0) {
        vmm_findings__error(&m->findings, "libvirt-memory-hotplug", NULL,
                            _("unsupported configuration: At least one numa node has to be configured when enabling memory hotplug; add <cpu><numa><cell id='0' cpus='0-N' memory='SIZE'/></numa></cpu>"));
        return;
    }
    if (nmems > def->max_memory_slots) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: memory device count '%u' exceeds slots count '%u'; raise <maxMemory slots=...>"),
                                               nmems, def->max_memory_slots);

        vmm_findings__error(&m->findings, "libvirt-memory-hotplug", NULL, msg);
        return;
    }
    for (guint i = 0; i < nmems; i++) {
        const dmgMemoryDef *mem = g_ptr_array_index(def->memories, i);
        g_autofree char *msg = NULL;

        hotplug += mem->size;
        /* An sgx-epc is skipped at define and start ("sgx epc memory does
         * not support hotplug, skip this check"); libvirt's "hotplug is
         * not supported for the sgx-epc device" is for a device hotplugged
         * later (qemuDomainDefValidateMemoryHotplugDevice() with @mem).
         * Found by the truth test: libvirt starts such a domain. */
        if (mem->model != DMG_MEMORY_MODEL_VIRTIO_PMEM && mem->model != DMG_MEMORY_MODEL_SGX_EPC &&
            def->numa_cells->len && mem->node < 0)
            msg = g_strdup(_("unsupported configuration: target NUMA node needs to be specified for memory device; add <node> to its <target>"));
        if (msg) {
            vmm_findings__error(&m->findings, "libvirt-memory-hotplug", mem->alias, msg);
            return;
        }
    }
    /* virDomainDefGetMemoryInitial(): the NUMA total, else <memory> less
     * the devices (sizes as qemu_postparse.c aligned them). */
    for (guint i = 0; i < def->numa_cells->len; i++)
        initial += g_array_index(def->numa_cells, guint64, i);
    if (!initial)
        initial = def->memory > hotplug ? def->memory - hotplug : 0;
    if (hotplug > (def->max_memory > initial ? def->max_memory - initial : 0))
        vmm_findings__error(&m->findings, "libvirt-memory-hotplug", NULL,
                            _("unsupported configuration: memory device total size exceeds hotplug space; raise <maxMemory> or make the devices smaller"));
}

/* The IOMMU rules libvirt applies before QEMU runs, with its words:
 * virDomainDefIOMMUValidate() (src/conf/domain_validate.c): interrupt
 * remapping needs <ioapic driver='qemu'/>, and eim needs intremap, where
 * QEMU itself would turn intremap on for eim and take intremap under TCG;
 * qemuValidateDomainDeviceDefIOMMU() (src/qemu/qemu_validate.c): the
 * machine each model needs.  libvirt 9.0. */
void
dmg_libvirt_validate_iommu(const dmgDomainDef *def, vmm_machine *m)
{
    const dmgIOMMUDef *io = def->iommu;
    const char *model;
    bool q35, virt;

    if (!io)
        return;
    model = dmgIOMMUModelTypeToString(io->model);
    q35 = dmg_machine_is_q35(def);
    virt = def->machine && (g_str_equal(def->machine, "virt") || g_str_has_prefix(def->machine, "virt-"));
    if (io->intremap == DMG_TRISTATE_ON && def->ioapic_driver != DMG_IOAPIC_QEMU)
        vmm_findings__error(&m->findings, "iommu-intremap-needs-split-ioapic", io->alias,
                            _("unsupported configuration: IOMMU interrupt remapping requires split I/O APIC (ioapic driver='qemu'); add <features><ioapic driver='qemu'/></features>"));
    if (io->eim == DMG_TRISTATE_ON && io->intremap != DMG_TRISTATE_ON)
        vmm_findings__error(&m->findings, "iommu-eim-needs-intremap", io->alias,
                            _("unsupported configuration: IOMMU eim requires interrupt remapping to be enabled; set intremap='on' or remove eim='on'"));
    if ((io->model == DMG_IOMMU_MODEL_INTEL || io->model == DMG_IOMMU_MODEL_AMD) && !q35) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: IOMMU device: '%s' is only supported with Q35 machines; set <type machine='q35'>"),
                                               model);

        vmm_findings__error(&m->findings, io->model == DMG_IOMMU_MODEL_INTEL
                            ? "iommu-intel-needs-q35" : "iommu-model-needs-machine",
                            io->alias, msg);
    } else if (io->model == DMG_IOMMU_MODEL_SMMUV3 && !virt) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: IOMMU device: '%s' is only supported with ARM Virt machines; use machine type 'virt'"),
                                               model);

        vmm_findings__error(&m->findings, "iommu-model-needs-machine", io->alias, msg);
    } else if (io->model == DMG_IOMMU_MODEL_VIRTIO && !q35 && !virt) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: IOMMU device: '%s' is only supported with Q35 and ARM Virt machines; set <type machine='q35'>"),
                                               model);

        vmm_findings__error(&m->findings, "iommu-model-needs-machine", io->alias, msg);
    } else if (io->model == DMG_IOMMU_MODEL_VIRTIO && !def->acpi) {
        /* virtio-iommu describes itself to the guest in ACPI's VIOT. */
        vmm_findings__error(&m->findings, "iommu-virtio-needs-acpi", io->alias,
                            _("unsupported configuration: IOMMU device: 'virtio' requires ACPI; add <features><acpi/></features>"));
    } else if (io->model == DMG_IOMMU_MODEL_VIRTIO && io->guest.type != DMG_ADDRESS_NONE &&
               io->guest.type != DMG_ADDRESS_PCI) {
        /* virtio-iommu-pci is a PCI device (same function, libvirt 9.0). */
        vmm_findings__error(&m->findings, "libvirt-device-address", io->alias,
                            _("unsupported configuration: IOMMU device: 'virtio' needs a PCI address; remove the <address> of the <iommu> or make it type='pci'"));
    } else if (io->model == DMG_IOMMU_MODEL_VIRTIO && io->guest.type == DMG_ADDRESS_PCI &&
               io->guest.pci.present && io->guest.pci.bus != 0) {
        /* qemuDomainDeviceCalculatePCIConnectFlags(): virtio-iommu is
         * VIR_PCI_CONNECT_INTEGRATED, so virDomainPCIAddressFlagsCompatible()
         * (src/conf/domain_addr.c, libvirt 9.0) wants it on bus 0. */
        const dmgPCIAddress *a = &io->guest.pci;
        g_autofree char *msg = g_strdup_printf(_("XML error: The device at PCI address %04x:%02x:%02x.%x needs to be an integrated device (bus=0); put the <iommu> on bus 0"),
                                               a->domain, a->bus, a->slot, a->function);

        vmm_findings__error(&m->findings, "libvirt-device-address", io->alias, msg);
    }
}

/* qemuValidateDomainDef() (src/qemu/qemu_validate.c, libvirt 9.0) asks the
 * emulator's capabilities for the machine type first
 * (virQEMUCapsIsMachineSupported()): a versioned x86 type newer than the
 * QEMU judged for does not exist in it ("pc-q35-8.0" on QEMU 7.2). */
void
dmg_libvirt_validate_machine(const dmgDomainDef *def, const dmgQemuProfile *qemu,
                             vmm_machine *m)
{
    const char *mt = def->machine;
    const char *ver = NULL;
    unsigned major, minor;
    g_autofree char *msg = NULL;

    /* virQEMUCapsIsVirtTypeSupported(): Hypervisor.framework exists only
     * on macOS, and the hosts dmaguard judges run Linux. */
    if (def->virt_type == DMG_DOMAIN_VIRT_HVF) {
        msg = g_strdup_printf(_("unsupported configuration: Emulator '%s' does not support virt type 'hvf'; hvf is macOS's accelerator. Use <domain type='kvm'> (or 'qemu') on Linux"),
                              def->emulator ? def->emulator : "/usr/bin/qemu-system-x86_64");
        vmm_findings__error(&m->findings, "libvirt-virt-type-unsupported", NULL, msg);
        return;
    }
    if (!mt || !dmg_arch_is_x86(def->arch))
        return;
    if (g_str_has_prefix(mt, "pc-q35-"))
        ver = mt + strlen("pc-q35-");
    else if (g_str_has_prefix(mt, "pc-i440fx-"))
        ver = mt + strlen("pc-i440fx-");
    if (!ver || sscanf(ver, "%u.%u", &major, &minor) != 2)
        return;
    if (major < qemu->version.major ||
        (major == qemu->version.major && minor <= qemu->version.minor))
        return;
    msg = g_strdup_printf(_("unsupported configuration: Emulator '%s' does not support machine type '%s'; QEMU %u.%u knows machine types up to %u.%u. Use machine='q35' or 'pc', or a newer QEMU"),
                          def->emulator ? def->emulator : "/usr/bin/qemu-system-x86_64", mt,
                          qemu->version.major, qemu->version.minor,
                          qemu->version.major, qemu->version.minor);
    vmm_findings__error(&m->findings, "libvirt-machine-unsupported", NULL, msg);
}

/* The source of a hostdev as virDomainHostdevMatch() compares them: a
 * PCI address, an mdev UUID, or the key conf made of a USB or SCSI
 * source.  NULL: nothing to compare. */
static char *
dmg_hostdev_match_key(const dmgHostdevDef *h)
{
    if (h->type == DMG_HOSTDEV_SUBSYS_PCI && h->source.present)
        return g_strdup_printf("pci:%04x:%02x:%02x.%x", h->source.domain, h->source.bus,
                               h->source.slot, h->source.function);
    if (h->type == DMG_HOSTDEV_SUBSYS_MDEV && h->mdev_uuid)
        return g_strdup_printf("mdev:%s", h->mdev_uuid);
    return g_strdup(h->source_key);
}

/* virDomainDefHostdevValidate() (src/conf/domain_validate.c, libvirt 9.0),
 * at define: two hostdevs with the same source (virDomainHostdevMatch())
 * are refused, whatever their type.  One pass with a table, so a domain
 * with thousands of hostdevs costs no more than reading them. */
void
dmg_libvirt_validate_hostdevs(const dmgDomainDef *def, vmm_machine *m)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const dmgHostdevDef *ramfb = NULL;
    const dmgHostdevDef *vfio_ap = NULL;
    bool duplicate = false;

    for (guint i = 0; i < def->hostdevs->len; i++) {
        const dmgHostdevDef *a = g_ptr_array_index(def->hostdevs, i);
        char *key = duplicate ? NULL : dmg_hostdev_match_key(a);
        const dmgHostdevDef *first;

        if (a->type == DMG_HOSTDEV_SUBSYS_MDEV && a->ramfb == DMG_TRISTATE_ON) {
            /* virDomainDefHostdevValidate(): one ramfb per guest. */
            if (ramfb) {
                g_autofree char *msg = g_strdup_printf(_("unsupported configuration: Only one vgpu device can have 'ramfb' enabled; %s already has it: set ramfb='off' on %s"),
                                                       ramfb->alias, a->alias);

                vmm_findings__error(&m->findings, "libvirt-mdev-display", a->alias, msg);
            }
            ramfb = a;
        }
        /* qemuValidateDomainMdevDefVFIOPCI(): display needs vfio-pci, and
         * display='on' a <graphics> to show it. */
        if (a->type == DMG_HOSTDEV_SUBSYS_MDEV && a->display != DMG_TRISTATE_ABSENT &&
            a->mdev_model != DMG_MDEV_MODEL_VFIO_PCI)
            vmm_findings__error(&m->findings, "libvirt-mdev-display", a->alias,
                                _("unsupported configuration: <hostdev> attribute 'display' is only supported with model='vfio-pci'; remove display="));
        else if (a->type == DMG_HOSTDEV_SUBSYS_MDEV && a->display == DMG_TRISTATE_ON && !def->graphics)
            vmm_findings__error(&m->findings, "libvirt-mdev-display", a->alias,
                                _("unsupported configuration: graphics device is needed for attribute value 'display=on' in <hostdev>; add a <graphics> device (vnc or spice)"));

        /* qemuValidateDomainMdevDefVFIOPCI/AP() and the vhost-scsi case of
         * qemuValidateDomainDeviceDefHostdev(): these cannot be booted
         * from; and a guest has one vfio-ap at most. */
        if (a->boot_order && a->type == DMG_HOSTDEV_SUBSYS_MDEV &&
            a->mdev_model != DMG_MDEV_MODEL_VFIO_CCW) {
            g_autofree char *msg = g_strdup_printf(_("unsupported configuration: booting from assigned devices is not supported by mediated devices of model %s; remove <boot> from %s"),
                                                   dmgMdevModelTypeToString(a->mdev_model), a->alias);

            vmm_findings__error(&m->findings, "libvirt-hostdev-unsupported", a->alias, msg);
        } else if (a->boot_order && a->type == DMG_HOSTDEV_SUBSYS_SCSI_HOST) {
            g_autofree char *msg = g_strdup_printf(_("unsupported configuration: booting from assigned devices is not supported by vhost SCSI devices; remove <boot> from %s"),
                                                   a->alias);

            vmm_findings__error(&m->findings, "libvirt-hostdev-unsupported", a->alias, msg);
        }
        if (a->type == DMG_HOSTDEV_SUBSYS_MDEV && a->mdev_model == DMG_MDEV_MODEL_VFIO_AP) {
            if (vfio_ap) {
                g_autofree char *msg = g_strdup_printf(_("unsupported configuration: Only one hostdev of model vfio-ap is supported; %s and %s are both vfio-ap: remove one"),
                                                       vfio_ap->alias, a->alias);

                vmm_findings__error(&m->findings, "libvirt-hostdev-unsupported", a->alias, msg);
            }
            vfio_ap = a;
        }

        if (!key)
            continue;
        if ((first = g_hash_table_lookup(seen, key))) {
            g_autofree char *msg = g_strdup_printf(_("XML error: Hostdev already exists in the domain configuration; %s and %s name the same host device: remove one"),
                                                   first->alias, a->alias);

            /* libvirt stops at the first; so does this report. */
            vmm_findings__error(&m->findings, "libvirt-hostdev-duplicate", a->alias, msg);
            duplicate = true;
            g_free(key);
            continue;
        }
        g_hash_table_insert(seen, key, (gpointer)a);
    }
}

/* The address rules libvirt applies to the devices dmaguard models, each
 * with its words:
 *   - virDomainDeviceInfoValidate() (domain_validate.c): 'unassigned' is
 *     for hostdevs only;
 *   - virDomainHostdevDefPostParse() (domain_postparse.c): an mdev of
 *     model vfio-pci takes a 'pci' address, one of vfio-ccw a 'ccw' one;
 *   - virDomainHostdevDefValidate(): a PCI hostdev takes a 'pci' or an
 *     'unassigned' address (an internal error there, not a
 *     configuration one);
 *   - qemuValidateDomainDeviceDefAddress() (qemu_validate.c): a CCW
 *     address needs an s390-ccw machine, and 'virtio-s390' addresses are
 *     gone.
 * All as in libvirt 9.0; the 'unassigned' type is from 6.0. */
static void
dmg_libvirt_validate_address(const dmgDomainDef *def, const dmgDeviceAddress *addr,
                             const char *alias, bool hostdev, bool pci_hostdev,
                             int mdev_model, vmm_machine *m)
{
    const char *type = dmgAddressTypeToString(addr->type);
    g_autofree char *msg = NULL;

    if (mdev_model >= 0 && addr->type != DMG_ADDRESS_NONE &&
        ((mdev_model == DMG_MDEV_MODEL_VFIO_PCI && addr->type != DMG_ADDRESS_PCI) ||
         (mdev_model == DMG_MDEV_MODEL_VFIO_CCW && addr->type != DMG_ADDRESS_CCW))) {
        /* virDomainHostdevDefPostParse() (domain_postparse.c), at define. */
        msg = g_strdup_printf(_("XML error: Unsupported address type '%s' with mediated device model '%s'; give %s a '%s' address or none"),
                              type, dmgMdevModelTypeToString(mdev_model), alias,
                              mdev_model == DMG_MDEV_MODEL_VFIO_PCI ? "pci" : "ccw");
    } else if (addr->type == DMG_ADDRESS_UNASSIGNED && !hostdev) {
        msg = g_strdup_printf(_("unsupported configuration: address of type '%s' is supported only for hostdevs; remove the <address> of %s"),
                              type, alias);
    } else if (pci_hostdev && addr->type != DMG_ADDRESS_NONE &&
               addr->type != DMG_ADDRESS_PCI && addr->type != DMG_ADDRESS_UNASSIGNED) {
        msg = g_strdup_printf(_("internal error: PCI host devices must use 'pci' or 'unassigned' address type; %s has a '%s' address"),
                              alias, type);
    } else if (addr->type == DMG_ADDRESS_VIRTIO_S390) {
        msg = g_strdup_printf(_("unsupported configuration: 'virtio-s390' addresses are no longer supported; use a 'ccw' address for %s"),
                              alias);
    } else if (addr->type == DMG_ADDRESS_CCW &&
               !(def->machine ? g_str_has_prefix(def->machine, "s390-ccw")
                              : g_strcmp0(def->arch, "s390x") == 0)) {
        msg = g_strdup_printf(_("unsupported configuration: cannot use CCW address type for device '%s' using machine type '%s'; use a 'pci' address or an s390-ccw machine"),
                              alias, def->machine ? def->machine : "");
    }
    if (!msg && addr->type == DMG_ADDRESS_PCI &&
        (addr->pci.zpci_uid_set || addr->pci.zpci_fid_set)) {
        /* qemuValidateDomainDeviceDefZPCIAddress(): only the s390x QEMU
         * has the zpci device (QEMU_CAPS_DEVICE_ZPCI), and a uid is
         * 1..0xffff. */
        if (g_strcmp0(def->arch, "s390x") != 0)
            msg = g_strdup_printf(_("unsupported configuration: This QEMU binary doesn't support zPCI; remove <zpci> from the address of %s"),
                                  alias);
        else if (addr->pci.zpci_uid_set && (addr->pci.zpci_uid == 0 || addr->pci.zpci_uid > 0xFFFF))
            msg = g_strdup_printf(_("XML error: Invalid PCI address uid='0x%.4x', must be > 0x0000 and <= 0x%.4x; fix the <zpci> of %s"),
                                  addr->pci.zpci_uid, 0xFFFF, alias);
    }
    if (msg)
        vmm_findings__error(&m->findings, "libvirt-device-address", alias, msg);
}

/* virDomainZPCIAddressReserveId() (src/conf/domain_addr.c, libvirt 9.0):
 * a zPCI uid or fid is one device's.  libvirt prints the number with %o,
 * in octal: so does this message, so that it reads as libvirt's. */
static bool
dmg_libvirt_reserve_zpci(GHashTable *set, bool is_set, unsigned id, const char *name,
                         const char *alias, vmm_machine *m)
{
    g_autofree char *msg = NULL;

    if (!is_set)
        return true;
    if (!g_hash_table_contains(set, GUINT_TO_POINTER(id))) {
        g_hash_table_add(set, GUINT_TO_POINTER(id));
        return true;
    }
    msg = g_strdup_printf(_("internal error: zPCI %s %o is already reserved; give %s another %s"),
                          name, id, alias, name);
    vmm_findings__error(&m->findings, "libvirt-device-address", alias, msg);
    return false;
}

/* virDomainCCWAddressAssign() (src/conf/domain_addr.c, libvirt 9.0): a
 * devno given in the XML is one device's ("fe.0.0001", as
 * VIR_CCW_DEVICE_ADDRESS_FMT prints it).  Only the devices dmaguard reads
 * are compared; a disk on the same devno is not seen. */
static bool
dmg_libvirt_reserve_ccw(GHashTable *set, const dmgDeviceAddress *addr, const char *alias,
                        vmm_machine *m)
{
    g_autofree char *devno = NULL;
    g_autofree char *msg = NULL;

    if (addr->type != DMG_ADDRESS_CCW || !addr->ccw.present)
        return true;
    devno = g_strdup_printf("%x.%x.%04x", addr->ccw.cssid, addr->ccw.ssid, addr->ccw.devno);
    if (!g_hash_table_contains(set, devno)) {
        g_hash_table_add(set, g_steal_pointer(&devno));
        return true;
    }
    msg = g_strdup_printf(_("XML error: The CCW devno '%s' is in use already; give %s another devno"),
                          devno, alias);
    vmm_findings__error(&m->findings, "libvirt-device-address", alias, msg);
    return false;
}

void
dmg_libvirt_validate_addresses(const dmgDomainDef *def, vmm_machine *m)
{
    g_autoptr(GHashTable) uids = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_autoptr(GHashTable) fids = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_autoptr(GHashTable) devnos = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    for (guint i = 0; i < def->hostdevs->len; i++) {
        const dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);
        const dmgPCIAddress *pci = &h->guest.pci;

        dmg_libvirt_validate_address(def, &h->guest, h->alias, true,
                                     h->type == DMG_HOSTDEV_SUBSYS_PCI,
                                     h->type == DMG_HOSTDEV_SUBSYS_MDEV ? h->mdev_model : -1, m);
        if ((h->guest.type == DMG_ADDRESS_PCI &&
             (!dmg_libvirt_reserve_zpci(uids, pci->zpci_uid_set, pci->zpci_uid, "uid", h->alias, m) ||
              !dmg_libvirt_reserve_zpci(fids, pci->zpci_fid_set, pci->zpci_fid, "fid", h->alias, m))) ||
            !dmg_libvirt_reserve_ccw(devnos, &h->guest, h->alias, m))
            break;
    }
    if (def->memballoon && def->memballoon->model != DMG_MEMBALLOON_NONE)
        dmg_libvirt_reserve_ccw(devnos, &def->memballoon->guest, def->memballoon->alias, m);
    for (guint i = 0; i < def->memories->len; i++) {
        const dmgMemoryDef *mem = g_ptr_array_index(def->memories, i);

        dmg_libvirt_validate_address(def, &mem->guest, mem->alias, false, false, -1, m);
    }
    if (def->memballoon && def->memballoon->model != DMG_MEMBALLOON_NONE)
        dmg_libvirt_validate_address(def, &def->memballoon->guest, def->memballoon->alias,
                                     false, false, -1, m);
}

/* virDomainDefValidateAliases() (src/conf/domain_validate.c, libvirt
 * 9.0), at define: a user alias ("ua-" prefix,
 * virDomainDeviceAliasIsUserAlias()) is one device's.  libvirt drops and
 * regenerates every other alias, so only user aliases are compared, across
 * the devices dmaguard reads; one pass with a table. */
void
dmg_libvirt_validate_aliases(const dmgDomainDef *def, vmm_machine *m)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) aliases = g_ptr_array_new();

    for (guint i = 0; i < def->hostdevs->len; i++)
        g_ptr_array_add(aliases, ((dmgHostdevDef *)g_ptr_array_index(def->hostdevs, i))->alias);
    for (guint i = 0; i < def->memories->len; i++)
        g_ptr_array_add(aliases, ((dmgMemoryDef *)g_ptr_array_index(def->memories, i))->alias);
    if (def->memballoon)
        g_ptr_array_add(aliases, def->memballoon->alias);
    if (def->iommu)
        g_ptr_array_add(aliases, def->iommu->alias);
    for (guint i = 0; i < aliases->len; i++) {
        const char *alias = g_ptr_array_index(aliases, i);

        if (!alias || !g_str_has_prefix(alias, "ua-"))
            continue;
        if (g_hash_table_contains(seen, alias)) {
            g_autofree char *msg = g_strdup_printf(_("unsupported configuration: non unique alias detected: %s; give each device its own ua- alias"),
                                                   alias);

            vmm_findings__error(&m->findings, "libvirt-alias-duplicate", alias, msg);
            return;
        }
        g_hash_table_add(seen, (gpointer)alias);
    }
}

/* virDomainDefMemtuneValidate() (src/conf/domain_validate.c, libvirt 9.0),
 * at define: one <page> without a nodeset at most (the default size), no
 * guest NUMA node in two nodesets, and every node of a nodeset a guest
 * NUMA cell.  libvirt's sizes are KiB. */
void
dmg_libvirt_validate_hugepages(const dmgDomainDef *def, vmm_machine *m)
{
    GArray *pages = def->hugepage_list;
    g_autofree char *msg = NULL;

    for (guint i = 0; i < pages->len && !msg; i++) {
        const dmgHugepageDef *a = &g_array_index(pages, dmgHugepageDef, i);

        for (guint j = 0; j < i && !msg; j++) {
            const dmgHugepageDef *b = &g_array_index(pages, dmgHugepageDef, j);
            bool overlap = false;

            for (guint n = 0; a->nodes && b->nodes && n < DMG_DOMAIN_MAX_NUMA_CELLS; n++)
                overlap |= a->nodes[n] && b->nodes[n];
            if (overlap)
                msg = g_strdup_printf(_("nodeset attribute of hugepages of sizes %llu and %llu intersect; give each guest NUMA node one page size"),
                                      (unsigned long long)(a->size / 1024),
                                      (unsigned long long)(b->size / 1024));
            else if (!a->nodes && !b->nodes)
                msg = g_strdup_printf(_("two master hugepages detected: %llu and %llu; give all but one <page> a nodeset"),
                                      (unsigned long long)(a->size / 1024),
                                      (unsigned long long)(b->size / 1024));
        }
        for (guint n = def->numa_cells->len; !msg && a->nodes && n < DMG_DOMAIN_MAX_NUMA_CELLS; n++) {
            if (a->nodes[n])
                msg = g_strdup_printf(_("hugepages: node %u not found; the guest has %u NUMA cells"),
                                      n, def->numa_cells->len);
        }
    }
    if (msg)
        vmm_findings__error(&m->findings, "libvirt-hugepages", NULL, msg);
}

/*
 * qemu_postparse.c: libvirt's QEMU post-parse, as far as verdicts need it.
 */
#include "qemu_postparse.h"

#include <string.h>

#include "dmg_i18n.h"

/* The architecture of a domain without os/type/@arch: libvirt takes the
 * host's when its QEMU can run it (virCapabilitiesDomainDataLookup()),
 * which is the architecture dmaguard was built for. */
static const char *
dmg_qemu_default_arch(void)
{
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "ppc64le";
#elif defined(__i386__)
    return "i686";
#else
    return "";
#endif
}

/* qemuDomainDefAddDefaultDevices() (src/qemu/qemu_domain.c, as in libvirt
 * 9.0): a domain with no <memballoon> gets <memballoon model='virtio'/>,
 * named balloon0 at start, except on armv6l, armv7l, aarch64 and sparc
 * (addDefaultMemballoon = false there).  Only <memballoon model='none'/>
 * keeps a domain without one, so a VFIO domain that says nothing about a
 * balloon has one, and it is inert. */
void
dmg_qemu_domain_def_add_default_devices(dmgDomainDef *def)
{
    static const char *const no_default_balloon[] = {
        "armv6l", "armv7l", "aarch64", "sparc", NULL,
    };
    const char *arch = dmg_qemu_domain_arch(def);
    dmgMemballoonDef *b;

    if (def->memballoon || g_strv_contains(no_default_balloon, arch))
        return;
    b = g_new0(dmgMemballoonDef, 1);
    b->model = DMG_MEMBALLOON_VIRTIO;
    b->autodeflate = DMG_TRISTATE_ABSENT;
    b->free_page_reporting = DMG_TRISTATE_ABSENT;
    b->stats_period = -1;
    b->alias = g_strdup("balloon0");
    b->alias_generated = true;
    b->implicit = true;
    def->memballoon = b;
}

#define KIB G_GUINT64_CONSTANT(1024)
#define MIB (KIB * 1024)
/* virMemoryMaxValue() on a 64-bit host: LLONG_MAX bytes, which libvirt
 * compares in KiB (>> 10). */
#define DMG_MEMORY_MAX_BYTES ((guint64)(G_MAXINT64 >> 10) * KIB)

bool
dmg_arch_is_ppc64(const char *arch)
{
    return g_strcmp0(arch, "ppc64") == 0 || g_strcmp0(arch, "ppc64le") == 0;
}

const char *
dmg_qemu_domain_arch(const dmgDomainDef *def)
{
    return def->arch ? def->arch : dmg_qemu_default_arch();
}

/* qemuDomainMachineIsPSeries() (src/qemu/qemu_domain.c).  A domain
 * without a machine gets the default of its emulator
 * (virQEMUCapsGetPreferredMachine()), pseries for qemu-system-ppc64. */
bool
dmg_qemu_domain_is_pseries(const dmgDomainDef *def)
{
    return dmg_arch_is_ppc64(dmg_qemu_domain_arch(def)) &&
           (!def->machine || g_str_has_prefix(def->machine, "pseries"));
}

/* Round @v up to @align; false when that leaves 64 bits. */
static bool
dmg_round_up(guint64 v, guint64 align, guint64 *out)
{
    guint64 r = v % align;

    if (r && v > G_MAXUINT64 - (align - r))
        return false;
    *out = r ? v + (align - r) : v;
    return true;
}

/* qemuDomainAlignMemorySizes() (src/qemu/qemu_domain.c, libvirt 9.0), run
 * by qemuProcessPrepareDomain() at every start: QEMU is given sizes rounded
 * up to 1 MiB (qemuDomainGetMemorySizeAlignment(); 256 MiB on ppc64), the
 * NUMA cells each, and then the initial memory is their total instead of
 * <memory> minus the memory devices; <maxMemory> the same; memory devices
 * to 2 MiB (qemuDomainGetMemoryModuleSizeAlignment(); 256 MiB on ppc64).
 * <memory> becomes the aligned total.  So `-m`, the dimm sizes and the
 * memlock limit are those of the aligned domain.  A size that no longer
 * fits is refused with libvirt's words (def->memory_align_error).
 * ppc64 NVDIMMs (qemuDomainNVDimmAlignSizePseries()) are not modelled. */
static void
dmg_qemu_domain_align_memory_sizes(dmgDomainDef *def)
{
    const char *arch = dmg_qemu_domain_arch(def);
    guint64 align = dmg_arch_is_ppc64(arch) ? 256 * MIB : MIB;
    guint64 module_align = dmg_arch_is_ppc64(arch) ? 256 * MIB : 2 * MIB;
    guint64 initial = 0, hotplug = 0, devices = 0;
    guint64 mem;

    for (guint i = 0; i < def->numa_cells->len; i++) {
        guint64 *cell = &g_array_index(def->numa_cells, guint64, i);

        if (!dmg_round_up(*cell, align, &mem) || mem > DMG_MEMORY_MAX_BYTES ||
            initial > G_MAXUINT64 - mem) {
            def->memory_align_error = g_strdup_printf(_("memory size of NUMA node '%u' overflowed after alignment"), i);
            return;
        }
        *cell = mem;
        initial += mem;
    }
    for (guint i = 0; i < def->memories->len; i++)
        devices += ((dmgMemoryDef *)g_ptr_array_index(def->memories, i))->size;
    /* virDomainDefGetMemoryInitial(): <memory> minus the memory devices. */
    if (initial == 0 &&
        !dmg_round_up(def->memory > devices ? def->memory - devices : 0, align, &initial))
        initial = G_MAXUINT64;
    if (initial > DMG_MEMORY_MAX_BYTES) {
        def->memory_align_error = g_strdup(_("initial memory size overflowed after alignment"));
        return;
    }
    if (!dmg_round_up(def->max_memory, align, &mem) || mem > DMG_MEMORY_MAX_BYTES) {
        def->memory_align_error = g_strdup(_("maximum memory size overflowed after alignment"));
        return;
    }
    def->max_memory = mem;
    for (guint i = 0; i < def->memories->len; i++) {
        dmgMemoryDef *m = g_ptr_array_index(def->memories, i);

        if (!dmg_round_up(m->size, module_align, &mem) || mem > DMG_MEMORY_MAX_BYTES ||
            hotplug > G_MAXUINT64 - mem) {
            def->memory_align_error = g_strdup_printf(_("size of memory module '%u' overflowed after alignment"), i);
            return;
        }
        m->size = mem;
        hotplug += mem;
    }
    /* virDomainDefSetMemoryTotal(); libvirt adds KiB, which cannot wrap:
     * in bytes the total saturates instead. */
    def->memory = hotplug > G_MAXUINT64 - initial ? G_MAXUINT64 : initial + hotplug;
}

/* qemuDomainIsS390CCW(); libvirt's default s390x machine is
 * s390-ccw-virtio (its capabilities' canonical machine). */
static bool
dmg_domain_is_s390_ccw(const dmgDomainDef *def)
{
    if (!def->machine)
        return g_strcmp0(def->arch, "s390x") == 0;
    return g_str_has_prefix(def->machine, "s390-ccw");
}

/* qemuDomainIsARMVirt() and qemuDomainIsRISCVVirt(): "virt" or a
 * versioned "virt-X.Y" on those architectures. */
static bool
dmg_domain_is_virt(const dmgDomainDef *def)
{
    return def->machine &&
           (g_str_equal(def->machine, "virt") || g_str_has_prefix(def->machine, "virt-"));
}

/* The domain names a conventional PCI root (<controller type='pci'
 * index='0' model='pci-root'/>), not libvirt's default pcie-root. */
static bool
dmg_domain_has_pci_root(const dmgDomainDef *def)
{
    for (guint i = 0; i < def->pci_controllers->len; i++) {
        const dmgPCIControllerDef *c = &g_array_index(def->pci_controllers, dmgPCIControllerDef, i);

        if (c->index == 0)
            return c->model == DMG_CONTROLLER_MODEL_PCI_ROOT;
    }
    return false;
}

/* qemuDomainAssignS390Addresses() and qemuDomainAssignVirtioMMIOAddresses()
 * (qemu_domain_address.c, libvirt 9.0), for the balloon: a virtio device
 * without an <address> is put on CCW on an s390-ccw machine, and on
 * virtio-mmio on ARM's vexpress and on ARM and RISC-V virt machines whose
 * root is not PCIe.  libvirt adds a pcie-root to a virt machine when QEMU
 * has the gpex host bridge (qemuDomainDefAddDefaultDevices(); every QEMU
 * dmaguard knows has it), so there the balloon stays on PCI unless the
 * domain names a PCI root or another device already sits on virtio-mmio;
 * dmaguard does not read the other devices' addresses, so only the first
 * is seen.  The transport names the QEMU device (virtio-balloon-ccw,
 * virtio-balloon-device: qemuBuildVirtioDevGetConfig()). */
void
dmg_qemu_domain_assign_virtio_addresses(dmgDomainDef *def)
{
    static const char *const mmio_arches[] = {
        "armv6l", "armv7l", "aarch64", "riscv32", "riscv64", NULL,
    };
    dmgMemballoonDef *b = def->memballoon;

    if (!b || b->model == DMG_MEMBALLOON_NONE || b->guest.type != DMG_ADDRESS_NONE)
        return;
    if (dmg_domain_is_s390_ccw(def)) {
        b->guest.type = DMG_ADDRESS_CCW;
        return;
    }
    if (!def->arch || !g_strv_contains(mmio_arches, def->arch))
        return;
    if (def->machine && g_str_has_prefix(def->machine, "vexpress-"))
        b->guest.type = DMG_ADDRESS_VIRTIO_MMIO;
    else if (dmg_domain_is_virt(def))
        b->guest.type = dmg_domain_has_pci_root(def) ? DMG_ADDRESS_VIRTIO_MMIO : DMG_ADDRESS_PCI;
}

/* qemuDomainAssignMemorySlots() (qemu_domain_address.c, libvirt 9.0):
 * with memory hotplug, every dimm and nvdimm without a dimm address gets
 * the lowest slot no other one holds, in the domain's order; and
 * qemuAssignDeviceMemoryAlias() names it after its slot ("dimm3"), for
 * a new domain (not one whose status XML carries old aliases).  No free
 * slot is libvirt's "failed to find an empty memory slot", which
 * qemuValidateDomainDefMemory's count check (libvirt_validate.c)
 * reports first. */
void
dmg_qemu_domain_assign_memory_slots(dmgDomainDef *def)
{
    g_autoptr(GHashTable) used = NULL;
    unsigned next = 0;

    if (!def->max_memory && !def->max_memory_slots)
        return;
    used = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (guint i = 0; i < def->memories->len; i++) {
        dmgMemoryDef *mem = g_ptr_array_index(def->memories, i);

        if (mem->guest.type == DMG_ADDRESS_DIMM)
            g_hash_table_add(used, GUINT_TO_POINTER(mem->guest.dimm.slot));
    }
    for (guint i = 0; i < def->memories->len; i++) {
        dmgMemoryDef *mem = g_ptr_array_index(def->memories, i);

        if (mem->model != DMG_MEMORY_MODEL_DIMM && mem->model != DMG_MEMORY_MODEL_NVDIMM)
            continue;
        if (mem->guest.type == DMG_ADDRESS_NONE) {
            while (g_hash_table_contains(used, GUINT_TO_POINTER(next)))
                next++;
            if (next >= def->max_memory_slots)
                continue;
            g_hash_table_add(used, GUINT_TO_POINTER(next));
            mem->guest.type = DMG_ADDRESS_DIMM;
            mem->guest.dimm.slot = next;
        }
        if (mem->alias_generated && mem->guest.type == DMG_ADDRESS_DIMM) {
            g_free(mem->alias);
            mem->alias = g_strdup_printf("%s%u", mem->model == DMG_MEMORY_MODEL_DIMM
                                         ? "dimm" : "nvdimm", mem->guest.dimm.slot);
        }
    }
}

void
dmg_qemu_domain_def_prepare(dmgDomainDef *def)
{
    dmg_qemu_domain_def_add_default_devices(def);
    dmg_qemu_domain_align_memory_sizes(def);
    dmg_qemu_domain_assign_virtio_addresses(def);
    dmg_qemu_domain_assign_memory_slots(def);
}

dmgDomainDef *
dmg_qemu_domain_def_parse_string(const char *xml, gsize len, const char *source,
                                 GError **error)
{
    dmgDomainDef *def = dmg_domain_def_parse_string(xml, len, source, error);

    if (def)
        dmg_qemu_domain_def_prepare(def);
    return def;
}

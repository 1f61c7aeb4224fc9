/*
 * libvirt_memlock.c: libvirt's qemuDomainGetMemLockLimitBytes()
 * (src/qemu/qemu_domain.c), the RLIMIT_MEMLOCK qemuProcessLaunch() gives
 * QEMU, with getPPC64MemLockLimitBytes() for ppc64 KVM guests and the
 * count of a pSeries guest's PHBs that libvirt's PCI address assignment
 * leaves (src/qemu/qemu_domain_address.c, src/conf/domain_addr.c).
 * Checked against libvirt 9.0.0's source and its tests/qemumemlocktest.c
 * (tests/libvirt-conformance.py).  What changed between releases is in
 * the version table (libvirt_profile.c); the rest is as in every libvirt
 * from 6.0.0, the oldest release dmaguard models.
 *
 * libvirt computes in KiB and returns KiB << 10, so every limit is a
 * whole number of KiB: sizes are rounded up to KiB as libvirt's parser
 * rounds them (VIR_DIV_UP in virDomainParseMemory() and
 * virDomainParseMemoryLimit()), and divided in KiB as libvirt divides.
 */
#include "libvirt_memlock.h"

#include <libvirt/libvirt.h>

#include "domain_realize.h"
#include "libvirt_profile.h"
#include "qemu_postparse.h"

#define KIB G_GUINT64_CONSTANT(1024)

/* KiB to bytes as libvirt returns them (KiB << 10), or
 * DMG_MEMLOCK_EXCEEDS where that no longer fits a signed 64-bit number. */
static guint64
dmg_kib_to_bytes(guint64 kib)
{
    return kib > (guint64)G_MAXINT64 >> 10 ? DMG_MEMLOCK_EXCEEDS : kib << 10;
}

/* a * b + c in KiB, or G_MAXUINT64 when it wraps. */
static guint64
dmg_kib_mul_add(guint64 a, guint64 b, guint64 c)
{
    guint64 r;

    if (!g_uint64_checked_mul(&r, a, b) || !g_uint64_checked_add(&r, r, c))
        return G_MAXUINT64;
    return r;
}

/* Bytes to KiB, rounded up as libvirt's parser rounds. */
static guint64
dmg_kib(guint64 bytes)
{
    return bytes / KIB + (bytes % KIB != 0);
}

/* virHostdevIsVFIODevice() (src/conf/domain_conf.c) at start: a PCI
 * hostdev whose backend is VFIO, which an unset backend becomes in
 * qemuHostdevPreparePCIDevicesCheckSupport() before qemuProcessLaunch()
 * computes the limit (another backend never starts). */
static bool
dmg_hostdev_is_vfio(const dmgHostdevDef *h)
{
    dmgPCIBackend backend = dmg_hostdev_pci_backend(h);

    return h->mode == DMG_HOSTDEV_MODE_SUBSYS && h->type == DMG_HOSTDEV_SUBSYS_PCI &&
           (backend == DMG_PCI_BACKEND_DEFAULT || backend == DMG_PCI_BACKEND_VFIO);
}

/* qemuDomainGetNumVFIODevices(): VFIO PCI hostdevs
 * (<interface type='hostdev'> is one, libvirt lists it in def->hostdevs),
 * mdevs (virHostdevIsMdevDevice()), and disks with an NVMe source in
 * their chain (virStorageSourceChainHasNVMe(); <disk type='nvme'> since
 * libvirt 6.0.0, NEWS.rst "qemu: Allow accessing NVMe disks directly").
 * Its being non-zero is qemuDomainNeedsVFIO(). */
static guint64
dmg_num_vfio_devices(const dmgDomainDef *def)
{
    guint64 n = def->nvme_disks;

    for (guint i = 0; i < def->hostdevs->len; i++) {
        const dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);

        if (dmg_hostdev_is_vfio(h) ||
            (h->mode == DMG_HOSTDEV_MODE_SUBSYS && h->type == DMG_HOSTDEV_SUBSYS_MDEV))
            n++;
    }
    return n;
}

/* qemuDomainGetNumVDPANetDevices(): <interface type='vdpa'>, counted
 * from libvirt 7.2.0 (DMG_LIBVIRT_MEMLOCK_VDPA); before, never. */
static guint64
dmg_num_vdpa_devices(const dmgDomainDef *def, const dmgLibvirtProfile *libvirt)
{
    return dmg_libvirt_profile_has(libvirt, DMG_LIBVIRT_MEMLOCK_VDPA)
           ? def->vdpa_interfaces->len : 0;
}

/* ------------------------------------------------------------------ */
/* A pSeries guest's PHBs                                              */

/* One guest PCI bus as libvirt's address set sees it
 * (virDomainPCIAddressBus, src/conf/domain_addr.h). */
typedef struct {
    bool phb;                    /* a pci-root controller: a PHB on pSeries */
    bool used;                   /* a device sits on it */
    bool locked;                 /* its isolation group never changes */
    gint64 group;                /* isolation group; 0: emulated devices */
} dmg_pci_bus;

/* Bus numbers are 8 bits (dmg_parse_pci_address(), controller_conf.c). */
#define DMG_PCI_BUSES 256

typedef struct {
    dmg_pci_bus bus[DMG_PCI_BUSES];
    guint nbuses;
} dmg_pci_buses;

/* virDomainPCIAddressSetGrow() for a PCI device of a pSeries guest
 * (areMultipleRootsSupported): one more pci-root per missing bus. */
static dmg_pci_bus *
dmg_pci_buses_grow(dmg_pci_buses *s, guint bus)
{
    if (bus >= DMG_PCI_BUSES)
        return NULL;
    for (; s->nbuses <= bus; s->nbuses++)
        s->bus[s->nbuses] = (dmg_pci_bus){ .phb = true };
    return &s->bus[bus];
}

/* virDomainPCIAddressReserveAddrInternal() for an address the XML gives
 * (fromConfig): the first device on an unlocked bus sets its isolation
 * group; a device of another group puts it back to the default. */
static void
dmg_pci_buses_reserve(dmg_pci_buses *s, const dmgDeviceAddress *addr, gint64 group)
{
    dmg_pci_bus *b;

    if (addr->type != DMG_ADDRESS_PCI || !addr->pci.present ||
        !(b = dmg_pci_buses_grow(s, addr->pci.bus)))
        return;
    if (!b->used && !b->locked)
        b->group = group;
    else if (b->group != group)
        b->group = 0;
    b->used = true;
}

/* virDomainPCIAddressGetNextAddr() for a device of isolation @group: a
 * bus of its group, else an empty bus whose group may change, else a new
 * PHB.  A bus's 31 slots are taken to be enough. */
static void
dmg_pci_buses_assign(dmg_pci_buses *s, gint64 group)
{
    dmg_pci_bus *b;

    for (guint i = 0; i < s->nbuses; i++) {
        if (s->bus[i].used && s->bus[i].group == group)
            return;
    }
    for (guint i = 0; i < s->nbuses; i++) {
        b = &s->bus[i];
        if (!b->used && !b->locked) {
            b->group = group;
            b->used = true;
            return;
        }
    }
    if ((b = dmg_pci_buses_grow(s, s->nbuses))) {
        b->group = group;
        b->used = true;
    }
}

/* qemuDomainFillDeviceIsolationGroup(): a PCI hostdev's isolation group
 * is its IOMMU group + 1, keeping 0 for emulated devices.  A device that
 * is not on this host is judged a singleton group (dmg_hostdev_group()),
 * so it gets a group of its own. */
static gint64
dmg_hostdev_isolation_group(const dmgDomainDef *def, const dmgHostdevDef *h,
                            dmgHostProfile *host)
{
    int group = dmg_hostdev_group(def, h, host);

    return group >= 0 ? (gint64)group + 1 : (gint64)G_MAXUINT32 - group;
}

/* The PHBs of a pSeries guest (virDomainControllerIsPSeriesPHB(): the
 * pci-root controllers, all spapr-pci-host-bridge on pSeries) once
 * libvirt has assigned its PCI addresses, "Isolate hostdevs on pSeries
 * guests" (NEWS.rst, v3.6.0):
 *   - qemuDomainDefAddDefaultDevices() adds pci-root index 0 when no PCI
 *     controller has index 0, and qemuDomainSetupIsolationGroups() locks
 *     it to the emulated devices' group;
 *   - every address the XML gives is reserved first, and a bus number
 *     past the last controller adds pci-roots up to it;
 *   - then each PCI hostdev without an address goes to a bus of its
 *     IOMMU group, else to an empty bus, else to a new PHB.
 * Emulated devices stay on PHB 0; those the XML places on another bus
 * are not read, except the balloon and the controllers. */
static guint64
dmg_pseries_phbs(const dmgDomainDef *def, dmgHostProfile *host)
{
    g_autofree dmg_pci_buses *s = g_new0(dmg_pci_buses, 1);
    guint64 n = 0;

    s->nbuses = 1;
    s->bus[0] = (dmg_pci_bus){ .phb = true, .locked = true };
    for (guint i = 0; i < def->pci_controllers->len; i++) {
        const dmgPCIControllerDef *c = &g_array_index(def->pci_controllers, dmgPCIControllerDef, i);
        dmg_pci_bus *b = dmg_pci_buses_grow(s, c->index);

        /* Index 0 is the pci-root libvirt requires there; a model it
         * refuses is libvirt's error, not a PHB fewer. */
        if (b && c->index != 0)
            b->phb = c->model == DMG_CONTROLLER_MODEL_PCI_ROOT;
    }
    for (guint i = 0; i < def->pci_controllers->len; i++)
        dmg_pci_buses_reserve(s, &g_array_index(def->pci_controllers, dmgPCIControllerDef, i).guest, 0);
    if (def->memballoon)
        dmg_pci_buses_reserve(s, &def->memballoon->guest, 0);
    for (guint i = 0; i < def->hostdevs->len; i++) {
        const dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);

        dmg_pci_buses_reserve(s, &h->guest, h->type == DMG_HOSTDEV_SUBSYS_PCI
                              ? dmg_hostdev_isolation_group(def, h, host) : 0);
    }
    for (guint i = 0; i < def->hostdevs->len; i++) {
        const dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);

        /* An unassigned hostdev gets no guest address at all. */
        if (h->type == DMG_HOSTDEV_SUBSYS_PCI && h->guest.type == DMG_ADDRESS_NONE)
            dmg_pci_buses_assign(s, dmg_hostdev_isolation_group(def, h, host));
    }
    for (guint i = 0; i < s->nbuses; i++)
        n += s->bus[i].phb;
    return n;
}

/* ------------------------------------------------------------------ */
/* The limit                                                           */

/* An NVLink2 GPU among the VFIO hostdevs (ppc64VFIODeviceIsNV2Bridge() on
 * each one with a valid address). */
static bool
dmg_has_nvlink2_bridge(const dmgDomainDef *def, dmgHostProfile *host)
{
    for (guint i = 0; i < def->hostdevs->len; i++) {
        const dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);
        const dmgPCIAddress *a = &h->source;

        if (!dmg_hostdev_is_vfio(h) ||
            (a->domain == 0 && a->bus == 0 && a->slot == 0 && a->function == 0))
            continue;
        if (dmg_host_profile_pci(host, a->domain, a->bus, a->slot, a->function)->nvlink2_bridge)
            return true;
    }
    return false;
}

/* getPPC64MemLockLimitBytes(), in KiB:
 *   base        = maxMemory / 128 + 4096 * PHBs + 8192
 *   passthrough = maxMemory + 128 GiB / 512 * PHBs + 8192     (NVLink2)
 *               | max(2 GiB * PHBs, memory + memory / 512 * PHBs + 8192)
 *                                           (VFIO, NVMe or vDPA)
 *               | 0
 * with maxMemory = <maxMemory>, else the memory.  libvirt writes 128 GiB
 * / 512 and 2 GiB as KiB-less numbers (268435456 and 2097152) and adds
 * them to KiB, and so does this. */
static guint64
dmg_ppc64_memlock_limit_bytes(const dmgDomainDef *def, dmgHostProfile *host,
                              bool force_vfio)
{
    guint64 phbs = dmg_qemu_domain_is_pseries(def) ? dmg_pseries_phbs(def, host) : 0;
    guint64 memory = dmg_kib(def->memory);
    guint64 max_memory = def->max_memory ? dmg_kib(def->max_memory) : memory;
    guint64 base = max_memory / 128 + 4096 * phbs + 8192;
    guint64 passthrough = 0;

    if (dmg_has_nvlink2_bridge(def, host))
        passthrough = max_memory + 128 * (G_GUINT64_CONSTANT(1) << 30) / 512 * phbs + 8192;
    else if (force_vfio || dmg_num_vfio_devices(def) ||
             dmg_num_vdpa_devices(def, &host->libvirt))
        passthrough = MAX(2 * 1024 * 1024 * phbs,
                          dmg_kib_mul_add(memory / 512, phbs, memory + 8192));
    return dmg_kib_to_bytes(dmg_kib_mul_add(1, base, passthrough));
}

guint64
dmg_qemu_domain_get_memlock_limit_bytes(const dmgDomainDef *def, dmgHostProfile *host,
                                        bool force_vfio)
{
    const dmgLibvirtProfile *libvirt = &host->libvirt;
    guint64 nvfio, nvdpa, factor;

    /* virMemoryLimitIsSet(): <hard_limit>, 0 included, in whole KiB
     * (virDomainParseMemoryLimit()); one of VIR_DOMAIN_MEMORY_PARAM_UNLIMITED
     * KiB or more is "unlimited", which is no limit set. */
    if (def->hard_limit_set && dmg_kib(def->hard_limit) < VIR_DOMAIN_MEMORY_PARAM_UNLIMITED)
        return dmg_kib_to_bytes(dmg_kib(def->hard_limit));
    /* <memoryBacking><locked/>: no limit at all. */
    if (def->locked)
        return VIR_DOMAIN_MEMORY_PARAM_UNLIMITED;
    /* ARCH_IS_PPC64() && VIR_DOMAIN_VIRT_KVM: a TCG or x86 guest takes the
     * formula below, which is 0 without devices that pin memory. */
    if (dmg_arch_is_ppc64(dmg_qemu_domain_arch(def)) && def->virt_type == DMG_DOMAIN_VIRT_KVM)
        return dmg_ppc64_memlock_limit_bytes(def, host, force_vfio);

    nvfio = dmg_num_vfio_devices(def);
    nvdpa = dmg_num_vdpa_devices(def, libvirt);
    if (!force_vfio && !nvfio && !nvdpa)
        return 0;
    /* Guest memory plus 1 GiB of MMIO once; from libvirt 8.7.0 once per
     * VFIO device when the domain has a vIOMMU (each device has its own
     * DMA address space), and once per vDPA device besides. */
    if (!dmg_libvirt_profile_has(libvirt, DMG_LIBVIRT_MEMLOCK_PER_DEVICE))
        factor = 1;
    else
        factor = nvdpa + (!nvfio && !force_vfio ? 0 : nvfio && def->iommu ? nvfio : 1);
    return dmg_kib_to_bytes(dmg_kib_mul_add(factor, dmg_kib(def->memory), 1024 * 1024));
}

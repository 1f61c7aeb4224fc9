/*
 * libvirt_hostdev.c: the start refusal of libvirt's
 * qemuHostdevPreparePCIDevicesCheckSupport() (src/qemu/qemu_hostdev.c).
 *
 * At start, qemuProcessPrepareHost() calls qemuHostdevPrepareDomainDevices()
 * and so qemuHostdevPreparePCIDevices(), which first checks each
 * <hostdev mode='subsystem' type='pci'> of def->hostdevs (an <interface
 * type='hostdev'> is one of them too) by its backend, <driver name=.../>:
 *
 *   default: needs qemuHostdevHostSupportsPassthroughVFIO() (an IOMMU,
 *            virHostHasIOMMU(), and /dev/vfio/vfio) and the emulator's
 *            vfio-pci (QEMU_CAPS_DEVICE_VFIO_PCI), else "host doesn't
 *            support passthrough of host PCI devices";
 *   vfio:    needs the host's VFIO, else "host doesn't support VFIO PCI
 *            passthrough";
 *   kvm:     always "host doesn't support legacy PCI passthrough";
 *   xen:     nothing here (qemuBuildPCIHostdevDevProps() refuses it later,
 *            "invalid PCI passthrough type 'xen'", not modelled).
 *
 * all VIR_ERR_CONFIG_UNSUPPORTED, so virsh prints "unsupported
 * configuration: ...", and libvirt stops at the first hostdev it refuses;
 * dmaguard names every one.  libvirt runs it after the hook's "prepare"
 * call (qemuProcessInit()), so a hook that lets the domain through does
 * not keep this refusal away.
 *
 * The host's half is what libvirt shows in its domain capabilities
 * (host_domcaps.c): <enum name='pciBackend'> lists default and vfio
 * exactly when the default backend passes.  An empty list also follows
 * from an emulator without vfio-pci on a host with VFIO; libvirt then
 * lets <driver name='vfio'/> through here and QEMU refuses the device
 * instead.  Either way the domain does not start.  Without the domain
 * capabilities (no connection, --xml, the hook, which never calls
 * libvirt, a read-only connection, the test driver) the host is unknown
 * and nothing is said.
 *
 * The kvm backend needs no host fact: libvirt 5.7.0 removed KVM device
 * assignment ("Remove KVM assignment support", NEWS.rst), which left this
 * check refusing it always, as 9.0 does.  libvirt before 5.7 fell back to
 * it, for the default backend too, where the kernel still had it
 * (qemuHostdevHostSupportsPassthroughLegacy()).  The oldest libvirt
 * dmaguard judges for is 6.0 (libvirt_profile.c), so the rule as 9.0 has
 * it holds for every libvirt dmaguard models; the wording above is 9.0's.
 */
#include "domain_realize.h"

#include "dmg_i18n.h"
#include "host_domcaps.h"

static void
dmg_libvirt_no_vfio(vmm_machine *m, const dmgHostdevDef *h, const char *words)
{
    g_autofree char *msg = g_strdup_printf(_("%s: libvirt refuses to start the domain (\"unsupported configuration: %s\"): its domain capabilities list no PCI passthrough backend (<enum name='pciBackend'> is empty): the host has no IOMMU or no /dev/vfio/vfio, or the emulator lacks vfio-pci. Enable the IOMMU in the firmware (VT-d or AMD-Vi) and on the kernel command line (intel_iommu=on or amd_iommu=on), load vfio-pci so that /dev/vfio/vfio exists, or remove the device, or run the domain on another host"),
                                           h->alias, words);

    vmm_findings__error(&m->findings, "libvirt-host-no-vfio", h->alias, msg);
}

void
dmg_libvirt_hostdev_check(const dmgDomainDef *def, dmgHostProfile *host,
                          vmm_machine *m)
{
    const dmgDomainCaps *caps = dmg_host_domcaps_lookup(host, def);
    const char *problem = dmg_host_domcaps_problem(host, def);

    if (problem) {
        g_autofree char *msg = g_strdup_printf(_("libvirt's domain capabilities for this domain were not read (%s), so whether the host can pass PCI devices through is unknown; look at what virsh domcapabilities prints on that host: its libvirt is broken, or is not libvirt"),
                                               problem);

        vmm_findings__warn(&m->findings, "domain-caps-unreadable", NULL, msg);
    }
    for (guint i = 0; i < def->hostdevs->len; i++) {
        const dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);

        if (h->mode != DMG_HOSTDEV_MODE_SUBSYS || h->type != DMG_HOSTDEV_SUBSYS_PCI)
            continue;
        /* DMG_PCI_BACKEND_OTHER: a name libvirt's parser refuses (so does
         * `virsh define`: such a domain never reaches this check), or xen. */
        switch (dmg_hostdev_pci_backend(h)) {
        case DMG_PCI_BACKEND_DEFAULT:
            if (caps && !caps->pci_backend_default)
                dmg_libvirt_no_vfio(m, h, "host doesn't support passthrough of host PCI devices");
            break;
        case DMG_PCI_BACKEND_VFIO:
            if (caps && !caps->pci_backend_vfio)
                dmg_libvirt_no_vfio(m, h, "host doesn't support VFIO PCI passthrough");
            break;
        case DMG_PCI_BACKEND_KVM: {
            g_autofree char *msg = g_strdup_printf(_("%s: <driver name='kvm'/> asks for legacy KVM device assignment, which libvirt removed in 5.7.0, so libvirt refuses to start the domain (\"unsupported configuration: host doesn't support legacy PCI passthrough\"). Remove <driver name='kvm'/>: the default backend is VFIO"),
                                                   h->alias);

            vmm_findings__error(&m->findings, "libvirt-hostdev-backend-kvm", h->alias, msg);
            break;
        }
        case DMG_PCI_BACKEND_OTHER:
            break;
        }
    }
}

/*
 * domain_conf.c: the domain model of domain_conf.h: its enum tables, its
 * freeing and its lookups, after libvirt's src/conf/domain_conf.c
 * (VIR_ENUM_IMPL, virDomainDefFree).  The parser that builds it is
 * domain_parse.c with hostdev_conf.c, memory_conf.c, device_conf.c and
 * controller_conf.c.
 */
#include "domain_conf.h"

DMG_ENUM_IMPL(dmgDomainVirt, DMG_DOMAIN_VIRT_LAST, "qemu", "kvm", "hvf");
DMG_ENUM_IMPL(dmgIoapic, DMG_IOAPIC_LAST, "default", "kvm", "qemu");
DMG_ENUM_IMPL(dmgLaunchSecurity, DMG_LAUNCH_SECURITY_LAST, "", "sev", "s390-pv");
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
DMG_ENUM_IMPL(dmgAddress, DMG_ADDRESS_LAST,
              "none", "pci", "drive", "virtio-serial", "ccid", "usb", "spapr-vio",
              "virtio-s390", "ccw", "virtio-mmio", "isa", "dimm", "unassigned");
DMG_ENUM_IMPL(dmgControllerModelPCI, DMG_CONTROLLER_MODEL_PCI_LAST,
              "pci-root", "pcie-root", "pci-bridge", "dmi-to-pci-bridge",
              "pcie-to-pci-bridge", "pcie-root-port", "pcie-switch-upstream-port",
              "pcie-switch-downstream-port", "pci-expander-bus", "pcie-expander-bus");
DMG_ENUM_IMPL(dmgStorageType, DMG_STORAGE_TYPE_LAST,
              "file", "block", "dir", "network", "volume", "nvme", "vhostuser");

/* ------------------------------------------------------------------ */
/* Freeing                                                             */

void
dmg_hugepage_def_clear(gpointer data)
{
    g_clear_pointer(&((dmgHugepageDef *)data)->nodes, g_free);
}

void
dmg_domain_def_free(dmgDomainDef *def)
{
    if (!def)
        return;
    g_free(def->name);
    g_free(def->uuid);
    g_free(def->arch);
    g_free(def->machine);
    g_free(def->emulator);
    g_free(def->stored_digest);
    g_free(def->stored_checked);
    g_free(def->stored_summary);
    g_ptr_array_unref(def->hostdevs);
    if (def->hugepage_list)
        g_array_unref(def->hugepage_list);
    g_clear_pointer(&def->hostdev_index, g_hash_table_unref);
    g_ptr_array_unref(def->memories);
    g_ptr_array_unref(def->parse_warnings);
    g_array_unref(def->numa_cells);
    g_ptr_array_unref(def->numa_cpus);
    g_ptr_array_unref(def->vdpa_interfaces);
    g_array_unref(def->pci_controllers);
    g_free(def->memory_align_error);
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

/* ------------------------------------------------------------------ */
/* Lookups                                                             */

dmgHostdevDef *
dmg_domain_def_find_hostdev(const dmgDomainDef *cdef, const char *alias)
{
    /* A cache, not a change of the definition: the verdict looks a
     * hostdev up per finding and per blocker, which was quadratic in the
     * number of hostdevs (issue 14). */
    dmgDomainDef *def = (dmgDomainDef *)cdef;

    if (!alias)
        return NULL;
    if (!def->hostdev_index || def->hostdev_index_len != def->hostdevs->len) {
        g_clear_pointer(&def->hostdev_index, g_hash_table_unref);
        def->hostdev_index = g_hash_table_new(g_str_hash, g_str_equal);
        for (guint i = 0; i < def->hostdevs->len; i++) {
            dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);

            if (h->alias && !g_hash_table_contains(def->hostdev_index, h->alias))
                g_hash_table_insert(def->hostdev_index, h->alias, h);
        }
        def->hostdev_index_len = def->hostdevs->len;
    }
    return g_hash_table_lookup(def->hostdev_index, alias);
}

dmgPCIBackend
dmg_hostdev_pci_backend(const dmgHostdevDef *h)
{
    if (!h->driver_name)
        return DMG_PCI_BACKEND_DEFAULT;
    if (g_str_equal(h->driver_name, "vfio"))
        return DMG_PCI_BACKEND_VFIO;
    if (g_str_equal(h->driver_name, "kvm"))
        return DMG_PCI_BACKEND_KVM;
    return DMG_PCI_BACKEND_OTHER;
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

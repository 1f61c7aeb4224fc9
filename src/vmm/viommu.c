/*
 * viommu.c: vIOMMU configuration rules.
 */
#include "viommu.h"

#include "dmg_i18n.h"

static const char *const viommu_names[] = {
    [VIOMMU_INTEL] = "intel-iommu",
    [VIOMMU_SMMUV3] = "smmuv3",
    [VIOMMU_VIRTIO] = "virtio-iommu",
    [VIOMMU_AMD] = "amd-iommu",
};

const char *
viommu__name(const viommu *iommu)
{
    return viommu_names[iommu->cfg.model];
}

bool
viommu__dma_translation_off(const viommu *iommu)
{
    return iommu && iommu->cfg.model == VIOMMU_INTEL && iommu->cfg.dma_translation == VMM_OFF;
}

static bool
viommu__check(vmm_machine *m, const viommu_config *cfg)
{
    bool ok = true;

    /* The machine and interrupt remapping rules are libvirt's, checked
     * before QEMU ever runs (qemu_ext/libvirt_validate.c).
     * vtd_decide_config(): x2APIC interrupt remapping is KVM's split
     * irqchip; TCG has none: "eim=on requires accel=kvm,kernel-irqchip=split" */
    if (cfg->model == VIOMMU_INTEL && cfg->eim == VMM_ON && !m->cfg.kvm) {
        vmm_findings__error(&m->findings, vmm_error_code__to_string(VMM_ERR_IOMMU_EIM_NEEDS_KVM),
                           cfg->alias,
                           _("eim=on requires accel=kvm,kernel-irqchip=split: QEMU refuses extended interrupt mode under TCG; use <domain type='kvm'> or remove eim='on'"));
        ok = false;
    }
    /* vtd_decide_config() (hw/i386/intel_iommu.c, QEMU 7.2): "Currently
     * only address widths supported are 39 and 48 bits". */
    if (cfg->model == VIOMMU_INTEL && cfg->aw_bits && cfg->aw_bits != 39 && cfg->aw_bits != 48) {
        g_autofree char *aw = g_strdup_printf(_("Supported values for aw-bits are: 39, 48; QEMU refuses intel-iommu with aw_bits='%u'. Give aw_bits='39' or '48', or leave it out"),
                                              cfg->aw_bits);

        vmm_findings__error(&m->findings, vmm_error_code__to_string(VMM_ERR_IOMMU_AW_BITS),
                            cfg->alias, aw);
        ok = false;
    }
    return ok;
}

viommu *
viommu__realize(vmm_machine *m, const viommu_config *cfg)
{
    viommu *iommu;

    /* Keep going after a configuration error: QEMU would stop here, but a
     * report that also shows what the devices behind it would do is more
     * useful than one that stops at the first mistake. */
    viommu__check(m, cfg);
    iommu = g_new0(viommu, 1);
    iommu->cfg = *cfg;
    iommu->alias = g_strdup(cfg->alias);
    iommu->cfg.alias = iommu->alias;
    return iommu;
}

void
viommu__free(viommu *iommu)
{
    if (!iommu)
        return;
    g_free(iommu->alias);
    g_free(iommu);
}

/* vtd_iommu_notify_flag_changed(): without caching mode the guest never
 * tells the host about new mappings, so VFIO could not shadow them. */
bool
viommu__notify_vfio(viommu *iommu, const char *device, GError **error)
{
    if (iommu->cfg.model != VIOMMU_INTEL || iommu->cfg.caching_mode == VMM_ON)
        return true;
    g_set_error(error, VMM_ERROR, VMM_ERR_IOMMU_CACHING_MODE_REQUIRED,
                _("%s: We need to set caching-mode=on for intel-iommu to enable device assignment with IOMMU protection; set <driver caching_mode='on'/> in <iommu>"),
                device);
    return false;
}

void
viommu__assume_caching_mode(viommu *iommu)
{
    iommu->cfg.caching_mode = VMM_ON;
}

/*
 * machine.c: the machine object: it creates and frees every device
 * (QEMU's hw/core/machine.c), takes the discard disables of its
 * accelerator and memory backend, and evaluates the conditions that
 * depend on every device once creation is done.
 */
#include "machine.h"

#include <errno.h>

#include "dmg_i18n.h"
#include "migration/savevm.h"
#include "vfio/container.h"
#include "vfio/device.h"
#include "vfio/listener.h"
#include "virtio/balloon.h"
#include "virtio/memory_device.h"
#include "viommu.h"

vmm_machine *
vmm_machine__new(const vmm_machine_config *cfg)
{
    vmm_machine *m = g_new0(vmm_machine, 1);

    m->cfg = *cfg;
    m->cfg.arch = g_strdup(cfg->arch ? cfg->arch : "x86_64");
    m->cfg.machine_name = g_strdup(cfg->machine_name);
    discard_manager__init(&m->discard);
    migration_blockers__init(&m->migration);
    vmm_findings__init(&m->findings);
    m->address_spaces = g_ptr_array_new_with_free_func((GDestroyNotify)vfio_address_space__free);
    m->groups = g_ptr_array_new();
    m->group_index = g_hash_table_new(g_direct_hash, g_direct_equal);
    m->devices = g_ptr_array_new();
    m->memory_devices = g_ptr_array_new();
    m->savevm = g_ptr_array_new_with_free_func((GDestroyNotify)savevm_entry__free);
    discard_inhibitor__init(&m->kvm_inhibitor, "kvm-no-sync-mmu", -1);
    discard_inhibitor__init(&m->lock_inhibitor, "memory-locked", -1);
    discard_inhibitor__init(&m->cgs_inhibitor,
                            cfg->confidential == VMM_CONFIDENTIAL_S390_PV ? "s390-pv" : "sev", -1);
    m->vdpa_inhibitors = g_ptr_array_new();
    vfio_address_space__get(m, "memory", false);
    m->memory_device_plugged = vfio_containers__memory_device_plugged;
    return m;
}

void
vmm_machine__free(vmm_machine *m)
{
    if (!m)
        return;
    /* Unrealize in reverse, so every group drops its discard disable and
     * the counters are back to zero before they are freed. */
    while (m->devices->len)
        vfio_device__unrealize(m, g_ptr_array_index(m->devices, m->devices->len - 1));
    for (guint i = 0; i < m->memory_devices->len; i++) {
        memory_device *md = g_ptr_array_index(m->memory_devices, i);

        if (md->cfg.model == MEMORY_DEVICE_VIRTIO_MEM)
            discard_manager__coordinated_require(&m->discard, false);
        memory_device__free(md);
    }
    if (g_ptr_array_find(m->discard.inhibitors, &m->kvm_inhibitor, NULL))
        discard_manager__disable(&m->discard, false, &m->kvm_inhibitor);
    if (g_ptr_array_find(m->discard.inhibitors, &m->lock_inhibitor, NULL))
        discard_manager__disable(&m->discard, false, &m->lock_inhibitor);
    if (g_ptr_array_find(m->discard.inhibitors, &m->cgs_inhibitor, NULL))
        discard_manager__disable(&m->discard, false, &m->cgs_inhibitor);
    for (guint i = 0; i < m->vdpa_inhibitors->len; i++) {
        discard_inhibitor *who = g_ptr_array_index(m->vdpa_inhibitors, i);

        if (g_ptr_array_find(m->discard.inhibitors, who, NULL))
            discard_manager__disable(&m->discard, false, who);
        discard_inhibitor__clear(who);
        g_free(who);
    }
    g_ptr_array_unref(m->vdpa_inhibitors);
    if (m->balloon)
        savevm__unregister(m, m->balloon);
    virtio_balloon__free(m->balloon);
    viommu__free(m->iommu);
    g_ptr_array_unref(m->memory_devices);
    g_ptr_array_unref(m->devices);
    /* Devices unregister as they go; what is left is a bug, but free it. */
    g_ptr_array_unref(m->savevm);
    g_ptr_array_unref(m->groups);
    g_hash_table_unref(m->group_index);
    g_ptr_array_unref(m->address_spaces);
    vmm_findings__destroy(&m->findings);
    discard_inhibitor__clear(&m->kvm_inhibitor);
    discard_inhibitor__clear(&m->lock_inhibitor);
    discard_inhibitor__clear(&m->cgs_inhibitor);
    migration_blockers__destroy(&m->migration);
    discard_manager__destroy(&m->discard);
    g_free((char *)m->cfg.arch);
    g_free((char *)m->cfg.machine_name);
    g_free(m);
}

void
vmm_machine__init_accel(vmm_machine *m)
{
    /* kvm_init() (seed 002, patch 2/4): without a synchronous MMU, KVM
     * keeps using a page after QEMU discarded it. */
    if (m->cfg.kvm && !m->cfg.kvm_sync_mmu)
        discard_manager__disable(&m->discard, true, &m->kvm_inhibitor);
    /* -overcommit mem-lock=on: madvise(MADV_DONTNEED) fails with EINVAL
     * on mlock()ed memory (mm/madvise.c), so no discard can succeed.
     * Modelled as a hard disable, which also makes virtio-mem refuse, as
     * QEMU's virtio-mem does ("Incompatible with mlock"). */
    if (m->cfg.mem_locked)
        discard_manager__disable(&m->discard, true, &m->lock_inhibitor);
    /* sev_kvm_init() (target/i386/sev.c, QEMU 7.2): SEV guest memory is
     * pinned and encrypted, "SEV: Migration is not implemented" once the
     * launch finished.  s390_machine_protect() (hw/s390x/
     * s390-virtio-ccw.c): a protected guest's pages cannot be discarded,
     * and "protected VMs are currently not migratable." once the guest
     * switched to protected mode, which a PV guest does at boot.  A
     * failed disable is QEMU's "cannot disable RAM discard": the holder
     * is not recorded, and the later realize that needs discard fails. */
    if (m->cfg.confidential != VMM_CONFIDENTIAL_NONE &&
        discard_manager__disable(&m->discard, true, &m->cgs_inhibitor) == 0) {
        bool sev = m->cfg.confidential == VMM_CONFIDENTIAL_SEV;

        migration_blockers__add(&m->migration, MIGRATION_LAYER_QEMU,
                                sev ? "sev-guest" : "s390-pv-guest", NULL,
                                sev ? _("QEMU blocks migration of an SEV guest (\"SEV: Migration is not implemented\"): its memory is encrypted with a key of this host's SEV firmware. Shut it down and start it on the destination")
                                    : _("QEMU blocks migration of a protected s390 guest (\"protected VMs are currently not migratable.\"): its memory is sealed by the Ultravisor. Shut it down and start it on the destination"),
                                sev ? "SEV: Migration is not implemented"
                                    : "protected VMs are currently not migratable.");
    }
    /* vhost_vdpa_init() (hw/virtio/vhost-vdpa.c, QEMU 7.2): "Similar to
     * VFIO, we end up pinning all guest memory and have to disable
     * discarding of RAM." */
    for (const char *const *nic = m->cfg.vdpa_netdevs; nic && *nic; nic++) {
        discard_inhibitor *who = g_new0(discard_inhibitor, 1);

        discard_inhibitor__init(who, "vhost-vdpa", -1);
        g_ptr_array_add(who->devices, g_strdup(*nic));
        g_ptr_array_add(m->vdpa_inhibitors, who);
        discard_manager__disable(&m->discard, true, who);
    }
}

/* Conditions that only make sense once every device exists.  Seed 004:
 * with x-migration-iommu-pt on every device, a vIOMMU no longer blocks
 * migration up front; vfio_listener_region_add() cancels it instead when
 * the guest creates the first vIOMMU mapping during migration. */
void
vmm_machine__done(vmm_machine *m)
{
    bool behind_viommu = false;

    if (m->balloon && !virtio_balloon__inhibited(m) && virtio_balloon__partial(m->balloon)) {
        g_autofree char *size = g_format_size_full(m->balloon->host_page_size, G_FORMAT_SIZE_IEC_UNITS);
        g_autofree char *msg = g_strdup_printf(_("guest memory is backed by %s huge pages; the balloon frees a huge page only after the guest inflated every 4 KiB page of it, so it returns memory slowly and partially. Use virtio-mem with a matching block size for predictable resizing"),
                                               size);

        vmm_findings__warn(&m->findings, "hugepage-partial-discard", m->balloon->alias, msg);
    }

    for (guint i = 0; i < m->devices->len; i++)
        behind_viommu |= vfio_device__viommu_present(g_ptr_array_index(m->devices, i));
    if (behind_viommu && m->cfg.compat.x_migration_iommu_pt &&
        vfio_devices__all_iommu_passthrough(m))
        migration_blockers__add_condition(&m->migration, "viommu-passthrough-cancel",
                                          _("migration will be cancelled if the guest maps DMA through the vIOMMU: every VFIO device has x-migration-iommu-pt, so the vIOMMU may be used for interrupt remapping only (seed 004)"));
}

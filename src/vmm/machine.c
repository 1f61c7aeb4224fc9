/*
 * machine.c: the machine object, its accelerator and memory backend, and
 * the findings a realize leaves behind.
 */
#include "machine.h"

#include <errno.h>

#include "balloon.h"
#include "memory_device.h"
#include "savevm.h"
#include "dmg_enum.h"
#include "dmg_i18n.h"
#include "vfio.h"
#include "viommu.h"

G_DEFINE_QUARK(vmm-error-quark, vmm_error)

static const char *const vmm_error_codes[] = {
    [VMM_ERR_BALLOON_OPTIN_NOT_MDEV] = "balloon-optin-not-mdev",
    [VMM_ERR_BALLOON_OPTIN_INCONSISTENT_GROUP] = "balloon-optin-inconsistent-group",
    [VMM_ERR_IOMMU_INTREMAP_NEEDS_SPLIT_IOAPIC] = "iommu-intremap-needs-split-ioapic",
    [VMM_ERR_IOMMU_EIM_NEEDS_INTREMAP] = "iommu-eim-needs-intremap",
    [VMM_ERR_IOMMU_EIM_NEEDS_KVM] = "iommu-eim-needs-kvm",
    [VMM_ERR_IOMMU_INTEL_NEEDS_Q35] = "iommu-intel-needs-q35",
    [VMM_ERR_IOMMU_NEEDS_MACHINE] = "iommu-model-needs-machine",
    [VMM_ERR_IOMMU_CACHING_MODE_REQUIRED] = "iommu-caching-mode-required",
    [VMM_ERR_DISCARD_BUSY] = "discard-busy",
    [VMM_ERR_GROUP_ADDRESS_SPACE] = "group-address-space-conflict",
    [VMM_ERR_VFIO_BACKEND] = "vfio-backend",
};
G_STATIC_ASSERT(G_N_ELEMENTS(vmm_error_codes) == VMM_ERR_LAST);

const char *
vmm_error_code__to_string(int code)
{
    return dmg_enum_to_string(vmm_error_codes, VMM_ERR_LAST, code);
}

static void
vmm_finding__free(vmm_finding *f)
{
    g_free(f->code);
    g_free(f->device);
    g_free(f->message);
    g_free(f);
}

static void
vmm_findings__add(GPtrArray *list, const char *code, const char *device,
                  const char *message)
{
    vmm_finding *f;

    /* The same warning for the same device once is enough. */
    for (guint i = 0; i < list->len; i++) {
        f = g_ptr_array_index(list, i);
        if (g_strcmp0(f->code, code) == 0 && g_strcmp0(f->device, device) == 0 &&
            g_strcmp0(f->message, message) == 0)
            return;
    }
    f = g_new0(vmm_finding, 1);
    f->code = g_strdup(code);
    f->device = g_strdup(device);
    f->message = g_strdup(message);
    g_ptr_array_add(list, f);
}

void
vmm_machine__error(vmm_machine *m, const char *code, const char *device,
                   const char *message)
{
    vmm_findings__add(m->errors, code, device, message);
}

void
vmm_machine__warn(vmm_machine *m, const char *code, const char *device,
                  const char *message)
{
    vmm_findings__add(m->warnings, code, device, message);
}

void
vmm_machine__error_from(vmm_machine *m, const char *device, const GError *err)
{
    const char *code = err->domain == VMM_ERROR
                       ? vmm_error_code__to_string(err->code) : NULL;

    vmm_machine__error(m, code ? code : "realize-failed", device, err->message);
}

vmm_machine *
vmm_machine__new(const vmm_machine_config *cfg)
{
    vmm_machine *m = g_new0(vmm_machine, 1);

    m->cfg = *cfg;
    m->cfg.arch = g_strdup(cfg->arch ? cfg->arch : "x86_64");
    discard_manager__init(&m->discard);
    migration_blockers__init(&m->migration);
    m->errors = g_ptr_array_new_with_free_func((GDestroyNotify)vmm_finding__free);
    m->warnings = g_ptr_array_new_with_free_func((GDestroyNotify)vmm_finding__free);
    m->address_spaces = g_ptr_array_new_with_free_func((GDestroyNotify)vfio_address_space__free);
    m->groups = g_ptr_array_new();
    m->devices = g_ptr_array_new();
    m->memory_devices = g_ptr_array_new();
    m->savevm = g_ptr_array_new_with_free_func((GDestroyNotify)savevm_entry__free);
    discard_inhibitor__init(&m->kvm_inhibitor, "kvm-no-sync-mmu", -1);
    discard_inhibitor__init(&m->lock_inhibitor, "memory-locked", -1);
    vfio_address_space__get(m, "memory", false);
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
    if (m->balloon)
        savevm__unregister(m, m->balloon);
    virtio_balloon__free(m->balloon);
    viommu__free(m->iommu);
    g_ptr_array_unref(m->memory_devices);
    g_ptr_array_unref(m->devices);
    /* Devices unregister as they go; what is left is a bug, but free it. */
    g_ptr_array_unref(m->savevm);
    g_ptr_array_unref(m->groups);
    g_ptr_array_unref(m->address_spaces);
    g_ptr_array_unref(m->errors);
    g_ptr_array_unref(m->warnings);
    discard_inhibitor__clear(&m->kvm_inhibitor);
    discard_inhibitor__clear(&m->lock_inhibitor);
    migration_blockers__destroy(&m->migration);
    discard_manager__destroy(&m->discard);
    g_free((char *)m->cfg.arch);
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
}

guint
vmm_machine__virtio_mem_count(const vmm_machine *m)
{
    guint n = 0;

    for (guint i = 0; i < m->memory_devices->len; i++) {
        const memory_device *md = g_ptr_array_index(m->memory_devices, i);

        n += md->cfg.model == MEMORY_DEVICE_VIRTIO_MEM;
    }
    return n;
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

        vmm_machine__warn(m, "hugepage-partial-discard", m->balloon->alias, msg);
    }

    for (guint i = 0; i < m->devices->len; i++)
        behind_viommu |= vfio_device__viommu_present(g_ptr_array_index(m->devices, i));
    if (behind_viommu && m->cfg.compat.x_migration_iommu_pt &&
        vfio_devices__all_iommu_passthrough(m))
        migration_blockers__add_condition(&m->migration, "viommu-passthrough-cancel",
                                          _("migration will be cancelled if the guest maps DMA through the vIOMMU: every VFIO device has x-migration-iommu-pt, so the vIOMMU may be used for interrupt remapping only (seed 004)"));
}

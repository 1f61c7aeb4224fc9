/*
 * error.c: the VMM_ERROR codes and the findings sink.
 */
#include "error.h"

#include "dmg_enum.h"

G_DEFINE_QUARK(vmm-error-quark, vmm_error)

static const char *const vmm_error_codes[] = {
    [VMM_ERR_BALLOON_OPTIN_NOT_MDEV] = "balloon-optin-not-mdev",
    [VMM_ERR_BALLOON_OPTIN_INCONSISTENT_GROUP] = "balloon-optin-inconsistent-group",
    [VMM_ERR_IOMMU_EIM_NEEDS_KVM] = "iommu-eim-needs-kvm",
    [VMM_ERR_IOMMU_CACHING_MODE_REQUIRED] = "iommu-caching-mode-required",
    [VMM_ERR_IOMMU_AW_BITS] = "iommu-aw-bits-unsupported",
    [VMM_ERR_DISCARD_BUSY] = "discard-busy",
    [VMM_ERR_GROUP_ADDRESS_SPACE] = "group-address-space-conflict",
    [VMM_ERR_VFIO_BACKEND] = "vfio-backend",
    [VMM_ERR_VIRTIO_MEM_BLOCK_SIZE] = "virtio-mem-block-size",
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

void
vmm_findings__init(vmm_findings *f)
{
    f->errors = g_ptr_array_new_with_free_func((GDestroyNotify)vmm_finding__free);
    f->warnings = g_ptr_array_new_with_free_func((GDestroyNotify)vmm_finding__free);
    f->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

void
vmm_findings__destroy(vmm_findings *f)
{
    g_clear_pointer(&f->errors, g_ptr_array_unref);
    g_clear_pointer(&f->warnings, g_ptr_array_unref);
    g_clear_pointer(&f->seen, g_hash_table_unref);
}

static void
vmm_findings__add(vmm_findings *all, GPtrArray *list, const char *code, const char *device,
                  const char *message)
{
    /* The same finding for the same device once is enough.  A NULL device
     * and an empty one differ, hence the mark before it. */
    char *key = g_strdup_printf("%c%s\x1f%c%s\x1f%s", list == all->errors ? 'E' : 'W',
                                code ? code : "", device ? 'D' : '-', device ? device : "",
                                message ? message : "");
    vmm_finding *f;

    if (!g_hash_table_add(all->seen, key))
        return;
    f = g_new0(vmm_finding, 1);
    f->code = g_strdup(code);
    f->device = g_strdup(device);
    f->message = g_strdup(message);
    g_ptr_array_add(list, f);
}

void
vmm_findings__error(vmm_findings *f, const char *code, const char *device,
                    const char *message)
{
    vmm_findings__add(f, f->errors, code, device, message);
}

void
vmm_findings__warn(vmm_findings *f, const char *code, const char *device,
                   const char *message)
{
    vmm_findings__add(f, f->warnings, code, device, message);
}

void
vmm_findings__error_from(vmm_findings *f, const char *device, const GError *err)
{
    const char *code = err->domain == VMM_ERROR
                       ? vmm_error_code__to_string(err->code) : NULL;

    vmm_findings__error(f, code ? code : "realize-failed", device, err->message);
}

/*
 * error.h: where a device's realize reports what it found, below every
 * device so that none needs the machine's own code: the VMM_ERROR codes
 * (named as in docs/codes.rst) and the findings sink, QEMU's Error and
 * warn_report() in one place.
 */
#pragma once

#include <glib.h>

/* Error codes of device realize. */
typedef enum {
    VMM_ERR_BALLOON_OPTIN_NOT_MDEV,
    VMM_ERR_BALLOON_OPTIN_INCONSISTENT_GROUP,
    VMM_ERR_IOMMU_EIM_NEEDS_KVM,
    VMM_ERR_IOMMU_CACHING_MODE_REQUIRED,
    VMM_ERR_IOMMU_AW_BITS,
    VMM_ERR_DISCARD_BUSY,
    VMM_ERR_GROUP_ADDRESS_SPACE,
    VMM_ERR_VFIO_BACKEND,
    VMM_ERR_VIRTIO_MEM_BLOCK_SIZE,
    VMM_ERR_LAST
} vmm_error_code;

#define VMM_ERROR (vmm_error_quark())
GQuark vmm_error_quark(void);
/* The stable code string of a VMM_ERROR code, e.g. "balloon-optin-not-mdev". */
const char *vmm_error_code__to_string(int code);

typedef struct vmm_finding {
    char *code;
    char *device;                        /* alias or NULL */
    char *message;
} vmm_finding;

/* What a realize left behind: errors (QEMU or libvirt would refuse the
 * domain) and warnings.  The same finding for the same device is kept
 * once. */
typedef struct vmm_findings {
    GPtrArray *errors;                   /* vmm_finding * */
    GPtrArray *warnings;                 /* vmm_finding * */
    /* "E|W code\x1fdevice\x1fmessage" of every finding, so that adding
     * one stays O(1) with tens of thousands of devices (issue 14). */
    GHashTable *seen;
} vmm_findings;

void vmm_findings__init(vmm_findings *f);
void vmm_findings__destroy(vmm_findings *f);
void vmm_findings__error(vmm_findings *f, const char *code, const char *device,
                         const char *message);
void vmm_findings__warn(vmm_findings *f, const char *code, const char *device,
                        const char *message);
/* Record a failed realize as an error finding on @device. */
void vmm_findings__error_from(vmm_findings *f, const char *device,
                              const GError *err);

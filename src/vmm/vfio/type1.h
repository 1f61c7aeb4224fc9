/*
 * vfio/type1.h: the VFIO type1 IOMMU backend on the Linux uAPI
 * (<linux/vfio.h>): /dev/vfio/<group> and /dev/vfio/vfio, with the ioctl
 * sequence of QEMU's vfio_get_group() and vfio_connect_container()
 * (seeds 000, 002).
 *
 * Every open(), ioctl() and close() goes through a vfio_type1_sys, so a
 * test can record the sequence and fail any step without /dev/vfio.
 */
#pragma once

#include <glib.h>

#include "vfio/vfio.h"

/* The system calls the backend makes.  For VFIO_CHECK_EXTENSION and
 * VFIO_SET_IOMMU the integer argument is passed as (void *)(uintptr_t);
 * for VFIO_GET_API_VERSION and VFIO_GROUP_UNSET_CONTAINER @arg is NULL.
 * Each returns what the syscall returns and sets errno on failure. */
typedef struct vfio_type1_sys {
    int (*open)(const char *path, int flags);
    int (*ioctl)(int fd, unsigned long req, void *arg);
    int (*close)(int fd);
} vfio_type1_sys;

extern const vfio_backend_ops vfio_backend_type1;

/* Replace the system calls (tests); NULL restores the real ones.  The
 * pointer is kept, not copied. */
void vfio_type1__set_sys(const vfio_type1_sys *sys);

/* The IOMMU type VFIO_SET_IOMMU set (VFIO_TYPE1v2_IOMMU or
 * VFIO_TYPE1_IOMMU) and the page sizes VFIO_IOMMU_GET_INFO reported, of
 * a container this backend opened; 0 before they are known. */
guint32 vfio_type1__iommu_type(const vfio_container *container);
guint64 vfio_type1__iova_pgsizes(const vfio_container *container);

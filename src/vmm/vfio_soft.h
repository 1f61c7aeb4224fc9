/*
 * vfio_soft.h: the soft IOMMU, an in-process stand-in for VFIO type1 on
 * hosts without /dev/vfio.
 *
 * Pinning is real: guest RAM is registered with io_uring as fixed buffers
 * (io_uring_register_buffers_update_tag on a sparse table), which takes a
 * long-term pin on every page, as type1's pin_user_pages does.  The page
 * table maps IOVA -> host page, and records each page's PFN from
 * /proc/self/pagemap at map time.  The DMA engine moves data between
 * guest memory and a memfd with IORING_OP_READ_FIXED / WRITE_FIXED, that
 * is through the pinned pages, the way an assigned device sees memory.
 *
 * So when the balloon zaps a pinned page (MADV_DONTNEED) and the CPU
 * faults in a new one, the device keeps seeing the old page: seed 000's
 * "Badness", reproduced on the real kernel.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vfio.h"

/* The backend: vfio_backend_ops with dma_map/dma_unmap. */
extern const vfio_backend_ops vfio_backend_soft;

typedef struct soft_iommu soft_iommu;

/* The soft IOMMU behind a container (container->backend_data). */
soft_iommu *vfio_soft__iommu(vfio_container *container);

/* DMA through the IOMMU: device reads guest memory at @iova (memory ->
 * device, WRITE_FIXED) or writes it (device -> memory, READ_FIXED).
 * Fails with a clear error for an unmapped IOVA. */
gboolean soft_iommu__dma_read(soft_iommu *io, guint64 iova, void *buf, gsize len,
                              GError **error);
gboolean soft_iommu__dma_write(soft_iommu *io, guint64 iova, const void *buf,
                               gsize len, GError **error);

typedef struct soft_audit {
    guint64 pages;                       /* mapped IOVA pages checked */
    guint64 stale;                       /* PFN at map time != PFN now */
    guint64 not_present;                 /* CPU side not populated now */
    guint64 first_stale_iova;            /* G_MAXUINT64 if none */
} soft_audit;

/* The coherence auditor: for every mapped IOVA page, compare the PFN the
 * IOMMU holds with the PFN the CPU sees now (/proc/self/pagemap). */
gboolean soft_iommu__audit(soft_iommu *io, soft_audit *out, GError **error);

/* Pages and bytes pinned right now (the leak checks use it). */
guint64 soft_iommu__pinned_pages(soft_iommu *io);
/* Pages pinned by every soft IOMMU in the process. */
guint64 vfio_soft__pinned_pages_total(void);

/* Fault injection for tests: make the next dma_map fail as if pinning hit
 * RLIMIT_MEMLOCK (ENOMEM). */
void vfio_soft__fail_next_map(int err);

/*
 * vfio/soft.h: the soft IOMMU, an in-process stand-in for VFIO type1 on
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

#include "vfio/vfio.h"

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

/* ------------------------------------------------------------------ */
/* DMA dirty logging (used by vfio/migration_v2_savevm.c)                        */

/* One IOVA range, as struct vfio_device_feature_dma_logging_range. */
typedef struct soft_dirty_range {
    guint64 iova;
    guint64 length;
} soft_dirty_range;

typedef struct soft_dirty_log soft_dirty_log;

/*
 * The recording half of VFIO_DEVICE_FEATURE_DMA_LOGGING_START/_REPORT/
 * _STOP.  While a log is open, every device write through
 * soft_iommu__dma_write() marks the pages of @page_size it touches inside
 * @ranges (sorted, non-overlapping, @page_size aligned: the caller
 * validates them as vfio_ioctl_device_feature_logging_start() does).
 * Reads are never logged.  The soft IOMMU cannot tell which device of a
 * container issued a write, so every open log of the container sees every
 * write: more pages than one device wrote, never fewer.  The bitmap is
 * sparse, so a log may cover a whole IOVA space.
 */
soft_dirty_log *soft_iommu__log_start(soft_iommu *io, const soft_dirty_range *ranges,
                                      guint nranges, guint64 page_size);
/* log_read_and_clear(): set (never clear) the bit of every @page_size unit
 * of [iova, iova + length) with a logged page in it, bit n of
 * bitmap[n / 64] for iova + n * page_size; and forget the logged pages
 * the range touches.  @page_size is a power of two >= 4096, @iova and
 * @length multiples of it. */
void soft_iommu__log_report(soft_iommu *io, soft_dirty_log *log, guint64 iova,
                            guint64 length, guint64 page_size, guint64 *bitmap);
void soft_iommu__log_stop(soft_iommu *io, soft_dirty_log *log);

/* Every mapping of @io, sorted by IOVA (soft_dirty_range elements). */
GArray *soft_iommu__mappings(soft_iommu *io);
/* The host address @iova maps to and how many bytes of the mapping follow
 * it; FALSE when @iova is not mapped. */
gboolean soft_iommu__translate(soft_iommu *io, guint64 iova, void **hva,
                               guint64 *len);

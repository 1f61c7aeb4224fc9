/*
 * vfio/soft_priv.h: what the files of the soft IOMMU share, and no one
 * else: vfio/soft.c (the backend ops, containers and groups, the IOVA page
 * table and dma_map/dma_unmap), vfio/soft_pin.c (pinning with io_uring
 * fixed buffers, the pinned-page count, /proc/self/pagemap) and
 * vfio/soft_dma.c (the device side: DMA through the pinned pages, DMA
 * dirty logging, the coherence auditor).  Everyone else uses vfio/soft.h.
 *
 * Locking: io->lock guards everything in struct soft_iommu; the helpers
 * below expect it held unless they say otherwise.
 *
 * This header does not include vfio/soft.h: vfio/soft.c includes both, and
 * a .c with its .h counts as one unit for the include-circle check, so
 * that include would close a circle.  It repeats the two typedefs it needs
 * instead (C11 allows a typedef to be repeated).
 */
#pragma once

#include <glib.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* IORING_MAX_REG_BUFFERS */
#define SOFT_TABLE_SLOTS    16384u
/* io_buffer_validate(): iov_len <= SZ_1G */
#define SOFT_CHUNK_MAX      (1ULL << 30)
/* Largest single transfer through the memfd. */
#define SOFT_BOUNCE_MAX     (4u << 20)

/* /proc/pid/pagemap, Documentation/admin-guide/mm/pagemap.rst */
#define PM_PRESENT          (1ULL << 63)
#define PM_PFN_MASK         ((1ULL << 55) - 1)
#define PFN_NONE            G_MAXUINT64

/* As in vfio/soft.h. */
typedef struct soft_iommu soft_iommu;
typedef struct soft_dirty_log soft_dirty_log;

typedef struct soft_mapping {
    guint64 iova;
    guint64 size;
    guint8 *vaddr;
    bool readonly;
    guint nchunks;
    guint *slots;                        /* table index of each chunk */
    guint64 *pfns;                       /* per page, at map time */
} soft_mapping;

struct soft_iommu {
    GMutex lock;
    struct io_uring ring;
    bool ring_ok;
    bool table_ok;
    int memfd;
    int pagemap_fd;
    gsize page_size;
    GPtrArray *maps;                     /* soft_mapping *, sorted by iova */
    guint8 *slot_used;
    guint slot_hint;
    guint slots_free;
    guint64 pinned_pages;
    guint groups;
    bool pfns_hidden;                    /* pagemap shows PFN 0: no CAP_SYS_ADMIN */
    GPtrArray *logs;                     /* soft_dirty_log *: DMA logging */
};

static inline guint64
soft_mapping__end(const soft_mapping *m)
{
    return m->iova + m->size;
}

/* vfio/soft.c: the IOVA table */

soft_mapping *soft_maps__lookup(soft_iommu *io, guint64 iova);

/* vfio/soft_pin.c: pinning */

void soft_pinned__add(soft_iommu *io, guint64 pages);
void soft_pinned__sub(soft_iommu *io, guint64 pages);
int soft_slot__alloc(soft_iommu *io);
void soft_slot__release(soft_iommu *io, guint slot);
void soft_mapping__unpin(soft_iommu *io, soft_mapping *m, guint nchunks);
int soft_fd__pio(int fd, bool write, void *buf, gsize len, off_t off);
int soft_pagemap__read(soft_iommu *io, const guint8 *vaddr, guint64 npages,
                       guint64 *entries);

/* vfio/soft_dma.c: DMA dirty logging (io->logs' free function) */

void soft_dirty_log__free(soft_dirty_log *log);

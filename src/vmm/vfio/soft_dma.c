/*
 * vfio/soft_dma.c: the device side of the soft IOMMU (see vfio/soft.h):
 * what an assigned device's DMA goes through.  The engine translates and
 * faults like the IOMMU hardware; DMA dirty logging is the recording half
 * of VFIO_DEVICE_FEATURE_DMA_LOGGING_* (the kernel's drivers/vfio/
 * vfio_main.c and iova_bitmap.c); the coherence auditor is dmaguard's own.
 *
 * DMA: IORING_OP_WRITE_FIXED / READ_FIXED between the registered buffer
 * and a memfd, the "device".  The kernel copies through the buffer's
 * pinned page array, never through the process page tables, so a page the
 * balloon zapped and the CPU refaulted is invisible to the device.
 */
#include "vfio/soft_priv.h"

#include <errno.h>
#include <inttypes.h>

#include "dmg_i18n.h"
#include "vfio/soft.h"

/* 512 logged pages per chunk of the sparse dirty bitmap. */
#define SOFT_LOG_CHUNK_SHIFT 9u
#define SOFT_LOG_CHUNK_WORDS ((1u << SOFT_LOG_CHUNK_SHIFT) / 64u)

typedef struct soft_dirty_chunk {
    guint64 index;                       /* first page >> SOFT_LOG_CHUNK_SHIFT; the key */
    guint64 bits[SOFT_LOG_CHUNK_WORDS];
} soft_dirty_chunk;

struct soft_dirty_log {
    guint page_shift;
    GArray *ranges;                      /* soft_dirty_range, sorted */
    GHashTable *chunks;                  /* &chunk->index -> soft_dirty_chunk */
};

/* ------------------------------------------------------------------ */
/* DMA dirty logging: a sparse bitmap of pages per log                 */

void
soft_dirty_log__free(soft_dirty_log *log)
{
    g_array_unref(log->ranges);
    g_hash_table_unref(log->chunks);
    g_free(log);
}

static void
soft_dirty_log__set(soft_dirty_log *log, guint64 page)
{
    guint64 index = page >> SOFT_LOG_CHUNK_SHIFT;
    guint bit = (guint)(page & ((1u << SOFT_LOG_CHUNK_SHIFT) - 1));
    soft_dirty_chunk *c = g_hash_table_lookup(log->chunks, &index);

    if (!c) {
        c = g_new0(soft_dirty_chunk, 1);
        c->index = index;
        g_hash_table_insert(log->chunks, &c->index, c);
    }
    c->bits[bit / 64] |= 1ULL << (bit % 64);
}

/* A device write of [iova, iova + len): mark it in every open log, inside
 * the ranges the log covers.  Called with io->lock held. */
static void
soft_iommu__log_write(soft_iommu *io, guint64 iova, gsize len)
{
    guint64 end = iova + len;

    for (guint l = 0; l < io->logs->len; l++) {
        soft_dirty_log *log = g_ptr_array_index(io->logs, l);

        for (guint r = 0; r < log->ranges->len; r++) {
            soft_dirty_range *rg = &g_array_index(log->ranges, soft_dirty_range, r);
            guint64 s = MAX(iova, rg->iova), e = MIN(end, rg->iova + rg->length);

            if (s >= e)
                continue;
            for (guint64 p = s >> log->page_shift; p <= (e - 1) >> log->page_shift; p++)
                soft_dirty_log__set(log, p);
        }
    }
}

soft_dirty_log *
soft_iommu__log_start(soft_iommu *io, const soft_dirty_range *ranges, guint nranges,
                      guint64 page_size)
{
    soft_dirty_log *log = g_new0(soft_dirty_log, 1);

    g_return_val_if_fail(page_size && !(page_size & (page_size - 1)), NULL);
    log->page_shift = (guint)g_bit_nth_lsf(page_size, -1);
    log->ranges = g_array_sized_new(FALSE, FALSE, sizeof(soft_dirty_range), nranges);
    g_array_append_vals(log->ranges, ranges, nranges);
    log->chunks = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
    g_mutex_lock(&io->lock);
    g_ptr_array_add(io->logs, log);
    g_mutex_unlock(&io->lock);
    return log;
}

void
soft_iommu__log_report(soft_iommu *io, soft_dirty_log *log, guint64 iova,
                       guint64 length, guint64 page_size, guint64 *bitmap)
{
    guint64 end = iova + length;
    GHashTableIter it;
    soft_dirty_chunk *c;

    g_mutex_lock(&io->lock);
    g_hash_table_iter_init(&it, log->chunks);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&c)) {
        bool empty = true;

        for (guint w = 0; w < SOFT_LOG_CHUNK_WORDS; w++) {
            for (guint b = 0; b < 64 && c->bits[w]; b++) {
                guint64 page = (c->index << SOFT_LOG_CHUNK_SHIFT) + w * 64 + b;
                guint64 ps = page << log->page_shift, pe = ps + (1ULL << log->page_shift);
                guint64 s = MAX(ps, iova), e = MIN(pe, end);

                if (!(c->bits[w] & (1ULL << b)) || s >= e)
                    continue;
                /* iova_bitmap_set(): every report unit the page touches. */
                for (guint64 n = (s - iova) / page_size; n <= (e - 1 - iova) / page_size; n++)
                    bitmap[n / 64] |= 1ULL << (n % 64);
                c->bits[w] &= ~(1ULL << b);
            }
            empty &= c->bits[w] == 0;
        }
        if (empty)
            g_hash_table_iter_remove(&it);
    }
    g_mutex_unlock(&io->lock);
}

void
soft_iommu__log_stop(soft_iommu *io, soft_dirty_log *log)
{
    if (!log)
        return;
    g_mutex_lock(&io->lock);
    g_ptr_array_remove(io->logs, log);   /* frees it */
    g_mutex_unlock(&io->lock);
}

/* ------------------------------------------------------------------ */
/* The DMA engine                                                      */

/* One fixed-buffer transfer between guest memory and the memfd at
 * offset 0; returns bytes moved or -errno. */
static int
soft_iommu__rw_fixed(soft_iommu *io, bool to_device, void *addr, unsigned len,
                     guint slot)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
    struct io_uring_cqe *cqe;
    int ret;

    if (!sqe)
        return -EBUSY;
    if (to_device)
        io_uring_prep_write_fixed(sqe, io->memfd, addr, len, 0, (int)slot);
    else
        io_uring_prep_read_fixed(sqe, io->memfd, addr, len, 0, (int)slot);
    sqe->user_data = slot;
    do
        ret = io_uring_submit_and_wait(&io->ring, 1);
    while (ret == -EINTR);
    if (ret < 0)
        return ret;
    do
        ret = io_uring_wait_cqe(&io->ring, &cqe);
    while (ret == -EINTR);
    if (ret < 0)
        return ret;
    ret = cqe->res;
    io_uring_cqe_seen(&io->ring, cqe);
    return ret;
}


static gboolean
soft_iommu__dma(soft_iommu *io, guint64 iova, void *buf, gsize len,
                bool to_device, GError **error)
{
    const char *what = to_device ? "read" : "write";
    guint64 cur;
    gsize done;
    int ret;

    g_mutex_lock(&io->lock);
    /* Translate the whole range first: a fault moves no data. */
    for (cur = iova; cur - iova < len;) {
        soft_mapping *m = soft_maps__lookup(io, cur);

        if (!m) {
            g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                        _("soft IOMMU: DMA %s of 0x%zx bytes at iova 0x%" PRIx64 ": iova 0x%" PRIx64 " is not mapped (IOMMU fault): %s"),
                        what, len, iova, cur, g_strerror(EFAULT));
            goto fail;
        }
        if (!to_device && m->readonly) {
            g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                        _("soft IOMMU: DMA write of 0x%zx bytes at iova 0x%" PRIx64 ": the mapping at iova 0x%" PRIx64 " is read-only (IOMMU fault): %s"),
                        len, iova, m->iova, g_strerror(EPERM));
            goto fail;
        }
        if (soft_mapping__end(m) == 0 || soft_mapping__end(m) - iova >= len)
            break;
        cur = soft_mapping__end(m);
    }
    /* DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_START): the device
     * writes the range, mark it before any byte moves. */
    if (!to_device && io->logs->len)
        soft_iommu__log_write(io, iova, len);

    for (done = 0; done < len;) {
        soft_mapping *m;
        guint64 off, chunk, chunk_end;
        unsigned n;

        cur = iova + done;
        m = soft_maps__lookup(io, cur);
        g_assert(m);
        off = cur - m->iova;
        chunk = off / SOFT_CHUNK_MAX;
        chunk_end = MIN((chunk + 1) * SOFT_CHUNK_MAX, m->size);
        n = (unsigned)MIN(MIN((guint64)(len - done), chunk_end - off), SOFT_BOUNCE_MAX);

        if (!to_device && (ret = soft_fd__pio(io->memfd, true, (char *)buf + done, n, 0)) < 0)
            goto io_fail;
        ret = soft_iommu__rw_fixed(io, to_device, m->vaddr + off, n, m->slots[chunk]);
        if (ret < 0)
            goto io_fail;
        if (ret == 0) {
            ret = -EIO;
            goto io_fail;
        }
        n = (unsigned)ret;
        if (to_device && (ret = soft_fd__pio(io->memfd, false, (char *)buf + done, n, 0)) < 0)
            goto io_fail;
        done += n;
    }
    g_mutex_unlock(&io->lock);
    return TRUE;

 io_fail:
    g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                _("soft IOMMU: DMA %s of 0x%zx bytes at iova 0x%" PRIx64 " failed at iova 0x%" PRIx64 ": %s"),
                what, len, iova, cur, g_strerror(-ret));
 fail:
    g_mutex_unlock(&io->lock);
    return FALSE;
}

gboolean
soft_iommu__dma_read(soft_iommu *io, guint64 iova, void *buf, gsize len,
                     GError **error)
{
    return soft_iommu__dma(io, iova, buf, len, true, error);
}

gboolean
soft_iommu__dma_write(soft_iommu *io, guint64 iova, const void *buf, gsize len,
                      GError **error)
{
    return soft_iommu__dma(io, iova, (void *)buf, len, false, error);
}

/* ------------------------------------------------------------------ */
/* The coherence auditor                                               */

#define SOFT_AUDIT_BATCH 65536u

gboolean
soft_iommu__audit(soft_iommu *io, soft_audit *out, GError **error)
{
    g_autofree guint64 *now = g_new(guint64, SOFT_AUDIT_BATCH);
    soft_audit a = { .first_stale_iova = G_MAXUINT64 };

    g_mutex_lock(&io->lock);
    if (io->pfns_hidden) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: /proc/self/pagemap hides page frame numbers from this process (CAP_SYS_ADMIN is needed), so the audit cannot compare them"));
        g_mutex_unlock(&io->lock);
        return FALSE;
    }
    for (guint k = 0; k < io->maps->len; k++) {
        soft_mapping *m = g_ptr_array_index(io->maps, k);
        guint64 npages = m->size / io->page_size;

        for (guint64 p = 0; p < npages; p += SOFT_AUDIT_BATCH) {
            guint64 n = MIN(SOFT_AUDIT_BATCH, npages - p);
            int ret = soft_pagemap__read(io, m->vaddr + p * io->page_size, n, now);

            if (ret < 0) {
                g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                            _("soft IOMMU: audit of iova 0x%" PRIx64 ": reading /proc/self/pagemap failed: %s"),
                            m->iova + p * io->page_size, g_strerror(-ret));
                g_mutex_unlock(&io->lock);
                return FALSE;
            }
            for (guint64 q = 0; q < n; q++) {
                a.pages++;
                if (!(now[q] & PM_PRESENT)) {
                    a.not_present++;
                } else if ((now[q] & PM_PFN_MASK) != m->pfns[p + q]) {
                    if (!a.stale)
                        a.first_stale_iova = m->iova + (p + q) * io->page_size;
                    a.stale++;
                }
            }
        }
    }
    g_mutex_unlock(&io->lock);
    *out = a;
    return TRUE;
}

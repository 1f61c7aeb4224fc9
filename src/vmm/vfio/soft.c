/*
 * vfio/soft.c: the soft IOMMU (see vfio/soft.h).
 *
 * Pinning: every DMA mapping is registered with io_uring as one or more
 * fixed buffers in a sparse table.  The kernel pins each page long term
 * (io_sqe_buffer_register -> pin_user_pages(FOLL_WRITE | FOLL_LONGTERM)),
 * faulting it in, and keeps the pinned page array; VmPin in
 * /proc/self/status counts them.  One registered buffer is limited to
 * 1 GiB (io_buffer_validate), so a larger mapping takes several slots.
 *
 * Translation: IOVA -> (mapping, chunk, offset in the registered buffer).
 * The PFN of every page is read from /proc/self/pagemap right after the
 * pin (FOLL_LONGTERM may migrate a page first) and kept for the auditor.
 *
 * DMA: IORING_OP_WRITE_FIXED / READ_FIXED between the registered buffer
 * and a memfd, the "device".  The kernel copies through the buffer's
 * pinned page array, never through the process page tables, so a page the
 * balloon zapped and the CPU refaulted is invisible to the device.
 */
#include "vfio/soft.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dmg_i18n.h"

#define SOFT_RING_ENTRIES   64u
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

static guint64 soft_pinned_total;        /* atomic */
static int soft_fail_next;               /* atomic */

static void
soft_pinned__add(soft_iommu *io, guint64 pages)
{
    io->pinned_pages += pages;
    __atomic_add_fetch(&soft_pinned_total, pages, __ATOMIC_SEQ_CST);
}

static void
soft_pinned__sub(soft_iommu *io, guint64 pages)
{
    io->pinned_pages -= pages;
    __atomic_sub_fetch(&soft_pinned_total, pages, __ATOMIC_SEQ_CST);
}

guint64
vfio_soft__pinned_pages_total(void)
{
    return __atomic_load_n(&soft_pinned_total, __ATOMIC_SEQ_CST);
}

void
vfio_soft__fail_next_map(int err)
{
    __atomic_store_n(&soft_fail_next, err, __ATOMIC_SEQ_CST);
}

soft_iommu *
vfio_soft__iommu(vfio_container *container)
{
    return container ? container->backend_data : NULL;
}

guint64
soft_iommu__pinned_pages(soft_iommu *io)
{
    guint64 n;

    g_mutex_lock(&io->lock);
    n = io->pinned_pages;
    g_mutex_unlock(&io->lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* Fixed-buffer table                                                  */

static int
soft_slot__alloc(soft_iommu *io)
{
    for (guint n = 0; n < SOFT_TABLE_SLOTS; n++) {
        guint i = (io->slot_hint + n) % SOFT_TABLE_SLOTS;

        if (!io->slot_used[i]) {
            io->slot_used[i] = 1;
            io->slot_hint = (i + 1) % SOFT_TABLE_SLOTS;
            io->slots_free--;
            return (int)i;
        }
    }
    return -1;
}

/* Empty the slot: the kernel drops the buffer and unpins its pages. */
static void
soft_slot__release(soft_iommu *io, guint slot)
{
    struct iovec empty = { 0 };
    __u64 tag = 0;
    int ret = io_uring_register_buffers_update_tag(&io->ring, slot, &empty, &tag, 1);

    if (ret < 0)
        g_warning("soft IOMMU: cannot unregister fixed buffer %u: %s",
                  slot, g_strerror(-ret));
    io->slot_used[slot] = 0;
    io->slots_free++;
}

/* pread/pwrite all of @len at @off, across short transfers and EINTR. */
static int
soft_fd__pio(int fd, bool write, void *buf, gsize len, off_t off)
{
    gsize done = 0;

    while (done < len) {
        ssize_t n = write ? pwrite(fd, (char *)buf + done, len - done, off + (off_t)done)
                          : pread(fd, (char *)buf + done, len - done, off + (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        done += (gsize)n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* pagemap                                                             */

static int
soft_pagemap__read(soft_iommu *io, const guint8 *vaddr, guint64 npages,
                   guint64 *entries)
{
    guint64 off = (guint64)(uintptr_t)vaddr / io->page_size * sizeof(guint64);

    return soft_fd__pio(io->pagemap_fd, false, entries, npages * sizeof(guint64), (off_t)off);
}

/* ------------------------------------------------------------------ */
/* The IOVA table                                                      */

static guint64
soft_mapping__end(const soft_mapping *m)
{
    return m->iova + m->size;
}

/* Index of the first mapping whose iova is >= @iova. */
static guint
soft_maps__lower_bound(soft_iommu *io, guint64 iova)
{
    guint lo = 0, hi = io->maps->len;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        soft_mapping *m = g_ptr_array_index(io->maps, mid);

        if (m->iova < iova)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static soft_mapping *
soft_maps__lookup(soft_iommu *io, guint64 iova)
{
    guint i = soft_maps__lower_bound(io, iova);
    soft_mapping *m;

    if (i < io->maps->len) {
        m = g_ptr_array_index(io->maps, i);
        if (m->iova == iova)
            return m;
    }
    if (i == 0)
        return NULL;
    m = g_ptr_array_index(io->maps, i - 1);
    return iova < soft_mapping__end(m) ? m : NULL;
}

static void
soft_mapping__free(soft_mapping *m)
{
    g_free(m->slots);
    g_free(m->pfns);
    g_free(m);
}

/* Unregister every chunk of @m (the first @nchunks). */
static void
soft_mapping__unpin(soft_iommu *io, soft_mapping *m, guint nchunks)
{
    for (guint i = 0; i < nchunks; i++)
        soft_slot__release(io, m->slots[i]);
}

/* ------------------------------------------------------------------ */
/* DMA dirty logging: a sparse bitmap of pages per log                 */

static void
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

GArray *
soft_iommu__mappings(soft_iommu *io)
{
    GArray *out = g_array_new(FALSE, FALSE, sizeof(soft_dirty_range));

    g_mutex_lock(&io->lock);
    for (guint k = 0; k < io->maps->len; k++) {
        soft_mapping *m = g_ptr_array_index(io->maps, k);
        soft_dirty_range r = { m->iova, m->size };

        g_array_append_val(out, r);
    }
    g_mutex_unlock(&io->lock);
    return out;
}

gboolean
soft_iommu__translate(soft_iommu *io, guint64 iova, void **hva, guint64 *len)
{
    soft_mapping *m;

    g_mutex_lock(&io->lock);
    m = soft_maps__lookup(io, iova);
    if (m) {
        *hva = m->vaddr + (iova - m->iova);
        *len = soft_mapping__end(m) - iova;
    }
    g_mutex_unlock(&io->lock);
    return m != NULL;
}

/* ------------------------------------------------------------------ */
/* dma_map / dma_unmap                                                 */

static int
soft_dma_map(vfio_container *c, guint64 iova, guint64 size, void *vaddr,
             bool readonly, GError **error)
{
    soft_iommu *io = c->backend_data;
    soft_mapping *m;
    guint64 npages;
    guint i, at;
    int inject, ret;

    if (!io) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: map of iova 0x%" PRIx64 ": the container is not open"),
                    iova);
        return -EBADF;
    }
    if (!size || iova % io->page_size || size % io->page_size ||
        (uintptr_t)vaddr % io->page_size) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: cannot map iova 0x%" PRIx64 " size 0x%" PRIx64 " vaddr %p: iova, size and vaddr must be non-zero multiples of the page size (%zu): %s"),
                    iova, size, vaddr, io->page_size, g_strerror(EINVAL));
        return -EINVAL;
    }
    if (iova + size < iova || (uintptr_t)vaddr + size < (uintptr_t)vaddr) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: cannot map iova 0x%" PRIx64 " size 0x%" PRIx64 ": the range wraps around: %s"),
                    iova, size, g_strerror(EOVERFLOW));
        return -EOVERFLOW;
    }

    g_mutex_lock(&io->lock);
    /* vfio_iommu_type1: a new mapping may not overlap an existing one. */
    at = soft_maps__lower_bound(io, iova);
    for (guint k = at > 0 ? at - 1 : 0; k < io->maps->len && k <= at; k++) {
        soft_mapping *o = g_ptr_array_index(io->maps, k);

        if (o->iova < iova + size && iova < soft_mapping__end(o)) {
            g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                        _("soft IOMMU: cannot map iova 0x%" PRIx64 " size 0x%" PRIx64 ": it overlaps the mapping at iova 0x%" PRIx64 " size 0x%" PRIx64 ": %s"),
                        iova, size, o->iova, o->size, g_strerror(EEXIST));
            g_mutex_unlock(&io->lock);
            return -EEXIST;
        }
    }

    m = g_new0(soft_mapping, 1);
    m->iova = iova;
    m->size = size;
    m->vaddr = vaddr;
    m->readonly = readonly;
    m->nchunks = (guint)((size + SOFT_CHUNK_MAX - 1) / SOFT_CHUNK_MAX);
    if (m->nchunks > io->slots_free) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: cannot map iova 0x%" PRIx64 " size 0x%" PRIx64 ": it needs %u fixed buffers and only %u of %u are free: %s"),
                    iova, size, m->nchunks, io->slots_free, SOFT_TABLE_SLOTS,
                    g_strerror(ENOSPC));
        soft_mapping__free(m);
        g_mutex_unlock(&io->lock);
        return -ENOSPC;
    }
    m->slots = g_new0(guint, m->nchunks);
    inject = __atomic_exchange_n(&soft_fail_next, 0, __ATOMIC_SEQ_CST);

    for (i = 0; i < m->nchunks; i++) {
        guint64 off = (guint64)i * SOFT_CHUNK_MAX;
        struct iovec iov = { .iov_base = m->vaddr + off,
                             .iov_len = MIN(SOFT_CHUNK_MAX, size - off) };
        __u64 tag = 0;
        int slot = soft_slot__alloc(io);

        g_assert(slot >= 0);
        /* The injected failure hits the last chunk, so a multi-chunk map
         * unwinds the chunks already pinned. */
        if (inject && i == m->nchunks - 1)
            ret = -inject;
        else
            ret = io_uring_register_buffers_update_tag(&io->ring, (unsigned)slot,
                                                       &iov, &tag, 1);
        if (ret != 1) {
            if (ret >= 0)
                ret = -EIO;
            /* The slot stays empty: give it back without an update. */
            io->slot_used[slot] = 0;
            io->slots_free++;
            g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                        _("soft IOMMU: cannot map iova 0x%" PRIx64 " size 0x%" PRIx64 ": pinning %p+0x%zx (fixed buffer %u of %u) failed: %s%s"),
                        iova, size, iov.iov_base, iov.iov_len, i + 1, m->nchunks,
                        g_strerror(-ret),
                        ret == -ENOMEM ? _(" (the pinned pages count against RLIMIT_MEMLOCK without CAP_IPC_LOCK)") : "");
            goto err_unpin;
        }
        m->slots[i] = (guint)slot;
    }

    npages = size / io->page_size;
    m->pfns = g_new(guint64, npages);
    ret = soft_pagemap__read(io, m->vaddr, npages, m->pfns);
    if (ret < 0) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: cannot map iova 0x%" PRIx64 " size 0x%" PRIx64 ": reading /proc/self/pagemap failed: %s"),
                    iova, size, g_strerror(-ret));
        goto err_unpin;
    }
    for (guint64 p = 0; p < npages; p++) {
        guint64 e = m->pfns[p];

        m->pfns[p] = (e & PM_PRESENT) ? (e & PM_PFN_MASK) : PFN_NONE;
        if (m->pfns[p] == 0)
            io->pfns_hidden = true;
    }

    g_ptr_array_insert(io->maps, (gint)at, m);
    soft_pinned__add(io, npages);
    g_mutex_unlock(&io->lock);
    return 0;

 err_unpin:
    soft_mapping__unpin(io, m, i);
    soft_mapping__free(m);
    g_mutex_unlock(&io->lock);
    return ret;
}

static int
soft_dma_unmap(vfio_container *c, guint64 iova, guint64 size, GError **error)
{
    soft_iommu *io = c->backend_data;
    guint64 end = iova + size;
    guint first, last;

    if (!io) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: unmap of iova 0x%" PRIx64 ": the container is not open"),
                    iova);
        return -EBADF;
    }
    if (!size || end < iova) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: cannot unmap iova 0x%" PRIx64 " size 0x%" PRIx64 ": empty or wrapping range: %s"),
                    iova, size, g_strerror(EINVAL));
        return -EINVAL;
    }

    g_mutex_lock(&io->lock);
    /* Like type1 v2: the range may cover whole mappings only, never
     * bisect one. */
    first = soft_maps__lower_bound(io, iova);
    if (first > 0) {
        soft_mapping *prev = g_ptr_array_index(io->maps, first - 1);

        if (soft_mapping__end(prev) > iova) {
            g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                        _("soft IOMMU: cannot unmap iova 0x%" PRIx64 " size 0x%" PRIx64 ": it would split the mapping at iova 0x%" PRIx64 " size 0x%" PRIx64 ": %s"),
                        iova, size, prev->iova, prev->size, g_strerror(EINVAL));
            g_mutex_unlock(&io->lock);
            return -EINVAL;
        }
    }
    for (last = first; last < io->maps->len; last++) {
        soft_mapping *m = g_ptr_array_index(io->maps, last);

        if (m->iova >= end)
            break;
        if (soft_mapping__end(m) > end) {
            g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                        _("soft IOMMU: cannot unmap iova 0x%" PRIx64 " size 0x%" PRIx64 ": it would split the mapping at iova 0x%" PRIx64 " size 0x%" PRIx64 ": %s"),
                        iova, size, m->iova, m->size, g_strerror(EINVAL));
            g_mutex_unlock(&io->lock);
            return -EINVAL;
        }
    }
    if (last == first) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: cannot unmap iova 0x%" PRIx64 " size 0x%" PRIx64 ": nothing is mapped there: %s"),
                    iova, size, g_strerror(ENOENT));
        g_mutex_unlock(&io->lock);
        return -ENOENT;
    }
    for (guint k = first; k < last; k++) {
        soft_mapping *m = g_ptr_array_index(io->maps, k);

        soft_mapping__unpin(io, m, m->nchunks);
        soft_pinned__sub(io, m->size / io->page_size);
        soft_mapping__free(m);
    }
    g_ptr_array_remove_range(io->maps, first, last - first);
    g_mutex_unlock(&io->lock);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Containers and groups                                               */

static void
soft_iommu__free(soft_iommu *io)
{
    if (!io)
        return;
    for (guint k = 0; k < io->maps->len; k++) {
        soft_mapping *m = g_ptr_array_index(io->maps, k);

        soft_mapping__unpin(io, m, m->nchunks);
        soft_pinned__sub(io, m->size / io->page_size);
        soft_mapping__free(m);
    }
    g_ptr_array_unref(io->maps);
    g_ptr_array_unref(io->logs);
    /* Synchronous unpin; the ring's own teardown is deferred work. */
    if (io->table_ok)
        io_uring_unregister_buffers(&io->ring);
    if (io->ring_ok)
        io_uring_queue_exit(&io->ring);
    if (io->memfd >= 0)
        close(io->memfd);
    if (io->pagemap_fd >= 0)
        close(io->pagemap_fd);
    g_free(io->slot_used);
    g_mutex_clear(&io->lock);
    g_free(io);
}

static int
soft_container_open(vfio_container *c, GError **error)
{
    soft_iommu *io = g_new0(soft_iommu, 1);
    int ret;

    g_mutex_init(&io->lock);
    io->memfd = -1;
    io->pagemap_fd = -1;
    io->page_size = (gsize)sysconf(_SC_PAGESIZE);
    io->maps = g_ptr_array_new();
    io->logs = g_ptr_array_new_with_free_func((GDestroyNotify)soft_dirty_log__free);
    io->slot_used = g_new0(guint8, SOFT_TABLE_SLOTS);
    io->slots_free = SOFT_TABLE_SLOTS;

    ret = io_uring_queue_init(SOFT_RING_ENTRIES, &io->ring, 0);
    if (ret < 0) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: io_uring_setup failed: %s (is io_uring disabled by kernel.io_uring_disabled or a seccomp filter?)"),
                    g_strerror(-ret));
        goto err;
    }
    io->ring_ok = true;
    ret = io_uring_register_buffers_sparse(&io->ring, SOFT_TABLE_SLOTS);
    if (ret < 0) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: cannot register a sparse table of %u fixed buffers: %s (needs Linux 5.19 or later)"),
                    SOFT_TABLE_SLOTS, g_strerror(-ret));
        goto err;
    }
    io->table_ok = true;
    io->memfd = memfd_create("dmaguard-soft-iommu", MFD_CLOEXEC);
    if (io->memfd < 0 || ftruncate(io->memfd, SOFT_BOUNCE_MAX) < 0) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: cannot create the DMA memfd: %s"), g_strerror(errno));
        goto err;
    }
    io->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (io->pagemap_fd < 0) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: cannot open /proc/self/pagemap: %s"), g_strerror(errno));
        goto err;
    }
    c->backend_data = io;
    return 0;

 err:
    soft_iommu__free(io);
    return -1;
}

static void
soft_container_close(vfio_container *c)
{
    soft_iommu__free(c->backend_data);
    c->backend_data = NULL;
}

static int
soft_container_step(vfio_container *c, GError **error)
{
    return 0;
}

static int
soft_group_open(vfio_group *group, GError **error)
{
    group->fd = -1;                      /* there is no /dev/vfio/N */
    return 0;
}

static void
soft_group_close(vfio_group *group)
{
}

/* type1 takes any number of groups in one container. */
static int
soft_group_set_container(vfio_group *group, vfio_container *c, GError **error)
{
    soft_iommu *io = c->backend_data;

    if (!io) {
        g_set_error(error, VMM_ERROR, VMM_ERR_VFIO_BACKEND,
                    _("soft IOMMU: group %d: the container is not open"), group->id);
        return -1;
    }
    g_mutex_lock(&io->lock);
    io->groups++;
    g_mutex_unlock(&io->lock);
    return 0;
}

static void
soft_group_unset_container(vfio_group *group, vfio_container *c)
{
    soft_iommu *io = c->backend_data;

    if (!io)
        return;
    g_mutex_lock(&io->lock);
    if (io->groups)
        io->groups--;
    g_mutex_unlock(&io->lock);
}

const vfio_backend_ops vfio_backend_soft = {
    .name = "soft",
    .group_open = soft_group_open,
    .group_close = soft_group_close,
    .group_set_container = soft_group_set_container,
    .group_unset_container = soft_group_unset_container,
    .container_open = soft_container_open,
    .container_set_iommu = soft_container_step,
    .listener_register = soft_container_step,
    .container_close = soft_container_close,
    .dma_map = soft_dma_map,
    .dma_unmap = soft_dma_unmap,
};

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

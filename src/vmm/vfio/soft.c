/*
 * vfio/soft.c: the soft IOMMU (see vfio/soft.h): its vfio_backend_ops,
 * containers and groups, and the IOVA page table with dma_map/dma_unmap,
 * whose rules follow the kernel's drivers/vfio/vfio_iommu_type1.c
 * (vfio_dma_do_map, vfio_dma_do_unmap).  Pinning is in vfio/soft_pin.c,
 * the device side in vfio/soft_dma.c.
 *
 * Translation: IOVA -> (mapping, chunk, offset in the registered buffer).
 * The PFN of every page is read from /proc/self/pagemap right after the
 * pin (FOLL_LONGTERM may migrate a page first) and kept for the auditor.
 */
#include "vfio/soft.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dmg_i18n.h"
#include "vfio/soft_priv.h"

#define SOFT_RING_ENTRIES   64u

static int soft_fail_next;               /* atomic */

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

/* ------------------------------------------------------------------ */
/* The IOVA table                                                      */

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

soft_mapping *
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

/*
 * vfio/soft_pin.c: pinning for the soft IOMMU (see vfio/soft.h), the
 * counterpart of vfio_pin_pages_remote() and vfio_lock_acct() in the
 * kernel's drivers/vfio/vfio_iommu_type1.c: the fixed-buffer table, the
 * pinned-page count and the PFNs from /proc/self/pagemap.
 *
 * Pinning: every DMA mapping is registered with io_uring as one or more
 * fixed buffers in a sparse table.  The kernel pins each page long term
 * (io_sqe_buffer_register -> pin_user_pages(FOLL_WRITE | FOLL_LONGTERM)),
 * faulting it in, and keeps the pinned page array; VmPin in
 * /proc/self/status counts them.  One registered buffer is limited to
 * 1 GiB (io_buffer_validate), so a larger mapping takes several slots.
 */
#include "vfio/soft_priv.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vfio/soft.h"

/* ------------------------------------------------------------------ */
/* Pinned-page accounting                                              */

static guint64 soft_pinned_total;        /* atomic */

void
soft_pinned__add(soft_iommu *io, guint64 pages)
{
    io->pinned_pages += pages;
    __atomic_add_fetch(&soft_pinned_total, pages, __ATOMIC_SEQ_CST);
}

void
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

int
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
void
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

/* Unregister every chunk of @m (the first @nchunks). */
void
soft_mapping__unpin(soft_iommu *io, soft_mapping *m, guint nchunks)
{
    for (guint i = 0; i < nchunks; i++)
        soft_slot__release(io, m->slots[i]);
}

/* pread/pwrite all of @len at @off, across short transfers and EINTR. */
int
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

int
soft_pagemap__read(soft_iommu *io, const guint8 *vaddr, guint64 npages,
                   guint64 *entries)
{
    guint64 off = (guint64)(uintptr_t)vaddr / io->page_size * sizeof(guint64);

    return soft_fd__pio(io->pagemap_fd, false, entries, npages * sizeof(guint64), (off_t)off);
}

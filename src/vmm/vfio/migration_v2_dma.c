/*
 * vfio/migration_v2_dma.c: the device side of the soft VFIO function
 * (vfio/migration_v2.h): its register file, the DMA engine thread that writes
 * vfio_mig_dma_record into the guest ring through the soft IOMMU, and DMA
 * dirty logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_START/_REPORT/_STOP),
 * after the kernel's drivers/vfio/vfio_main.c.
 *
 * The DMA thread holds mig->lock across each record it writes (see
 * vfio/migration_v2_priv.h).
 */
#include "vfio/migration_v2_priv.h"

#include <errno.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <string.h>

#include "dmg_i18n.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static guint64
mig_ring_iova(vfio_migration *mig)
{
    return ((guint64)mig->regs[VFIO_MIG_REG_RING_HI] << 32) | mig->regs[VFIO_MIG_REG_RING_LO];
}

static bool
mig_dma_active(vfio_migration *mig)
{
    return (mig->regs[VFIO_MIG_REG_CTRL] & VFIO_MIG_CTRL_DMA_ENABLE) &&
           vfio_mig__state_runs(mig->state) && !mig->dma_error &&
           mig->regs[VFIO_MIG_REG_RING_SIZE];
}

/* ------------------------------------------------------------------ */
/* The DMA engine                                                      */

guint64
vfio_migration__dma_pattern(guint64 seq, guint word)
{
    return (seq * 0x9e3779b97f4a7c15ULL) ^ ((guint64)(word + 1) * 0xc2b2ae3d27d4eb4fULL);
}

gboolean
vfio_mig_dma_record__check(const vfio_mig_dma_record *rec, guint64 pos, guint64 *seq)
{
    if (rec->magic != VFIO_MIG_DMA_MAGIC || rec->device_id != VFIO_MIG_DEVICE_ID ||
        rec->pos != pos || rec->seq == 0)
        return FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(rec->pattern); i++)
        if (rec->pattern[i] != vfio_migration__dma_pattern(rec->seq, i))
            return FALSE;
    if (seq)
        *seq = rec->seq;
    return TRUE;
}

/* One record at the ring position, through the IOMMU.  Lock held: this
 * is the DMA that a state change waits out. */
static void
mig_dma_one(vfio_migration *mig)
{
    vfio_mig_dma_record rec = { .seq = mig->seq + 1, .magic = VFIO_MIG_DMA_MAGIC,
                                .device_id = mig->regs[VFIO_MIG_REG_ID],
                                .pos = mig->ring_pos };
    soft_iommu *io = vfio_mig__iommu(mig);
    GError *err = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(rec.pattern); i++)
        rec.pattern[i] = vfio_migration__dma_pattern(rec.seq, i);
    if (!io || !soft_iommu__dma_write(io, mig_ring_iova(mig) + mig->ring_pos, &rec,
                                      sizeof(rec), &err)) {
        mig->dma_error = g_strdup_printf(_("%s: the DMA engine stopped after an IOMMU fault writing record %" G_GUINT64_FORMAT " at ring offset %" G_GUINT64_FORMAT ": %s"),
                                         vfio_mig__name(mig), rec.seq, mig->ring_pos,
                                         err ? err->message : _("no IOMMU"));
        g_clear_error(&err);
    } else {
        mig->seq = rec.seq;
        mig->records++;
        mig->ring_pos = (mig->ring_pos + RECORD_SIZE) % mig->regs[VFIO_MIG_REG_RING_SIZE];
    }
    g_cond_broadcast(&mig->cond);
}

static gpointer
mig_dma_thread(gpointer data)
{
    vfio_migration *mig = data;
    gint64 next = 0;

    g_mutex_lock(&mig->lock);
    while (!mig->quit) {
        gint64 now;

        if (!mig_dma_active(mig)) {
            g_cond_wait(&mig->cond, &mig->lock);
            next = 0;
            continue;
        }
        now = g_get_monotonic_time();
        if (next && now < next) {
            g_cond_wait_until(&mig->cond, &mig->lock, next);
            continue;
        }
        mig_dma_one(mig);
        next = now + MAX(mig->regs[VFIO_MIG_REG_INTERVAL_US], 1u);
    }
    g_mutex_unlock(&mig->lock);
    return NULL;
}

/* The thread exists from the first time DMA is enabled until unrealize. */
void
vfio_mig__dma_ensure_thread(vfio_migration *mig)
{
    if (!mig->thread && (mig->regs[VFIO_MIG_REG_CTRL] & VFIO_MIG_CTRL_DMA_ENABLE))
        mig->thread = g_thread_new("vfio-mig-dma", mig_dma_thread, mig);
}

/* ------------------------------------------------------------------ */
/* Registers and the DMA engine's controls                             */

void
vfio_mig__regs_reset(vfio_migration *mig)
{
    memset(mig->regs, 0, sizeof(mig->regs));
    mig->regs[VFIO_MIG_REG_ID] = VFIO_MIG_DEVICE_ID;
    mig->ring_pos = 0;
    mig->seq = 0;
    mig->regs_gen++;
    g_clear_pointer(&mig->dma_error, g_free);
}

static gboolean
mig_mmio_allowed(vfio_migration *mig, GError **error)
{
    if (vfio_mig__state_runs(mig->state))
        return TRUE;
    /* uAPI: in STOP "It must not change its internal state". */
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                _("%s: the device is in %s: its registers are frozen until it runs again"),
                vfio_mig__name(mig), vfio_mig_state__to_string(mig->state));
    return FALSE;
}

static gboolean
mig_ring_check(vfio_migration *mig, guint64 iova, guint64 size, GError **error)
{
    if (!size || size % RECORD_SIZE || iova % RECORD_SIZE || size > G_MAXUINT32 ||
        iova + size < iova) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: a DMA ring at iova 0x%" PRIx64 " of %" G_GUINT64_FORMAT " bytes: base and size must be non-zero multiples of the %" G_GUINT64_FORMAT "-byte record, below 4 GiB of size"),
                    vfio_mig__name(mig), iova, size, RECORD_SIZE);
        return FALSE;
    }
    return TRUE;
}

gboolean
vfio_migration__reg_write(vfio_device *dev, guint reg, guint32 value, GError **error)
{
    vfio_migration *mig = vfio_mig__of(dev);
    gboolean ok = FALSE;

    g_mutex_lock(&mig->lock);
    if (!mig_mmio_allowed(mig, error))
        goto out;
    if (reg >= VFIO_MIG_NR_REGS || reg == VFIO_MIG_REG_ID) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: register %u is not writable"), vfio_mig__name(mig), reg);
        goto out;
    }
    if (reg == VFIO_MIG_REG_CTRL && (value & VFIO_MIG_CTRL_DMA_ENABLE) &&
        !mig_ring_check(mig, mig_ring_iova(mig), mig->regs[VFIO_MIG_REG_RING_SIZE], error))
        goto out;
    if ((reg == VFIO_MIG_REG_RING_LO || reg == VFIO_MIG_REG_RING_HI ||
         reg == VFIO_MIG_REG_RING_SIZE) &&
        (mig->regs[VFIO_MIG_REG_CTRL] & VFIO_MIG_CTRL_DMA_ENABLE)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    _("%s: the DMA ring cannot move while DMA is enabled; clear CTRL.DMA_ENABLE first"),
                    vfio_mig__name(mig));
        goto out;
    }
    mig->regs[reg] = value;
    if (reg == VFIO_MIG_REG_RING_SIZE)
        mig->ring_pos = 0;
    if (reg == VFIO_MIG_REG_CTRL && (value & VFIO_MIG_CTRL_DMA_ENABLE))
        g_clear_pointer(&mig->dma_error, g_free);
    mig->regs_gen++;
    vfio_mig__dma_ensure_thread(mig);
    g_cond_broadcast(&mig->cond);
    ok = TRUE;
 out:
    g_mutex_unlock(&mig->lock);
    return ok;
}

guint32
vfio_migration__reg_read(vfio_device *dev, guint reg)
{
    vfio_migration *mig = vfio_mig__of(dev);
    guint32 v;

    g_return_val_if_fail(reg < VFIO_MIG_NR_REGS, 0);
    g_mutex_lock(&mig->lock);
    v = mig->regs[reg];
    g_mutex_unlock(&mig->lock);
    return v;
}

void
vfio_migration__get_info(vfio_device *dev, vfio_migration_info *out)
{
    vfio_migration *mig = vfio_mig__of(dev);

    g_mutex_lock(&mig->lock);
    memset(out, 0, sizeof(*out));
    out->state = mig->state;
    memcpy(out->regs, mig->regs, sizeof(out->regs));
    out->ring_iova = mig_ring_iova(mig);
    out->ring_size = mig->regs[VFIO_MIG_REG_RING_SIZE];
    out->ring_pos = mig->ring_pos;
    out->seq = mig->seq;
    out->records = mig->records;
    out->dma_enabled = mig->regs[VFIO_MIG_REG_CTRL] & VFIO_MIG_CTRL_DMA_ENABLE;
    out->dma_active = mig_dma_active(mig);
    out->logging = mig->log != NULL;
    out->p2p = mig->flags & MIG_FLAG_P2P;
    g_mutex_unlock(&mig->lock);
}

gboolean
vfio_migration__dma_start(vfio_device *dev, guint64 iova, guint64 size, guint interval_us,
                          GError **error)
{
    vfio_migration *mig = vfio_mig__of(dev);
    gboolean ok = FALSE;

    g_mutex_lock(&mig->lock);
    if (!mig_mmio_allowed(mig, error) || !mig_ring_check(mig, iova, size, error))
        goto out;
    mig->regs[VFIO_MIG_REG_RING_LO] = (guint32)iova;
    mig->regs[VFIO_MIG_REG_RING_HI] = (guint32)(iova >> 32);
    mig->regs[VFIO_MIG_REG_RING_SIZE] = (guint32)size;
    mig->regs[VFIO_MIG_REG_INTERVAL_US] = MAX(interval_us, 1u);
    mig->regs[VFIO_MIG_REG_CTRL] |= VFIO_MIG_CTRL_DMA_ENABLE;
    mig->ring_pos = 0;
    mig->regs_gen++;
    g_clear_pointer(&mig->dma_error, g_free);
    vfio_mig__dma_ensure_thread(mig);
    g_cond_broadcast(&mig->cond);
    ok = TRUE;
 out:
    g_mutex_unlock(&mig->lock);
    return ok;
}

void
vfio_migration__dma_stop(vfio_device *dev)
{
    vfio_migration *mig = vfio_mig__of(dev);

    g_mutex_lock(&mig->lock);
    mig->regs[VFIO_MIG_REG_CTRL] &= ~VFIO_MIG_CTRL_DMA_ENABLE;
    mig->regs_gen++;
    g_cond_broadcast(&mig->cond);
    g_mutex_unlock(&mig->lock);
}

gboolean
vfio_migration__wait_seq(vfio_device *dev, guint64 seq, guint timeout_ms)
{
    vfio_migration *mig = vfio_mig__of(dev);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    gboolean ok = TRUE;

    g_mutex_lock(&mig->lock);
    while (mig->seq < seq) {
        if (!mig_dma_active(mig) || !g_cond_wait_until(&mig->cond, &mig->lock, deadline)) {
            ok = mig->seq >= seq;
            break;
        }
    }
    g_mutex_unlock(&mig->lock);
    return ok;
}

char *
vfio_migration__dma_error(vfio_device *dev)
{
    vfio_migration *mig = vfio_mig__of(dev);
    char *s;

    g_mutex_lock(&mig->lock);
    s = g_strdup(mig->dma_error);
    g_mutex_unlock(&mig->lock);
    return s;
}

/* ------------------------------------------------------------------ */
/* DMA logging                                                         */

static gint
range_cmp(gconstpointer a, gconstpointer b)
{
    const soft_dirty_range *x = a, *y = b;

    return x->iova < y->iova ? -1 : x->iova > y->iova;
}

gboolean
vfio_mig__logging_start_locked(vfio_migration *mig, const soft_dirty_range *ranges,
                               guint nranges, guint64 *page_size, GError **error)
{
    g_autoptr(GArray) sorted = NULL;
    soft_iommu *io = vfio_mig__iommu(mig);
    guint64 ps = *page_size;

    /* vfio_ioctl_device_feature_logging_start() and the driver's
     * log_start (mlx5vf_start_page_tracker). */
    if (mig->log) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    _("%s: DMA logging is already started; stop it first (one start at a time)"),
                    vfio_mig__name(mig));
        return FALSE;
    }
    if (!io) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    _("%s: DMA logging needs the soft IOMMU"), vfio_mig__name(mig));
        return FALSE;
    }
    if (!ps || (ps & (ps - 1))) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: DMA logging page size %" G_GUINT64_FORMAT " is not a power of two"),
                    vfio_mig__name(mig), ps);
        return FALSE;
    }
    ps = MAX(ps, LOG_PAGE_SIZE);
    if (!nranges || nranges > LOG_MAX_RANGES) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: DMA logging takes 1 to %u IOVA ranges, not %u"),
                    vfio_mig__name(mig), LOG_MAX_RANGES, nranges);
        return FALSE;
    }
    sorted = g_array_sized_new(FALSE, FALSE, sizeof(soft_dirty_range), nranges);
    g_array_append_vals(sorted, ranges, nranges);
    g_array_sort(sorted, range_cmp);
    for (guint i = 0; i < nranges; i++) {
        soft_dirty_range *r = &g_array_index(sorted, soft_dirty_range, i);

        if (!r->length || r->iova % ps || r->length % ps) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        _("%s: DMA logging range 0x%" PRIx64 "+0x%" PRIx64 " is empty or not aligned to the page size %" G_GUINT64_FORMAT),
                        vfio_mig__name(mig), r->iova, r->length, ps);
            return FALSE;
        }
        if (r->iova + r->length < r->iova) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        _("%s: DMA logging range 0x%" PRIx64 "+0x%" PRIx64 " wraps around: %s"),
                        vfio_mig__name(mig), r->iova, r->length, g_strerror(EOVERFLOW));
            return FALSE;
        }
        if (i > 0) {
            soft_dirty_range *p = &g_array_index(sorted, soft_dirty_range, i - 1);

            if (p->iova + p->length > r->iova) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            _("%s: DMA logging ranges 0x%" PRIx64 "+0x%" PRIx64 " and 0x%" PRIx64 "+0x%" PRIx64 " overlap"),
                            vfio_mig__name(mig), p->iova, p->length, r->iova, r->length);
                return FALSE;
            }
        }
    }
    mig->log = soft_iommu__log_start(io, (soft_dirty_range *)(void *)sorted->data, nranges, ps);
    mig->log_ranges = g_steal_pointer(&sorted);
    *page_size = ps;
    return TRUE;
}

gboolean
vfio_migration__dma_logging_start(vfio_device *dev, const soft_dirty_range *ranges,
                                  guint nranges, guint64 *page_size, GError **error)
{
    vfio_migration *mig = vfio_mig__of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = vfio_mig__logging_start_locked(mig, ranges, nranges, page_size, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

gboolean
vfio_mig__logging_report_locked(vfio_migration *mig, guint64 iova, guint64 length,
                                guint64 page_size, guint64 *bitmap, GError **error)
{
    /* vfio_ioctl_device_feature_logging_report() */
    if (!mig->log) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                    _("%s: DMA logging report: DMA logging is not started"), vfio_mig__name(mig));
        return FALSE;
    }
    if (page_size < LOG_PAGE_SIZE || (page_size & (page_size - 1)) || !length ||
        iova % page_size || length % page_size || iova + length < iova) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: DMA logging report of 0x%" PRIx64 "+0x%" PRIx64 " with page size %" G_GUINT64_FORMAT ": the page size must be a power of two of at least 4096 and the range a non-empty multiple of it"),
                    vfio_mig__name(mig), iova, length, page_size);
        return FALSE;
    }
    soft_iommu__log_report(vfio_mig__iommu(mig), mig->log, iova, length, page_size, bitmap);
    return TRUE;
}

gboolean
vfio_migration__dma_logging_report(vfio_device *dev, guint64 iova, guint64 length,
                                   guint64 page_size, guint64 *bitmap, GError **error)
{
    vfio_migration *mig = vfio_mig__of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = vfio_mig__logging_report_locked(mig, iova, length, page_size, bitmap, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

void
vfio_mig__logging_stop_locked(vfio_migration *mig)
{
    if (!mig->log)
        return;
    soft_iommu__log_stop(vfio_mig__iommu(mig), mig->log);
    mig->log = NULL;
    g_clear_pointer(&mig->log_ranges, g_array_unref);
}

void
vfio_migration__dma_logging_stop(vfio_device *dev)
{
    vfio_migration *mig = vfio_mig__of(dev);

    g_mutex_lock(&mig->lock);
    vfio_mig__logging_stop_locked(mig);
    g_mutex_unlock(&mig->lock);
}


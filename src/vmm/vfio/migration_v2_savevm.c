/*
 * vfio/migration_v2_savevm.c: the soft VFIO function and its VFIO migration v2
 * (see vfio/migration_v2.h), after QEMU's hw/vfio/migration.c: realize and
 * unrealize, the savevm handlers, the dirty pages of the migration and
 * vfio_vmstate_change().  The FSM and the data stream are in
 * vfio/migration_v2_fsm.c, the register file, the DMA engine and DMA logging
 * in vfio/migration_v2_dma.c; the locking is in vfio/migration_v2_priv.h.
 */
#include "vfio/migration_v2_priv.h"

#include <gio/gio.h>

#include "dmg_i18n.h"
#include "memory/memory.h"
#include "migration/savevm.h"
#include "vfio/soft.h"

static gint test_no_dirty_tracking;      /* atomic */

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

vfio_migration *
vfio_mig__of(vfio_device *dev)
{
    /* Only devices with a soft function (vfio_migration__present()). */
    g_assert(dev && dev->mig);
    return dev->mig;
}

const char *
vfio_mig__name(vfio_migration *mig)
{
    return mig->dev->alias;
}

soft_iommu *
vfio_mig__iommu(vfio_migration *mig)
{
    return mig->dev->group ? vfio_soft__iommu(mig->dev->group->container) : NULL;
}

/* ------------------------------------------------------------------ */
/* DMA logging for the migration                                       */

/* The ranges to log: the container's mappings, adjacent ones merged; more
 * than the kernel takes become QEMU's two ranges, the span below and the
 * span above 4 GiB (vfio_dirty_tracking_init()). */
static GArray *
mig_logging_ranges(vfio_migration *mig)
{
    g_autoptr(GArray) maps = soft_iommu__mappings(vfio_mig__iommu(mig));
    GArray *out = g_array_new(FALSE, FALSE, sizeof(soft_dirty_range));
    soft_dirty_range lo = { G_MAXUINT64, 0 }, hi = { G_MAXUINT64, 0 };
    guint64 lo_end = 0, hi_end = 0;

    for (guint i = 0; i < maps->len; i++) {
        soft_dirty_range *r = &g_array_index(maps, soft_dirty_range, i);
        soft_dirty_range *last = out->len ? &g_array_index(out, soft_dirty_range, out->len - 1) : NULL;

        if (last && last->iova + last->length == r->iova)
            last->length += r->length;
        else
            g_array_append_val(out, *r);
    }
    if (out->len <= LOG_MAX_RANGES)
        return out;
    for (guint i = 0; i < out->len; i++) {
        soft_dirty_range *r = &g_array_index(out, soft_dirty_range, i);
        bool low = r->iova + r->length <= (1ULL << 32);

        if (low) {
            lo.iova = MIN(lo.iova, r->iova);
            lo_end = MAX(lo_end, r->iova + r->length);
        } else {
            hi.iova = MIN(hi.iova, r->iova);
            hi_end = MAX(hi_end, r->iova + r->length);
        }
    }
    g_array_set_size(out, 0);
    if (lo_end) {
        lo.length = lo_end - lo.iova;
        g_array_append_val(out, lo);
    }
    if (hi_end) {
        hi.length = hi_end - hi.iova;
        g_array_append_val(out, hi);
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* Dirty pages to the migration: IOVA -> guest physical                */

typedef struct {
    savevm_dirty_fn mark;
    void *opaque;
    guint64 gpa, len;                    /* the pending run */
} mark_run;

static void
mark_run__add(mark_run *r, guint64 gpa, guint64 len)
{
    if (r->len && r->gpa + r->len == gpa) {
        r->len += len;
        return;
    }
    if (r->len)
        r->mark(r->opaque, r->gpa, r->len);
    r->gpa = gpa;
    r->len = len;
}

static void
mark_run__flush(mark_run *r)
{
    if (r->len)
        r->mark(r->opaque, r->gpa, r->len);
    r->len = 0;
}

/* Without a vIOMMU IOVA is the guest physical address.  Behind one the
 * IOMMU's mapping gives the host address and guest memory's flat view
 * the guest physical address of that (vfio_iommu_map_dirty_notify()). */
static bool
mig_iova_to_gpa(vfio_migration *mig, flat_view *view, guint64 iova, guint64 *gpa)
{
    void *hva;
    guint64 len;

    if (!vfio_device__viommu_present(mig->dev)) {
        *gpa = iova;
        return true;
    }
    if (!view || !soft_iommu__translate(vfio_mig__iommu(mig), iova, &hva, &len))
        return false;
    for (guint i = 0; i < view->ranges->len; i++) {
        memory_region_section *s = &g_array_index(view->ranges, memory_region_section, i);
        guint8 *base;

        if (s->mr->type != MR_RAM || !s->mr->ram)
            continue;
        base = (guint8 *)s->mr->ram + s->offset_within_region;
        if ((guint8 *)hva >= base && (guint8 *)hva < base + s->size) {
            *gpa = s->offset_within_address_space + (guint64)((guint8 *)hva - base);
            return true;
        }
    }
    return false;
}

static void
mig_mark_iova(vfio_migration *mig, flat_view *view, mark_run *run, guint64 iova, guint64 len)
{
    guint64 gpa;

    if (!vfio_device__viommu_present(mig->dev)) {
        mark_run__add(run, iova, len);
        return;
    }
    for (guint64 o = 0; o < len; o += LOG_PAGE_SIZE)
        if (mig_iova_to_gpa(mig, view, iova + o, &gpa))
            mark_run__add(run, gpa, MIN(LOG_PAGE_SIZE, len - o));
}

/* vfio_sync_dirty_bitmap() -> vfio_devices_query_dirty_bitmap(): a report
 * per window of every logged range, each set bit a dirty guest page. */
static gboolean
mig_sync_dirty_locked(vfio_migration *mig, savevm_dirty_fn mark, void *mark_opaque,
                      GError **error)
{
    mark_run run = { mark, mark_opaque, 0, 0 };
    flat_view *view = mig->m->memory ? address_space__get_view(mig->m->memory) : NULL;
    gboolean ok = TRUE;

    if (g_atomic_int_get(&test_no_dirty_tracking))
        goto out;
    if (!mig->tracking) {
        /* No device and no IOMMU dirty tracking (enable-migration=on):
         * QEMU's vfio_get_dirty_bitmap() marks everything mapped. */
        g_autoptr(GArray) maps = soft_iommu__mappings(vfio_mig__iommu(mig));

        for (guint i = 0; i < maps->len; i++) {
            soft_dirty_range *r = &g_array_index(maps, soft_dirty_range, i);

            mig_mark_iova(mig, view, &run, r->iova, r->length);
        }
        goto out;
    }
    if (!mig->log)
        goto out;
    for (guint i = 0; i < mig->log_ranges->len && ok; i++) {
        soft_dirty_range *r = &g_array_index(mig->log_ranges, soft_dirty_range, i);

        for (guint64 off = 0; off < r->length && ok; off += LOG_REPORT_WINDOW) {
            guint64 wlen = MIN(LOG_REPORT_WINDOW, r->length - off);
            guint64 pages = wlen / LOG_PAGE_SIZE;
            g_autofree guint64 *bitmap = g_new0(guint64, (pages + 63) / 64);

            ok = vfio_mig__logging_report_locked(mig, r->iova + off, wlen, LOG_PAGE_SIZE,
                                                 bitmap, error);
            for (guint64 w = 0; ok && w < (pages + 63) / 64; w++) {
                for (guint b = 0; bitmap[w] && b < 64; b++) {
                    if (bitmap[w] & (1ULL << b))
                        mig_mark_iova(mig, view, &run,
                                      r->iova + off + (w * 64 + b) * LOG_PAGE_SIZE, LOG_PAGE_SIZE);
                }
            }
        }
    }
 out:
    mark_run__flush(&run);
    if (view)
        flat_view__unref(view);
    return ok;
}

void
vfio_migration__test_disable_dirty_tracking(bool disable)
{
    g_atomic_int_set(&test_no_dirty_tracking, disable);
}

/* ------------------------------------------------------------------ */
/* savevm handlers (hw/vfio/migration.c savevm_vfio_handlers)          */

/* vfio_migration_set_state_or_reset(). */
static gboolean
mig_set_state_or_reset_locked(vfio_migration *mig, vfio_mig_state new_state, GError **error)
{
    if (vfio_mig__set_state_locked(mig, new_state, error))
        return TRUE;
    vfio_mig__reset_locked(mig);
    g_prefix_error(error, _("the device was reset: "));
    return FALSE;
}

/* vfio_save_setup(): RUNNING -> PRE_COPY; a stopped device waits for
 * save_complete.  Then vfio_devices_dma_logging_start(). */
static gboolean
vfio_mig_save_setup(void *opaque, GError **error)
{
    vfio_migration *mig = ((vfio_device *)opaque)->mig;
    gboolean ok = FALSE;

    g_mutex_lock(&mig->lock);
    mig->setup_state = mig->state;
    switch (mig->state) {
    case VFIO_MIG_STATE_RUNNING:
        if (!vfio_mig__set_state_locked(mig, VFIO_MIG_STATE_PRE_COPY, error)) {
            g_prefix_error(error, _("%s: failed to set new PRE_COPY state: "),
                           vfio_mig__name(mig));
            goto out;
        }
        break;
    case VFIO_MIG_STATE_STOP:
        break;
    default:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: cannot start saving the device: invalid device state %s"),
                    vfio_mig__name(mig), vfio_mig_state__to_string(mig->state));
        goto out;
    }
    mig->saving = true;
    if (mig->tracking && !mig->log) {
        g_autoptr(GArray) ranges = mig_logging_ranges(mig);
        guint64 ps = LOG_PAGE_SIZE;

        /* Nothing mapped: nothing the device could write. */
        if (ranges->len &&
            !vfio_mig__logging_start_locked(mig, (soft_dirty_range *)(void *)ranges->data,
                                            ranges->len, &ps, error)) {
            g_prefix_error(error, _("%s: failed to start DMA logging: "), vfio_mig__name(mig));
            goto out;
        }
    }
    ok = TRUE;
 out:
    g_mutex_unlock(&mig->lock);
    return ok;
}

/* vfio_save_iterate(): what the device has for now. */
static gboolean
vfio_mig_save_iterate(void *opaque, GByteArray *out, GError **error)
{
    vfio_migration *mig = ((vfio_device *)opaque)->mig;
    guint64 initial, dirty;
    gssize n = 1;
    gboolean ok = TRUE;

    g_mutex_lock(&mig->lock);
    if (vfio_mig__state_precopy(mig->state)) {
        ok = vfio_mig__precopy_info_locked(mig, &initial, &dirty, error);
        while (ok && n > 0) {
            n = vfio_mig__save_block_locked(mig, out, error);
            ok = n >= 0;
        }
    }
    g_mutex_unlock(&mig->lock);
    return ok;
}

static gboolean
vfio_mig_sync_dirty(void *opaque, savevm_dirty_fn mark, void *mark_opaque, GError **error)
{
    vfio_migration *mig = ((vfio_device *)opaque)->mig;
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = mig_sync_dirty_locked(mig, mark, mark_opaque, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

/* vfio_save_complete_precopy(): -> STOP_COPY, the whole stream, then
 * STOP (vfio_save_cleanup() does that last arc in QEMU 8.1+). */
static gboolean
vfio_mig_save_complete(void *opaque, GByteArray *out, GError **error)
{
    vfio_migration *mig = ((vfio_device *)opaque)->mig;
    gboolean ok = FALSE;
    gssize n;

    g_mutex_lock(&mig->lock);
    if (!vfio_mig__state_precopy(mig->state) && mig->state != S_STOP && mig->state != S_SC) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: cannot complete saving the device: invalid device state %s"),
                    vfio_mig__name(mig), vfio_mig_state__to_string(mig->state));
        goto out;
    }
    if (!vfio_mig__set_state_locked(mig, S_SC, error))
        goto out;
    do
        n = vfio_mig__save_block_locked(mig, out, error);
    while (n > 0);
    if (n < 0)
        goto out;
    ok = vfio_mig__set_state_locked(mig, S_STOP, error);
 out:
    g_mutex_unlock(&mig->lock);
    return ok;
}

/* vfio_save_cleanup(), and on failure vfio_migration_state_notifier():
 * MIG_EVENT_PRECOPY_FAILED -> RUNNING (or reset).  A device that was
 * stopped when the migration began goes back to STOP instead.  DMA logging
 * stops either way (vfio_listener_log_global_stop()). */
static void
vfio_mig_save_cleanup(void *opaque, bool failed)
{
    vfio_migration *mig = ((vfio_device *)opaque)->mig;
    g_autoptr(GError) err = NULL;

    g_mutex_lock(&mig->lock);
    if (mig->saving && failed) {
        vfio_mig_state back = mig->setup_state == S_STOP ? S_STOP : S_RUN;

        if (!mig_set_state_or_reset_locked(mig, back, &err))
            g_warning("%s", err->message);
    } else if (mig->state == S_SC) {
        if (!mig_set_state_or_reset_locked(mig, S_STOP, &err))
            g_warning("%s", err->message);
    }
    vfio_mig__close(&mig->save_rfd);
    vfio_mig__close(&mig->save_wfd);
    mig->saving = false;
    vfio_mig__logging_stop_locked(mig);
    g_mutex_unlock(&mig->lock);
}

/* vfio_load_setup() */
static gboolean
vfio_mig_load_setup(void *opaque, GError **error)
{
    vfio_migration *mig = ((vfio_device *)opaque)->mig;
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = vfio_mig__set_state_locked(mig, S_RES, error);
    if (!ok)
        g_prefix_error(error, _("%s: failed to set RESUMING state: "), vfio_mig__name(mig));
    g_mutex_unlock(&mig->lock);
    return ok;
}

static gboolean
vfio_mig_load_state(void *opaque, const guint8 *data, gsize len, GError **error)
{
    return vfio_migration__load_buffer(opaque, data, len, error);
}

static gboolean
vfio_mig_load_complete(void *opaque, GError **error)
{
    return vfio_migration__set_state(opaque, S_STOP, error);
}

/* vfio_load_cleanup(); an aborted RESUMING session needs a reset (uAPI
 * "To abort a RESUMING session the device must be reset"). */
static void
vfio_mig_load_cleanup(void *opaque, bool failed)
{
    vfio_migration *mig = ((vfio_device *)opaque)->mig;

    g_mutex_lock(&mig->lock);
    if (failed && (mig->state == S_RES || mig->state == S_ERR))
        vfio_mig__reset_locked(mig);
    vfio_mig__close(&mig->resume_fd);
    mig->resume_len = 0;
    g_mutex_unlock(&mig->lock);
}

/* vfio_vmstate_change() for one device, with the P2P step of
 * vfio_vmstate_change_prepare() in front.  QEMU runs the prepare step of
 * every device before the final step of any; savevm's vm_running has one
 * call per device, so vfio_migration__vm_running() is the machine-wide
 * two-phase variant. */
static gboolean
mig_vmstate_prepare_locked(vfio_migration *mig, bool running, GError **error)
{
    if (!(mig->flags & MIG_FLAG_P2P))
        return TRUE;
    if ((running && (mig->state == S_STOP || mig->state == S_RES)) ||
        (!running && vfio_mig__state_runs(mig->state)))
        return mig_set_state_or_reset_locked(mig, vfio_mig__state_precopy(mig->state)
                                                  ? S_PP2P : S_RP2P, error);
    return TRUE;
}

static gboolean
mig_vmstate_change_locked(vfio_migration *mig, bool running, GError **error)
{
    /* Stopping during a precopy is the switch-over: STOP_COPY. */
    vfio_mig_state s = running ? S_RUN : vfio_mig__state_precopy(mig->state) ? S_SC : S_STOP;

    if (!running && mig->state == S_SC)
        return TRUE;
    return mig_set_state_or_reset_locked(mig, s, error);
}

static void
vfio_mig_vm_running(void *opaque, bool running)
{
    vfio_migration *mig = ((vfio_device *)opaque)->mig;
    g_autoptr(GError) err = NULL;

    g_mutex_lock(&mig->lock);
    /* QEMU: "Migration should be aborted in this case, but
     * vm_state_notify() currently does not support reporting failures." */
    if (!mig_vmstate_prepare_locked(mig, running, &err) ||
        !mig_vmstate_change_locked(mig, running, &err))
        g_warning("%s", err->message);
    g_mutex_unlock(&mig->lock);
}

static const savevm_ops vfio_mig_savevm_ops = {
    .save_setup = vfio_mig_save_setup,
    .save_iterate = vfio_mig_save_iterate,
    .sync_dirty = vfio_mig_sync_dirty,
    .save_complete = vfio_mig_save_complete,
    .save_cleanup = vfio_mig_save_cleanup,
    .load_setup = vfio_mig_load_setup,
    .load_state = vfio_mig_load_state,
    .load_complete = vfio_mig_load_complete,
    .load_cleanup = vfio_mig_load_cleanup,
    .vm_running = vfio_mig_vm_running,
};

/* ------------------------------------------------------------------ */
/* The machine: vfio_vmstate_change()                                  */

gboolean
vfio_migration__vm_running(vmm_machine *m, bool running, GError **error)
{
    gboolean ok = TRUE;

    /* vm_state_notify(): every device's prepare step (P2P devices quiesce
     * P2P, so no device stops while another may still DMA into it), then
     * every device's vfio_vmstate_change(). */
    for (int phase = 0; phase < 2; phase++) {
        for (guint i = 0; i < m->devices->len; i++) {
            vfio_migration *mig = ((vfio_device *)g_ptr_array_index(m->devices, i))->mig;
            GError *err = NULL;
            gboolean done;

            if (!mig)
                continue;
            g_mutex_lock(&mig->lock);
            done = phase == 0 ? mig_vmstate_prepare_locked(mig, running, &err)
                              : mig_vmstate_change_locked(mig, running, &err);
            g_mutex_unlock(&mig->lock);
            if (!done) {
                if (ok)
                    g_propagate_error(error, err);
                else
                    g_error_free(err);
                ok = FALSE;
            }
        }
    }
    return ok;
}

/* ------------------------------------------------------------------ */
/* Realize / unrealize                                                 */

bool
vfio_migration__present(const vfio_device *dev)
{
    return dev && dev->mig;
}

void
vfio_migration__realize(vmm_machine *m, vfio_device *dev, const vfio_device_config *cfg)
{
    vfio_migration *mig;

    if (!dev->migration || dev->mig || m->cfg.vfio_backend != &vfio_backend_soft ||
        !dev->group || !vfio_soft__iommu(dev->group->container))
        return;
    mig = g_new0(vfio_migration, 1);
    mig->m = m;
    mig->dev = dev;
    mig->id = g_strdup_printf("vfio:%s", dev->alias);
    mig->flags = MIG_FLAG_STOP_COPY | MIG_FLAG_PRE_COPY | (cfg->caps_p2p ? MIG_FLAG_P2P : 0);
    mig->tracking = cfg->caps_dirty_tracking || cfg->iommu_dirty_tracking;
    g_mutex_init(&mig->lock);
    g_cond_init(&mig->cond);
    mig->path = g_string_new(NULL);
    mig->save_rfd = mig->save_wfd = mig->resume_fd = -1;
    vfio_mig__regs_reset(mig);
    /* vfio_migration_init(): a device starts RUNNING. */
    mig->state = S_RUN;
    dev->mig = mig;
    savevm__register(m, mig->id, &vfio_mig_savevm_ops, dev);
}

void
vfio_migration__unrealize(vmm_machine *m, vfio_device *dev)
{
    vfio_migration *mig = dev->mig;

    if (!mig)
        return;
    savevm__unregister(m, dev);
    g_mutex_lock(&mig->lock);
    mig->quit = true;
    g_cond_broadcast(&mig->cond);
    g_mutex_unlock(&mig->lock);
    if (mig->thread)
        g_thread_join(mig->thread);
    vfio_mig__logging_stop_locked(mig);
    vfio_mig__session_end(mig);
    dev->mig = NULL;
    g_string_free(mig->path, TRUE);
    g_free(mig->dma_error);
    g_free(mig->id);
    g_cond_clear(&mig->cond);
    g_mutex_clear(&mig->lock);
    g_free(mig);
}

/*
 * migration/outgoing.c: the source of a precopy live migration of guest
 * RAM, after QEMU's migration/ram.c (ram_save_setup, ram_save_iterate,
 * ram_save_complete, migration_bitmap_sync) and migration/migration.c's
 * iteration loop (migration_iteration_run) and its failure and cleanup
 * paths (migrate_fd_error, migrate_fd_cancel, migrate_fd_cleanup).  The
 * stream format is in migration/migration.h, what both ends share in
 * migration/ram.h.
 */
#include "migration/migration.h"

#include <gio/gio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/uio.h>

#include "migration/le_bytes.h"
#include "migration/ram.h"
#include "migration/state.h"
#include "dmg_i18n.h"
#include "memory/memslots.h"
#include "migration/channel.h"
#include "migration/devices.h"

#define MIG_DEFAULT_DOWNTIME (8 * MiB)
#define MIG_DEFAULT_ROUNDS 30u

typedef struct mig_send {
    vm *v;
    vmm_machine *m;                      /* its devices, or NULL */
    bool cancelled;                      /* the error is m's cancel */
    mig_chan ch;
    migration_params p;
    memory_region *regions[MIG_NR_REGIONS];
    unsigned long *dirty;                /* pc.ram pages to send */
    mig_hashes hashes;                   /* of the pages as last sent */
    guint64 ram_pages;
    bool log_was_on;
    bool paused;
    bool devices_setup;                  /* save_setup done: cleanup due */
    GPtrArray *device_final;             /* stop-and-copy payloads, GByteArray * */
    migration_stats *st;
    migration_round_stats round;         /* the one being sent */
    guint64 round_start_bytes;
    gint64 round_start_us;
} mig_send;

/* ------------------------------------------------------------------ */
/* The machine's side: blockers (seed 004)                            */

/* migration_is_blocked(): every blocker, not only the first as QEMU
 * reports, so one attempt shows all there is to fix. */
static gboolean
mig_check_blockers(vmm_machine *m, GError **error)
{
    GPtrArray *bl = m->migration.blockers;
    g_autoptr(GString) list = g_string_new(NULL);

    if (migration_blockers__empty(&m->migration))
        return TRUE;
    for (guint i = 0; i < bl->len; i++) {
        const migration_blocker *b = g_ptr_array_index(bl, i);

        g_string_append_printf(list, _("\n  %s blocker %s on %s: %s"),
                               migration_layer__to_string(b->layer), b->code,
                               b->device ? b->device : _("the machine"), b->message);
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                _("migration refused, nothing was sent and the source is untouched: the machine has %u migration blocker(s) (QEMU's migrate_add_blocker()):%s"),
                bl->len, list->str);
    return FALSE;
}

/* migration_has_failed() between rounds: a cancel stops the migration. */
static gboolean
mig_send__check_cancel(mig_send *s, GError **error)
{
    if (!s->m)
        return TRUE;
    if (!migration_state__check_cancel(s->m, error))
        s->cancelled = true;
    return !s->cancelled;
}

static gboolean
mig_send__record(mig_send *s, guint32 type, const guint8 *payload, guint32 len,
                 const void *data, gsize data_len, GError **error)
{
    guint8 hdr[MIG_HDR_LEN];
    struct iovec iov[3] = {
        { hdr, sizeof(hdr) },
        { (void *)payload, len },
        { (void *)data, data_len },
    };

    le_put32(hdr, type);
    le_put32(hdr + 4, len + (guint32)data_len);
    return mig_chan__writev(&s->ch, iov, data_len ? 3 : 2, error);
}

/* save_zero_page() / ram_save_page(): one batch, data straight from RAM. */
static gboolean
mig_send__batch(mig_send *s, guint region, guint64 first, guint32 count, bool zero,
                GError **error)
{
    guint8 b[MIG_BATCH_LEN];
    const guint8 *data = (const guint8 *)s->regions[region]->ram + first * PAGE;

    le_put32(b, region);
    le_put32(b + 4, count);
    le_put64(b + 8, first * PAGE);
    mig_hashes__update(&s->hashes, region, s->regions[region]->ram, first, count, zero);
    if (zero)
        s->round.zero_pages += count;
    else
        s->round.pages += count;
    return mig_send__record(s, zero ? MIG_REC_ZERO : MIG_REC_PAGES, b, sizeof(b),
                            zero ? NULL : data, zero ? 0 : count * PAGE, error);
}

/* A run of pages: zero ones and the others in separate batches.  A page
 * the guest writes while it is read is dirty again: the next round, or
 * the final one with the vCPUs paused, sends it again. */
static gboolean
mig_send__run(mig_send *s, guint region, guint64 first, guint64 count, GError **error)
{
    const guint8 *base = s->regions[region]->ram;

    while (count) {
        bool zero = mig_page_is_zero(base + first * PAGE);
        guint32 n = 1;

        while (n < count && n < MIG_BATCH_PAGES &&
               mig_page_is_zero(base + (first + n) * PAGE) == zero)
            n++;
        if (!mig_send__batch(s, region, first, n, zero, error))
            return FALSE;
        first += n;
        count -= n;
    }
    return TRUE;
}

/* ram_find_and_save_block(): every run of dirty pages of pc.ram. */
static gboolean
mig_send__dirty(mig_send *s, GError **error)
{
    guint64 p = 0;

    while ((p = mig_bitmap_next(s->dirty, s->ram_pages, p, true)) < s->ram_pages) {
        guint64 end = mig_bitmap_next(s->dirty, s->ram_pages, p, false);

        if (!mig_send__run(s, MIG_REGION_RAM, p, end - p, error))
            return FALSE;
        p = end;
    }
    memset(s->dirty, 0, BITMAP_WORDS(s->ram_pages) * sizeof(*s->dirty));
    return TRUE;
}

/* savevm_dirty_fn: a page a device wrote goes in the next round. */
static void
mig_send__mark(void *opaque, guint64 gpa, guint64 size)
{
    mig_send *s = opaque;
    guint64 end = gpa + size, off;

    for (guint64 a = gpa & ~(PAGE - 1); a < end; a += PAGE) {
        if (!vm__ram_offset(s->v, a, &off))
            continue;
        s->dirty[off / PAGE / 64] |= 1UL << (off / PAGE % 64);
        s->st->device_dirty_pages++;
    }
}

/* DEVICE records, one per payload. */
static gboolean
mig_send__device_payloads(mig_send *s, GPtrArray *payloads, GError **error)
{
    for (guint i = 0; i < payloads->len; i++) {
        GByteArray *b = g_ptr_array_index(payloads, i);

        if (!mig_send__record(s, MIG_REC_DEVICE, b->data, b->len, NULL, 0, error))
            return FALSE;
        s->st->device_bytes += b->len;
    }
    return TRUE;
}

/* qemu_savevm_state_iterate() for devices: their precopy data. */
static gboolean
mig_send__devices_iterate(mig_send *s, GError **error)
{
    g_autoptr(GPtrArray) payloads = NULL;

    if (!s->m)
        return TRUE;
    payloads = g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
    return mig_devices__save(s->m, false, payloads, error) &&
           mig_send__device_payloads(s, payloads, error);
}

/* migration_bitmap_sync(): what KVM logged for pc.ram since the last
 * round (the memslot layer's harvest, which also keeps what slots deleted
 * meanwhile had logged), moved from the region's bitmap into s->dirty. */
static gboolean
mig_send__sync(mig_send *s, guint64 *dirty, GError **error)
{
    memory_region *mr = s->regions[MIG_REGION_RAM];

    if (!memslots__harvest_region(vm__memslots(s->v), mr, error))
        return FALSE;
    /* The pages devices wrote by DMA, which KVM's log never sees
     * (vfio_sync_dirty_bitmap()). */
    if (s->m && !mig_devices__sync_dirty(s->m, mig_send__mark, s, error))
        return FALSE;
    *dirty = 0;
    for (guint64 w = 0; w < BITMAP_WORDS(s->ram_pages); w++) {
        if (mr->dirty_bitmap) {
            s->dirty[w] |= mr->dirty_bitmap[w];
            mr->dirty_bitmap[w] = 0;
        }
        *dirty += __builtin_popcountl(s->dirty[w]);
    }
    return TRUE;
}

static gboolean
mig_send__setup_record(mig_send *s, GError **error)
{
    guint8 b[MIG_SETUP_LEN + MIG_NR_REGIONS * MIG_REGION_LEN] = { 0 };
    struct iovec magic = { (void *)MIGRATION_MAGIC, 8 };

    le_put32(b, PAGE);
    le_put32(b + 4, s->p.return_path ? MIG_FLAG_RETURN_PATH : 0);
    le_put32(b + 8, MIG_NR_REGIONS);
    for (guint i = 0; i < MIG_NR_REGIONS; i++) {
        le_put32(b + MIG_SETUP_LEN + i * MIG_REGION_LEN, i);
        le_put64(b + MIG_SETUP_LEN + i * MIG_REGION_LEN + 8, s->regions[i]->size);
    }
    return mig_chan__writev(&s->ch, &magic, 1, error) &&
           mig_send__record(s, MIG_REC_SETUP, b, sizeof(b), NULL, 0, error);
}

/* ram_save_setup(): dirty logging on, the log so far dropped (round 0
 * sends everything).  An accelerator without a dirty log (the software
 * one) leaves no live rounds: everything goes in stop-and-copy. */
static gboolean
mig_send__setup(mig_send *s, GError **error)
{
    memslots *ms = vm__memslots(s->v);
    guint64 errors = ms->stats.errors, dirty;
    GError *err = NULL;

    s->log_was_on = s->regions[MIG_REGION_RAM]->log_dirty;
    memory_region__set_log(s->regions[MIG_REGION_RAM], true);
    if (ms->stats.errors != errors) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("turning on dirty logging for pc.ram failed: %s"),
                    ms->first_error ? ms->first_error->message : _("unknown error"));
        return FALSE;
    }
    s->st->dirty_log = mig_send__sync(s, &dirty, &err);
    if (!s->st->dirty_log && !g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED)) {
        g_propagate_error(error, err);
        return FALSE;
    }
    g_clear_error(&err);
    if (!mig_send__setup_record(s, error))
        return FALSE;
    /* qemu_savevm_state_setup(): VFIO goes RUNNING -> PRE_COPY and starts
     * logging its DMA. */
    if (s->m && !mig_devices__save_setup(s->m, error))
        return FALSE;
    s->devices_setup = s->m != NULL;
    return TRUE;
}

static void
mig_send__round_begin(mig_send *s, bool final)
{
    s->round = (migration_round_stats){ .round = s->st->rounds, .final = final };
    s->round_start_bytes = s->ch.bytes;
    s->round_start_us = g_get_monotonic_time();
}

/* The ROUND marker, the figures, the progress callback. */
static gboolean
mig_send__round_end(mig_send *s, guint64 dirty_left, GError **error)
{
    migration_round_stats *r = &s->round;
    guint8 b[MIG_ROUND_LEN];

    r->dirty_left = dirty_left;
    r->usec = MAX(1, g_get_monotonic_time() - s->round_start_us);
    le_put32(b, r->round);
    le_put32(b + 4, r->final ? MIG_ROUND_FINAL : 0);
    le_put64(b + 8, r->pages);
    le_put64(b + 16, r->zero_pages);
    le_put64(b + 24, r->dirty_left);
    le_put64(b + 32, s->ch.bytes - s->round_start_bytes);
    le_put64(b + 40, r->usec);
    if (!mig_send__record(s, MIG_REC_ROUND, b, sizeof(b), NULL, 0, error))
        return FALSE;
    r->bytes = s->ch.bytes - s->round_start_bytes;
    r->mb_per_s = (double)r->bytes / (double)r->usec;
    s->st->rounds++;
    s->st->pages += r->pages;
    s->st->zero_pages += r->zero_pages;
    if (s->p.progress)
        s->p.progress(r, s->p.opaque);
    return TRUE;
}

/* ram_save_iterate() + migration_iteration_run(): round 0 sends every
 * page, each next one what the guest dirtied during the previous one,
 * until that fits the downtime target or the rounds run out. */
static gboolean
mig_send__iterate(mig_send *s, GError **error)
{
    guint64 dirty = s->ram_pages;

    if (!s->st->dirty_log)
        return TRUE;
    mig_bitmap_fill(s->dirty, s->ram_pages);
    while (dirty * PAGE > s->p.downtime_bytes && s->st->rounds < s->p.max_rounds) {
        if (!mig_send__check_cancel(s, error))
            return FALSE;
        mig_send__round_begin(s, false);
        if (!mig_send__dirty(s, error) || !mig_send__devices_iterate(s, error) ||
            !mig_send__sync(s, &dirty, error) || !mig_send__round_end(s, dirty, error))
            return FALSE;
    }
    s->st->converged = dirty * PAGE <= s->p.downtime_bytes;
    if (s->round.bytes)
        s->st->expected_downtime_usec = dirty * PAGE * s->round.usec / s->round.bytes;
    return TRUE;
}

static gboolean
mig_send__wait_ack(mig_send *s, GError **error)
{
    guint8 b[MIG_HDR_LEN + MIG_END_LEN];
    GError *err = NULL;
    int r = mig_chan__read(&s->ch, b, sizeof(b), _("the destination's acknowledgement"),
                           true, &err);

    if (r == 0 || g_error_matches(err, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT) ||
        g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)) {
        g_clear_error(&err);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    _("the migration destination closed the connection without acknowledging the migration"));
        return FALSE;
    }
    if (r < 0) {
        g_propagate_error(error, err);
        return FALSE;
    }
    if (le_get32(b) != MIG_REC_ACK || le_get32(b + 4) != MIG_END_LEN || le_get64(b + 16) != 0 ||
        le_get64(b + 8) != s->st->checksum) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration destination did not acknowledge RAM checksum 0x%016" PRIx64 " (record type %u, checksum 0x%016" PRIx64 ")"),
                    s->st->checksum, le_get32(b), le_get64(b + 8));
        return FALSE;
    }
    return TRUE;
}

/* The vCPUs' registers, once they are paused (cpu_synchronize_all_states). */
static gboolean
mig_send__cpus(mig_send *s, GError **error)
{
    g_autoptr(GByteArray) b = NULL;

    if (!vm__started(s->v))
        return TRUE;                     /* never booted: nothing to carry */
    b = g_byte_array_new();
    return vm__save_cpus(s->v, b, error) &&
           mig_send__record(s, MIG_REC_CPUS, b->data, b->len, NULL, 0, error);
}

/* ram_save_complete(): vCPUs paused, the last dirty pages and the boot
 * region (guest_params, stacks), then END with the checksum of it all. */
static gboolean
mig_send__complete(mig_send *s, GError **error)
{
    gint64 t0 = g_get_monotonic_time();
    guint64 dirty;
    guint8 b[MIG_END_LEN];

    if (!mig_send__check_cancel(s, error))
        return FALSE;
    vm__pause(s->v);
    s->paused = true;
    mig_send__round_begin(s, true);
    /* Devices stop first (VFIO: PRE_COPY -> STOP_COPY), so the last sync
     * holds every page their DMA wrote. */
    if (s->m && !mig_devices__save(s->m, true, s->device_final, error))
        return FALSE;
    if (!s->st->dirty_log) {
        mig_bitmap_fill(s->dirty, s->ram_pages);
        if (s->m && !mig_devices__sync_dirty(s->m, mig_send__mark, s, error))
            return FALSE;
    } else if (!mig_send__sync(s, &dirty, error)) {
        return FALSE;
    }
    if (!mig_send__dirty(s, error) ||
        !mig_send__run(s, MIG_REGION_BOOT, 0, s->regions[MIG_REGION_BOOT]->size / PAGE, error) ||
        !mig_send__device_payloads(s, s->device_final, error) ||
        !mig_send__cpus(s, error) ||
        !mig_send__round_end(s, 0, error))
        return FALSE;
    s->st->checksum = mig_hashes__sum(&s->hashes, s->regions);
    le_put64(b, s->st->checksum);
    le_put64(b + 8, s->st->pages + s->st->zero_pages);
    /* The last moment a cancel can still keep the destination from
     * taking over. */
    if (!mig_send__check_cancel(s, error) ||
        !mig_send__record(s, MIG_REC_END, b, sizeof(b), NULL, 0, error) ||
        (s->p.return_path && !mig_send__wait_ack(s, error)))
        return FALSE;
    s->st->downtime_usec = g_get_monotonic_time() - t0;
    return TRUE;
}

/* migrate_fd_error() + migration_iteration_finish(): the guest goes on
 * on the source. */
static void
mig_send__fail(mig_send *s, GError **error)
{
    bool running = vm__started(s->v);

    /* migrate_fd_cancel(): tell the destination why, best effort. */
    if (s->cancelled && error && *error)
        mig_send__record(s, MIG_REC_CANCEL, (const guint8 *)(*error)->message,
                         MIN(strlen((*error)->message), MIG_CANCEL_MAX), NULL, 0, NULL);
    if (s->paused)
        vm__resume(s->v);
    s->paused = false;
    if (s->cancelled)
        g_prefix_error(error, running ? _("migration stopped after %u round(s) and %" PRIu64 " bytes; the guest keeps running on the source: ")
                                      : _("migration stopped after %u round(s) and %" PRIu64 " bytes; the source is unchanged: "),
                       s->st->rounds, s->ch.bytes);
    else
        g_prefix_error(error, running ? _("migration failed in round %u after %" PRIu64 " bytes; the guest keeps running on the source: ")
                                      : _("migration failed in round %u after %" PRIu64 " bytes; the source is unchanged: "),
                       s->round.round, s->ch.bytes);
}

gboolean
migration__send(vm *src, int fd, const migration_params *p, migration_stats *out,
                GError **error)
{
    return migration__send_machine(src, NULL, fd, p, out, error);
}

gboolean
migration__send_machine(vm *src, vmm_machine *m, int fd, const migration_params *p,
                        migration_stats *out, GError **error)
{
    migration_stats st = { 0 };
    mig_send s = { .v = src, .m = m, .st = &st };
    gint64 t0 = g_get_monotonic_time();
    gboolean ok;

    if (out)
        *out = st;
    if (m && !mig_check_blockers(m, error))
        return FALSE;
    if (m)
        migration_state__begin(m);
    if (p)
        s.p = *p;
    s.p.downtime_bytes = s.p.downtime_bytes ? s.p.downtime_bytes : MIG_DEFAULT_DOWNTIME;
    s.p.max_rounds = s.p.max_rounds ? s.p.max_rounds : MIG_DEFAULT_ROUNDS;
    mig_chan__init(&s.ch, fd, s.p.tls, s.p.timeout_ms, _("destination"));
    mig_regions(src, s.regions);
    s.ram_pages = s.regions[MIG_REGION_RAM]->size / PAGE;
    s.dirty = g_new0(unsigned long, BITMAP_WORDS(s.ram_pages));
    mig_hashes__init(&s.hashes, s.regions);
    s.device_final = g_ptr_array_new_with_free_func((GDestroyNotify)g_byte_array_unref);
    ok = mig_send__setup(&s, error) && mig_send__iterate(&s, error) &&
         mig_send__complete(&s, error);
    /* migrate_fd_cleanup(): a device that failed or was cancelled goes
     * back to RUNNING; on success it stays stopped with the source. */
    if (s.devices_setup)
        mig_devices__save_cleanup(m, !ok);
    g_ptr_array_unref(s.device_final);
    if (m)
        migration_state__end(m);
    if (!ok)
        mig_send__fail(&s, error);
    if (!s.log_was_on)
        memory_region__set_log(s.regions[MIG_REGION_RAM], false);
    g_free(s.dirty);
    mig_hashes__free(&s.hashes);
    st.bytes = s.ch.bytes;
    st.usec = g_get_monotonic_time() - t0;
    if (out)
        *out = st;
    return ok;
}

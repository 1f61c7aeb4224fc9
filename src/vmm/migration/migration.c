/*
 * migration/migration.c: precopy live migration of guest RAM, after QEMU's
 * migration/ram.c (ram_save_setup, ram_save_iterate, ram_save_complete,
 * migration_bitmap_sync, ram_load) and migration/migration.c's
 * iteration loop (migration_iteration_run).  The stream format is in
 * migration/migration.h.
 */
#include "migration/migration.h"

#include <errno.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "migration/le_bytes.h"
#include "migration/state.h"
#include "dmg_i18n.h"
#include "memory/memslots.h"
#include "migration/channel.h"
#include "migration/devices.h"

#define MiB ((guint64)1024 * 1024)
#define PAGE ((guint64)4096)
#define MIG_BATCH_PAGES 256u             /* 1 MiB of data per PAGES record */
#define MIG_HDR_LEN 8u                   /* {u32 type, u32 length} */
#define MIG_BATCH_LEN 16u                /* {u32 region, u32 count, u64 offset} */
#define MIG_REGION_LEN 16u               /* {u32 id, u32 0, u64 size} */
#define MIG_SETUP_LEN 16u                /* {u32 page, u32 flags, u32 nr, u32 0} */
#define MIG_ROUND_LEN 48u
#define MIG_END_LEN 16u                  /* {u64 checksum, u64 pages} */
#define MIG_MAX_REGIONS 8u
#define MIG_CANCEL_MAX 4096u             /* CANCEL: the reason, at most */
#define MIG_FLAG_RETURN_PATH 1u          /* SETUP: the source waits for ACK */
#define MIG_ROUND_FINAL 1u
#define MIG_DEFAULT_DOWNTIME (8 * MiB)
#define MIG_DEFAULT_ROUNDS 30u
#define BITMAP_WORDS(pages) (((pages) + 63) / 64)

G_STATIC_ASSERT(sizeof(unsigned long) == 8);   /* memory/memslots.c's bitmaps */
G_STATIC_ASSERT(sizeof(MIGRATION_MAGIC) - 1 == 8);

enum {
    MIG_REC_SETUP = 1,
    MIG_REC_PAGES,
    MIG_REC_ZERO,
    MIG_REC_ROUND,
    MIG_REC_END,
    MIG_REC_ACK,
    MIG_REC_CANCEL,
    MIG_REC_CPUS,                        /* vm__save_cpus(), stop-and-copy */
    MIG_REC_DEVICE,                      /* migration/devices.h */
};

#define MIG_CPUS_MAX (1u << 20)

enum {
    MIG_REGION_BOOT,
    MIG_REGION_RAM,
    MIG_NR_REGIONS,
};

static const char *const mig_region_names[MIG_NR_REGIONS] = { "boot", "pc.ram" };





/* ------------------------------------------------------------------ */
/* RAM                                                                 */

static void
mig_regions(vm *v, memory_region **regions)
{
    regions[MIG_REGION_BOOT] = vm__boot_region(v);
    regions[MIG_REGION_RAM] = vm__ram_region(v);
}

/* buffer_is_zero() */
static bool
mig_page_is_zero(const guint8 *page)
{
    const guint64 *w = (const guint64 *)page;
    guint64 acc = 0;

    for (guint i = 0; i < PAGE / 8; i++)
        acc |= w[i];
    return acc == 0;
}

/* splitmix64's finalizer: each word mixed with its position. */
static guint64
mig_mix(guint64 x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The hash of page @index of region @id: its words weighted by position,
 * mixed with where it is.  A zero page needs no reading (@page NULL). */
static guint64
mig_page_hash(guint id, guint64 index, const guint8 *page)
{
    const guint64 *w = (const guint64 *)page;
    guint64 acc = 0;

    for (guint i = 0; page && i < PAGE / 8; i++)
        acc += w[i] * (0x9e3779b97f4a7c15ULL + 2 * i);
    return mig_mix(acc ^ mig_mix(index << 4 | id));
}

/* What END carries: the sum of every page's hash.  Both sides keep one
 * hash per page, updated as each page is sent or received, so the sum is
 * ready at switch-over without reading all RAM in the downtime.  The
 * last time a page is sent it holds what the source ends with: a page
 * written after it was read is dirty, and goes again. */
typedef struct mig_hashes {
    guint64 *page[MIG_NR_REGIONS];
} mig_hashes;

static void
mig_hashes__init(mig_hashes *h, memory_region **regions)
{
    for (guint i = 0; i < MIG_NR_REGIONS; i++)
        h->page[i] = g_new0(guint64, regions[i]->size / PAGE);
}

static void
mig_hashes__free(mig_hashes *h)
{
    for (guint i = 0; i < MIG_NR_REGIONS; i++)
        g_clear_pointer(&h->page[i], g_free);
}

/* Pages [first, first + count) of region @id as they are in @base now. */
static void
mig_hashes__update(mig_hashes *h, guint id, const guint8 *base, guint64 first,
                   guint32 count, bool zero)
{
    for (guint64 p = first; p < first + count; p++)
        h->page[id][p] = mig_page_hash(id, p, zero ? NULL : base + p * PAGE);
}

static guint64
mig_hashes__sum(const mig_hashes *h, memory_region **regions)
{
    guint64 sum = 0;

    for (guint i = 0; i < MIG_NR_REGIONS; i++)
        for (guint64 p = 0; p < regions[i]->size / PAGE; p++)
            sum += h->page[i][p];
    return sum;
}

guint64
migration__ram_checksum(vm *v)
{
    memory_region *regions[MIG_NR_REGIONS];
    guint64 sum = 0;

    mig_regions(v, regions);
    for (guint i = 0; i < MIG_NR_REGIONS; i++)
        for (guint64 p = 0; p < regions[i]->size / PAGE; p++)
            sum += mig_page_hash(i, p, (const guint8 *)regions[i]->ram + p * PAGE);
    return sum;
}

/* Index of the first bit at or after @from that is @set, or @n. */
static guint64
mig_bitmap_next(const unsigned long *bm, guint64 n, guint64 from, bool set)
{
    while (from < n) {
        unsigned long w = (bm[from / 64] ^ (set ? 0 : ~0UL)) & (~0UL << (from % 64));

        if (w)
            return MIN(n, from / 64 * 64 + (guint64)__builtin_ctzl(w));
        from = (from / 64 + 1) * 64;
    }
    return n;
}

static void
mig_bitmap_fill(unsigned long *bm, guint64 n)
{
    memset(bm, 0, BITMAP_WORDS(n) * sizeof(*bm));
    for (guint64 p = 0; p < n; p++)
        bm[p / 64] |= 1UL << (p % 64);
}

/* ------------------------------------------------------------------ */
/* Source                                                              */

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

/* ------------------------------------------------------------------ */
/* Destination                                                         */

typedef struct mig_recv {
    vm *v;
    vmm_machine *m;                      /* its devices, or NULL */
    const migration_params *p;           /* or NULL */
    mig_chan ch;
    memory_region *regions[MIG_NR_REGIONS];
    mig_hashes hashes;                   /* of the pages as received */
    /* Pages a ZERO record of this stream cleared, not written since by a
     * PAGES record: zero, and hashed as zero, already. */
    unsigned long *zeroed[MIG_NR_REGIONS];
    migration_stats *st;
    guint32 flags;
    bool final_seen;
    guint64 rec_start;                   /* stream offset of the record */
} mig_recv;

static gboolean
mig_recv__invalid(mig_recv *r, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static gboolean
mig_recv__invalid(mig_recv *r, GError **error, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("migration stream: %s (record at byte %" PRIu64 ")"), msg, r->rec_start);
    return FALSE;
}

static char *
mig_escape(const guint8 *b, gsize n)
{
    GString *s = g_string_new(NULL);

    for (gsize i = 0; i < n; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
            g_string_append_c(s, b[i]);
        else
            g_string_append_printf(s, "\\x%02x", b[i]);
    }
    return g_string_free(s, FALSE);
}

static gboolean
mig_recv__magic(mig_recv *r, GError **error)
{
    guint8 m[8];
    g_autofree char *seen = NULL;

    if (!mig_chan__read_all(&r->ch, m, sizeof(m), _("the magic"), error))
        return FALSE;
    if (!memcmp(m, MIGRATION_MAGIC, sizeof(m)))
        return TRUE;
    if (!memcmp(m, MIGRATION_MAGIC, 6) && g_ascii_isdigit(m[6]) && m[7] == '\n') {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    _("migration stream of version %c; this VMM reads version 1"), m[6]);
        return FALSE;
    }
    seen = mig_escape(m, sizeof(m));
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("not a dmaguard migration stream (bad magic \"%s\")"), seen);
    return FALSE;
}

static char *
mig_size(guint64 bytes)
{
    return bytes % MiB ? g_strdup_printf(_("%" PRIu64 " bytes"), bytes)
                       : g_strdup_printf(_("%" PRIu64 " MiB"), bytes / MiB);
}

/* One region of SETUP: known, once, of the destination's size. */
static gboolean
mig_recv__region(mig_recv *r, const guint8 *b, guint *seen, GError **error)
{
    guint32 id = le_get32(b);
    guint64 size = le_get64(b + 8);
    g_autofree char *theirs = NULL, *ours = NULL;

    if (id >= MIG_NR_REGIONS)
        return mig_recv__invalid(r, error, _("the source has RAM region %u, the destination does not"), id);
    if (*seen & (1u << id))
        return mig_recv__invalid(r, error, _("RAM region %s listed twice"), mig_region_names[id]);
    *seen |= 1u << id;
    if (size == r->regions[id]->size)
        return TRUE;
    theirs = mig_size(size);
    ours = mig_size(r->regions[id]->size);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                _("the migration source's %s is %s, the destination's %s: both VMs need the same memory size"),
                mig_region_names[id], theirs, ours);
    return FALSE;
}

/* qemu_loadvm_state_header() + RAM_SAVE_FLAG_MEM_SIZE */
static gboolean
mig_recv__setup(mig_recv *r, GError **error)
{
    guint8 hdr[MIG_HDR_LEN], b[MIG_SETUP_LEN + MIG_MAX_REGIONS * MIG_REGION_LEN];
    guint32 len, nr;
    guint seen = 0;

    r->rec_start = r->ch.bytes;
    if (!mig_chan__read_all(&r->ch, hdr, sizeof(hdr), _("the setup record"), error))
        return FALSE;
    len = le_get32(hdr + 4);
    if (le_get32(hdr) != MIG_REC_SETUP)
        return mig_recv__invalid(r, error, _("the first record is of type %u, not setup"), le_get32(hdr));
    if (len < MIG_SETUP_LEN || len > sizeof(b) || (len - MIG_SETUP_LEN) % MIG_REGION_LEN)
        return mig_recv__invalid(r, error, _("setup record of %u bytes"), len);
    if (!mig_chan__read_all(&r->ch, b, len, _("the setup record"), error))
        return FALSE;
    nr = le_get32(b + 8);
    if (le_get32(b) != PAGE)
        return mig_recv__invalid(r, error, _("the source uses %u-byte pages, the destination 4096"), le_get32(b));
    if (nr != (len - MIG_SETUP_LEN) / MIG_REGION_LEN)
        return mig_recv__invalid(r, error, _("setup record of %u bytes lists %u regions"), len, nr);
    r->flags = le_get32(b + 4);
    for (guint i = 0; i < nr; i++)
        if (!mig_recv__region(r, b + MIG_SETUP_LEN + i * MIG_REGION_LEN, &seen, error))
            return FALSE;
    if (seen != (1u << MIG_NR_REGIONS) - 1)
        return mig_recv__invalid(r, error, _("the source sends no %s"),
                                 mig_region_names[seen & 1 ? MIG_REGION_RAM : MIG_REGION_BOOT]);
    return TRUE;
}

/* ram_handle_zero(): only pages that are not zero yet are written.  A
 * page an earlier ZERO record cleared, and no PAGES record wrote since, is
 * neither read nor hashed again: ZERO records repeated over the same
 * pages cost no more than the RAM once, not a read of count pages each. */
static void
mig_recv__zero(mig_recv *r, guint region, guint64 first, guint32 count)
{
    unsigned long *zeroed = r->zeroed[region];
    guint8 *base = r->regions[region]->ram;

    for (guint64 p = first; p < first + count; p++) {
        if (zeroed[p / 64] & (1UL << (p % 64)))
            continue;
        if (!mig_page_is_zero(base + p * PAGE))
            memset(base + p * PAGE, 0, PAGE);
        zeroed[p / 64] |= 1UL << (p % 64);
        mig_hashes__update(&r->hashes, region, base, p, 1, true);
    }
}

static gboolean
mig_recv__batch_check(mig_recv *r, guint32 type, guint32 len, guint32 region,
                      guint32 count, guint64 offset, GError **error)
{
    guint64 size;

    if (region >= MIG_NR_REGIONS)
        return mig_recv__invalid(r, error, _("page batch for RAM region %u, which does not exist"), region);
    size = r->regions[region]->size;
    if (!count || offset % PAGE)
        return mig_recv__invalid(r, error, _("page batch of %u pages at offset 0x%" PRIx64), count, offset);
    /* The source sends both kinds in batches of MIG_BATCH_PAGES at most
     * (mig_send__run()): a ZERO record of more would have the
     * destination check that many pages for 24 bytes of stream. */
    if (count > MIG_BATCH_PAGES && type == MIG_REC_ZERO)
        return mig_recv__invalid(r, error, _("zero page batch of %u pages; a batch has at most %u"),
                                 count, MIG_BATCH_PAGES);
    if (count > MIG_BATCH_PAGES)
        return mig_recv__invalid(r, error, _("page batch of %u pages; a batch has at most %u"),
                                 count, MIG_BATCH_PAGES);
    if (type == MIG_REC_PAGES && len != MIG_BATCH_LEN + count * PAGE)
        return mig_recv__invalid(r, error, _("page batch of %u pages in a record of %u bytes"), count, len);
    if (offset >= size || count > (size - offset) / PAGE)
        return mig_recv__invalid(r, error, _("page 0x%" PRIx64 " of %s is outside the destination's %" PRIu64 " MiB of %s"),
                                 MAX(offset, size), mig_region_names[region], size / MiB,
                                 region == MIG_REGION_RAM ? _("RAM") : _("boot memory"));
    return TRUE;
}

/* ram_load_precopy(): RAM_SAVE_FLAG_PAGE and RAM_SAVE_FLAG_ZERO; the
 * data goes straight into the destination's RAM. */
static gboolean
mig_recv__pages(mig_recv *r, guint32 type, guint32 len, GError **error)
{
    guint8 b[MIG_BATCH_LEN];
    guint32 region, count;
    guint64 offset;
    guint8 *hva;

    if (len < MIG_BATCH_LEN || (type == MIG_REC_ZERO && len != MIG_BATCH_LEN))
        return mig_recv__invalid(r, error, _("page batch record of %u bytes"), len);
    if (!mig_chan__read_all(&r->ch, b, sizeof(b), _("a page batch"), error))
        return FALSE;
    region = le_get32(b);
    count = le_get32(b + 4);
    offset = le_get64(b + 8);
    if (!mig_recv__batch_check(r, type, len, region, count, offset, error))
        return FALSE;
    if (type == MIG_REC_ZERO) {
        mig_recv__zero(r, region, offset / PAGE, count);
        r->st->zero_pages += count;
        return TRUE;
    }
    for (guint64 p = offset / PAGE; p < offset / PAGE + count; p++)
        r->zeroed[region][p / 64] &= ~(1UL << (p % 64));
    hva = (guint8 *)r->regions[region]->ram + offset;
    if (!mig_chan__read_all(&r->ch, hva, count * PAGE, _("a page batch"), error))
        return FALSE;
    r->st->pages += count;
    mig_hashes__update(&r->hashes, region, r->regions[region]->ram, offset / PAGE, count, false);
    return TRUE;
}

static gboolean
mig_recv__round(mig_recv *r, guint32 len, GError **error)
{
    guint8 b[MIG_ROUND_LEN];

    if (len != MIG_ROUND_LEN)
        return mig_recv__invalid(r, error, _("round record of %u bytes"), len);
    if (!mig_chan__read_all(&r->ch, b, sizeof(b), _("a round record"), error))
        return FALSE;
    if (le_get32(b) != r->st->rounds)
        return mig_recv__invalid(r, error, _("round %u where round %u was due"), le_get32(b), r->st->rounds);
    r->final_seen = le_get32(b + 4) & MIG_ROUND_FINAL;
    r->st->rounds++;
    if (r->p && r->p->progress) {
        /* The source's figures for the round, as it sent them. */
        migration_round_stats rs = {
            .round = le_get32(b), .final = r->final_seen, .pages = le_get64(b + 8),
            .zero_pages = le_get64(b + 16), .dirty_left = le_get64(b + 24),
            .bytes = le_get64(b + 32), .usec = MAX(1, le_get64(b + 40)),
        };

        rs.mb_per_s = (double)rs.bytes / (double)rs.usec;
        r->p->progress(&rs, r->p->opaque);
    }
    return TRUE;
}

static gboolean
mig_recv__end(mig_recv *r, guint32 len, GError **error)
{
    guint8 b[MIG_END_LEN];
    guint64 pages;

    if (len != MIG_END_LEN)
        return mig_recv__invalid(r, error, _("end record of %u bytes"), len);
    if (!mig_chan__read_all(&r->ch, b, sizeof(b), _("the end record"), error))
        return FALSE;
    if (!r->final_seen)
        return mig_recv__invalid(r, error, _("end record before the stop-and-copy round"));
    pages = le_get64(b + 8);
    if (pages != r->st->pages + r->st->zero_pages)
        return mig_recv__invalid(r, error, _("the end record counts %" PRIu64 " pages, the stream carried %" PRIu64),
                                 pages, r->st->pages + r->st->zero_pages);
    r->st->checksum = mig_hashes__sum(&r->hashes, r->regions);
    if (r->st->checksum != le_get64(b)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("RAM checksum mismatch after migration: the source has 0x%016" PRIx64 ", the destination 0x%016" PRIx64),
                    le_get64(b), r->st->checksum);
        return FALSE;
    }
    return TRUE;
}

/* The source cancelled (migrate_fd_cancel()): fail with its reason. */
static gboolean
mig_recv__cancel(mig_recv *r, guint32 len, GError **error)
{
    g_autofree char *raw = NULL, *reason = NULL;

    if (len > MIG_CANCEL_MAX)
        return mig_recv__invalid(r, error, _("cancel record of %u bytes"), len);
    raw = g_malloc0(len + 1);
    if (!mig_chan__read_all(&r->ch, raw, len, _("the cancel record"), error))
        return FALSE;
    reason = g_utf8_make_valid(raw, len);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                _("the source cancelled the migration: %s (after %" PRIu64 " bytes, rounds completed: %u; the guest was not started here)"),
                reason, r->ch.bytes, r->st->rounds);
    return FALSE;
}

/* A variable-size record, read whole: CPUS and DEVICE. */
static guint8 *
mig_recv__blob(mig_recv *r, guint32 len, guint32 max, const char *what, GError **error)
{
    g_autofree guint8 *b = NULL;

    if (len > max) {
        mig_recv__invalid(r, error, _("%s record of %u bytes"), what, len);
        return NULL;
    }
    b = g_malloc(MAX(len, 1));
    if (!mig_chan__read_all(&r->ch, b, len, what, error))
        return NULL;
    return g_steal_pointer(&b);
}

/* cpu vmstate: where the vCPUs resume on this side. */
static gboolean
mig_recv__cpus(mig_recv *r, guint32 len, GError **error)
{
    g_autofree guint8 *b = mig_recv__blob(r, len, MIG_CPUS_MAX, _("the vCPU state"), error);

    return b && vm__load_cpus(r->v, b, len, error);
}

/* qemu_loadvm_section_start_full(): a device's bytes to the device. */
static gboolean
mig_recv__device(mig_recv *r, guint32 len, GError **error)
{
    g_autofree guint8 *b = NULL;

    if (!r->m)
        return mig_recv__invalid(r, error, _("device state for a destination without devices"));
    if (!(b = mig_recv__blob(r, len, MIG_DEVICE_MAX_LEN, _("a device state"), error)))
        return FALSE;
    r->st->device_bytes += len;
    return mig_devices__load(r->m, b, len, error);
}

/* qemu_loadvm_state_main(): records until END. */
static gboolean
mig_recv__records(mig_recv *r, GError **error)
{
    for (;;) {
        guint8 hdr[MIG_HDR_LEN];
        gboolean ok;
        int got;

        r->rec_start = r->ch.bytes;
        got = mig_chan__read(&r->ch, hdr, sizeof(hdr), _("a record header"), true, error);
        if (got < 0)
            return FALSE;
        if (got == 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                        _("migration stream ended after %" PRIu64 " bytes without its end record (rounds completed: %u)"),
                        r->ch.bytes, r->st->rounds);
            return FALSE;
        }
        /* The final ROUND closes stop-and-copy: only END or CANCEL may
         * follow, nothing that would change the guest after it. */
        if (r->final_seen && le_get32(hdr) != MIG_REC_END && le_get32(hdr) != MIG_REC_CANCEL)
            return mig_recv__invalid(r, error, _("record of type %u after the stop-and-copy round, where only the end record may come"),
                                     le_get32(hdr));
        switch (le_get32(hdr)) {
        case MIG_REC_PAGES:
        case MIG_REC_ZERO:
            ok = mig_recv__pages(r, le_get32(hdr), le_get32(hdr + 4), error);
            break;
        case MIG_REC_ROUND:
            ok = mig_recv__round(r, le_get32(hdr + 4), error);
            break;
        case MIG_REC_CPUS:
            ok = mig_recv__cpus(r, le_get32(hdr + 4), error);
            break;
        case MIG_REC_DEVICE:
            ok = mig_recv__device(r, le_get32(hdr + 4), error);
            break;
        case MIG_REC_END:
            return mig_recv__end(r, le_get32(hdr + 4), error);
        case MIG_REC_CANCEL:
            return mig_recv__cancel(r, le_get32(hdr + 4), error);
        default:
            ok = mig_recv__invalid(r, error, _("unexpected record type %u"), le_get32(hdr));
            break;
        }
        if (!ok)
            return FALSE;
    }
}

/* The return path: the checksum the destination found. */
static gboolean
mig_recv__ack(mig_recv *r, GError **error)
{
    guint8 b[MIG_HDR_LEN + MIG_END_LEN] = { 0 };
    struct iovec iov = { b, sizeof(b) };

    if (!(r->flags & MIG_FLAG_RETURN_PATH))
        return TRUE;
    le_put32(b, MIG_REC_ACK);
    le_put32(b + 4, MIG_END_LEN);
    le_put64(b + 8, r->st->checksum);
    r->ch.peer = _("source");
    return mig_chan__writev(&r->ch, &iov, 1, error);
}

static gboolean
mig_recv__start(vm *dst, vmm_machine *m, GError **error)
{
    vm_result res;

    if (vm__start(dst, error)) {
        /* vfio_vmstate_change(): the devices run with the guest. */
        if (m)
            savevm__vm_running(m, true);
        return TRUE;
    }
    vm__stop(dst, &res);
    g_prefix_error(error, _("starting the guest on the migration destination failed: "));
    return FALSE;
}

gboolean
migration__receive(vm *dst, int fd, const migration_params *p, migration_stats *out,
                   GError **error)
{
    return migration__receive_machine(dst, NULL, fd, p, out, error);
}

gboolean
migration__receive_machine(vm *dst, vmm_machine *m, int fd, const migration_params *p,
                           migration_stats *out, GError **error)
{
    migration_stats st = { 0 };
    mig_recv r = { .v = dst, .m = m, .p = p, .st = &st };
    gint64 t0 = g_get_monotonic_time();
    gboolean ok;

    if (vm__started(dst)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    _("the migration destination is running; it must be stopped to receive a guest"));
        return FALSE;
    }
    mig_chan__init(&r.ch, fd, p ? p->tls : NULL, p ? p->timeout_ms : 0, _("source"));
    mig_regions(dst, r.regions);
    if (m && !mig_devices__load_setup(m, error))
        return FALSE;
    mig_hashes__init(&r.hashes, r.regions);
    for (guint i = 0; i < MIG_NR_REGIONS; i++)
        r.zeroed[i] = g_new0(unsigned long, BITMAP_WORDS(r.regions[i]->size / PAGE));
    ok = mig_recv__magic(&r, error) && mig_recv__setup(&r, error) &&
         mig_recv__records(&r, error) &&
         (!m || mig_devices__load_complete(m, error)) && mig_recv__ack(&r, error);
    if (m)
        mig_devices__load_cleanup(m, !ok);
    if (!ok)
        vm__load_cpus(dst, NULL, 0, NULL);   /* a half-received state is not used */
    ok = ok && (!p || !p->autostart || mig_recv__start(dst, m, error));
    mig_hashes__free(&r.hashes);
    for (guint i = 0; i < MIG_NR_REGIONS; i++)
        g_free(r.zeroed[i]);
    st.bytes = r.ch.bytes;
    st.usec = g_get_monotonic_time() - t0;
    if (out)
        *out = st;
    return ok;
}

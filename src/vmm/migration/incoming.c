/*
 * migration/incoming.c: the destination of a precopy live migration of
 * guest RAM, after QEMU's migration/ram.c (ram_load, ram_load_precopy,
 * ram_handle_zero) and migration/savevm.c's stream reader
 * (qemu_loadvm_state_header, qemu_loadvm_state_main).  The stream format
 * is in migration/migration.h, what both ends share in migration/ram.h.
 */
#include "migration/migration.h"

#include <gio/gio.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/uio.h>

#include "migration/le_bytes.h"
#include "migration/ram.h"
#include "dmg_i18n.h"
#include "migration/channel.h"
#include "migration/devices.h"

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

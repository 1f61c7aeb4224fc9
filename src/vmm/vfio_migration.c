/*
 * vfio_migration.c: the soft VFIO function and its VFIO migration v2
 * (see vfio_migration.h), after QEMU's hw/vfio/migration.c and the
 * kernel's drivers/vfio/vfio_main.c.
 *
 * Locking: mig->lock guards the FSM, the registers, the ring position and
 * sequence, the data sessions and the DMA log.  The DMA thread holds it
 * across each record it writes, so whoever takes it (a state change) knows
 * no DMA is in flight; it takes the soft IOMMU's lock inside, never the
 * other way round.
 */
#include "vfio_migration.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmg_i18n.h"
#include "memory.h"
#include "savevm.h"
#include "vfio_soft.h"

/* VFIO_MIGRATION_* of struct vfio_device_feature_migration. */
#define MIG_FLAG_STOP_COPY   (1u << 0)
#define MIG_FLAG_P2P         (1u << 1)
#define MIG_FLAG_PRE_COPY    (1u << 2)

/* vfio_main.c: LOG_MAX_RANGES */
#define LOG_MAX_RANGES       256u
#define LOG_PAGE_SIZE        4096ULL
/* One report covers at most this much IOVA (a 32 KiB bitmap). */
#define LOG_REPORT_WINDOW    (1ULL << 30)

/* The data stream. */
#define STREAM_MAGIC         0x4d564744u /* "DGVM" */
#define STREAM_VERSION       1u
#define STREAM_CHUNK_REGS    1u
#define STREAM_CHUNK_FINAL   2u
#define STREAM_HEADER_SIZE   16u
#define STREAM_REGS_SIZE     (4u + 4u * VFIO_MIG_NR_REGS)
#define STREAM_FINAL_SIZE    (STREAM_REGS_SIZE + 16u)
/* More than any stream of this device: a bigger RESUMING write fails. */
#define STREAM_MAX           (1u << 20)
/* QEMU's VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE */
#define SAVE_BLOCK_SIZE      (1u << 20)

#define RECORD_SIZE          ((guint64)sizeof(vfio_mig_dma_record))

struct vfio_migration {
    vmm_machine *m;
    vfio_device *dev;
    char *id;                            /* savevm id, "vfio:<alias>" */
    guint32 flags;                       /* MIG_FLAG_* */
    bool tracking;                       /* device or IOMMU dirty tracking */

    GMutex lock;
    GCond cond;                          /* state, registers, records, quit */
    vfio_mig_state state;
    GString *path;                       /* of the last set_state */

    /* The device's state: what migrates. */
    guint32 regs[VFIO_MIG_NR_REGS];
    guint64 ring_pos;
    guint64 seq;

    guint64 records;
    char *dma_error;
    guint regs_gen, regs_sent_gen;       /* register writes vs. PRE_COPY chunks */
    GThread *thread;
    bool quit;

    /* The saving session: the device writes save_wfd, the user reads
     * save_rfd. */
    int save_rfd, save_wfd;
    guint64 save_written;
    guint64 initial_len;                 /* the first PRE_COPY chunk */
    /* The resuming session: a memfd the user writes. */
    int resume_fd;
    guint64 resume_len;

    /* DMA logging. */
    soft_dirty_log *log;
    GArray *log_ranges;                  /* soft_dirty_range */

    /* savevm */
    bool saving;
    vfio_mig_state setup_state;          /* the state save_setup found */
};

static gint test_no_dirty_tracking;      /* atomic */

/* ------------------------------------------------------------------ */
/* States and the FSM of vfio_mig_get_next_state()                     */

const char *
vfio_mig_state__to_string(vfio_mig_state state)
{
    /* mig_state_to_str(), hw/vfio/migration.c */
    switch (state) {
    case VFIO_MIG_STATE_ERROR:
        return "ERROR";
    case VFIO_MIG_STATE_STOP:
        return "STOP";
    case VFIO_MIG_STATE_RUNNING:
        return "RUNNING";
    case VFIO_MIG_STATE_STOP_COPY:
        return "STOP_COPY";
    case VFIO_MIG_STATE_RESUMING:
        return "RESUMING";
    case VFIO_MIG_STATE_RUNNING_P2P:
        return "RUNNING_P2P";
    case VFIO_MIG_STATE_PRE_COPY:
        return "PRE_COPY";
    case VFIO_MIG_STATE_PRE_COPY_P2P:
        return "PRE_COPY_P2P";
    default:
        return "UNKNOWN STATE";
    }
}

#define S_ERR  VFIO_MIG_STATE_ERROR
#define S_STOP VFIO_MIG_STATE_STOP
#define S_RUN  VFIO_MIG_STATE_RUNNING
#define S_SC   VFIO_MIG_STATE_STOP_COPY
#define S_RES  VFIO_MIG_STATE_RESUMING
#define S_RP2P VFIO_MIG_STATE_RUNNING_P2P
#define S_PC   VFIO_MIG_STATE_PRE_COPY
#define S_PP2P VFIO_MIG_STATE_PRE_COPY_P2P

/* vfio_from_fsm_table[cur][new]: the next state on the shortest path. */
static const guint8 fsm_next[VFIO_MIG_STATE_NUM][VFIO_MIG_STATE_NUM] = {
    [S_STOP] = { [S_STOP] = S_STOP, [S_RUN] = S_RP2P, [S_PC] = S_RP2P, [S_PP2P] = S_RP2P,
                 [S_SC] = S_SC, [S_RES] = S_RES, [S_RP2P] = S_RP2P, [S_ERR] = S_ERR },
    [S_RUN] = { [S_STOP] = S_RP2P, [S_RUN] = S_RUN, [S_PC] = S_PC, [S_PP2P] = S_RP2P,
                [S_SC] = S_RP2P, [S_RES] = S_RP2P, [S_RP2P] = S_RP2P, [S_ERR] = S_ERR },
    [S_PC] = { [S_STOP] = S_RUN, [S_RUN] = S_RUN, [S_PC] = S_PC, [S_PP2P] = S_PP2P,
               [S_SC] = S_PP2P, [S_RES] = S_RUN, [S_RP2P] = S_RUN, [S_ERR] = S_ERR },
    [S_PP2P] = { [S_STOP] = S_RP2P, [S_RUN] = S_RP2P, [S_PC] = S_PC, [S_PP2P] = S_PP2P,
                 [S_SC] = S_SC, [S_RES] = S_RP2P, [S_RP2P] = S_RP2P, [S_ERR] = S_ERR },
    [S_SC] = { [S_STOP] = S_STOP, [S_RUN] = S_STOP, [S_PC] = S_ERR, [S_PP2P] = S_ERR,
               [S_SC] = S_SC, [S_RES] = S_STOP, [S_RP2P] = S_STOP, [S_ERR] = S_ERR },
    [S_RES] = { [S_STOP] = S_STOP, [S_RUN] = S_STOP, [S_PC] = S_ERR, [S_PP2P] = S_ERR,
                [S_SC] = S_STOP, [S_RES] = S_RES, [S_RP2P] = S_STOP, [S_ERR] = S_ERR },
    [S_RP2P] = { [S_STOP] = S_STOP, [S_RUN] = S_RUN, [S_PC] = S_RUN, [S_PP2P] = S_PP2P,
                 [S_SC] = S_STOP, [S_RES] = S_STOP, [S_RP2P] = S_RP2P, [S_ERR] = S_ERR },
    [S_ERR] = { [S_STOP] = S_ERR, [S_RUN] = S_ERR, [S_PC] = S_ERR, [S_PP2P] = S_ERR,
                [S_SC] = S_ERR, [S_RES] = S_ERR, [S_RP2P] = S_ERR, [S_ERR] = S_ERR },
};

/* state_flags_table[]: what a device must support to be in a state. */
static const guint32 fsm_flags[VFIO_MIG_STATE_NUM] = {
    [S_STOP] = MIG_FLAG_STOP_COPY,
    [S_RUN] = MIG_FLAG_STOP_COPY,
    [S_PC] = MIG_FLAG_STOP_COPY | MIG_FLAG_PRE_COPY,
    [S_PP2P] = MIG_FLAG_STOP_COPY | MIG_FLAG_P2P | MIG_FLAG_PRE_COPY,
    [S_SC] = MIG_FLAG_STOP_COPY,
    [S_RES] = MIG_FLAG_STOP_COPY,
    [S_RP2P] = MIG_FLAG_STOP_COPY | MIG_FLAG_P2P,
    [S_ERR] = ~0u,
};

static bool
fsm_supported(guint32 flags, vfio_mig_state s)
{
    return (guint)s < VFIO_MIG_STATE_NUM && (fsm_flags[s] & flags) == fsm_flags[s];
}

static gboolean
fsm_next_state(guint32 flags, vfio_mig_state cur, vfio_mig_state new_state,
               vfio_mig_state *next)
{
    vfio_mig_state n;

    if (!fsm_supported(flags, cur) || !fsm_supported(flags, new_state))
        return FALSE;
    /* Arcs through unsupported optional states are skipped.  The kernel's
     * loop spun forever on the ERROR sentinel (state_flags_table[ERROR] is
     * ~0, never supported) for a blocked request such as STOP_COPY ->
     * PRE_COPY; upstream stops at ERROR ("vfio: Fix ... skip loop on the
     * ERROR sentinel"), and so do we. */
    n = fsm_next[cur][new_state];
    while (n != S_ERR && !fsm_supported(flags, n))
        n = fsm_next[n][new_state];
    *next = n;
    return n != S_ERR;
}

gboolean
vfio_migration__next_state(bool p2p, vfio_mig_state cur, vfio_mig_state new_state,
                           vfio_mig_state *next)
{
    guint32 flags = MIG_FLAG_STOP_COPY | MIG_FLAG_PRE_COPY | (p2p ? MIG_FLAG_P2P : 0);

    return fsm_next_state(flags, cur, new_state, next);
}

/* The device generates DMA and answers MMIO: RUNNING and PRE_COPY, and
 * their P2P variants (which only forbid P2P DMA, and this device does
 * none: uAPI "If the device can identify P2P transactions then it can stop
 * only P2P DMA"). */
static bool
state_runs(vfio_mig_state s)
{
    return s == S_RUN || s == S_RP2P || s == S_PC || s == S_PP2P;
}

static bool
state_precopy(vfio_mig_state s)
{
    return s == S_PC || s == S_PP2P;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static vfio_migration *
mig_of(vfio_device *dev)
{
    /* Only devices with a soft function (vfio_migration__present()). */
    g_assert(dev && dev->mig);
    return dev->mig;
}

static const char *
mig_name(vfio_migration *mig)
{
    return mig->dev->alias;
}

static soft_iommu *
mig_iommu(vfio_migration *mig)
{
    return mig->dev->group ? vfio_soft__iommu(mig->dev->group->container) : NULL;
}

static guint64
mig_ring_iova(vfio_migration *mig)
{
    return ((guint64)mig->regs[VFIO_MIG_REG_RING_HI] << 32) | mig->regs[VFIO_MIG_REG_RING_LO];
}

static bool
mig_dma_active(vfio_migration *mig)
{
    return (mig->regs[VFIO_MIG_REG_CTRL] & VFIO_MIG_CTRL_DMA_ENABLE) &&
           state_runs(mig->state) && !mig->dma_error && mig->regs[VFIO_MIG_REG_RING_SIZE];
}

/* CRC-32 (IEEE 802.3, reflected), bitwise: the chunks are small. */
static guint32
crc32_ieee(const guint8 *p, gsize len)
{
    guint32 crc = 0xffffffffu;

    for (gsize i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void
put_le32(guint8 *p, guint32 v)
{
    v = GUINT32_TO_LE(v);
    memcpy(p, &v, 4);
}

static void
put_le64(guint8 *p, guint64 v)
{
    v = GUINT64_TO_LE(v);
    memcpy(p, &v, 8);
}

static guint32
get_le32(const guint8 *p)
{
    guint32 v;

    memcpy(&v, p, 4);
    return GUINT32_FROM_LE(v);
}

static guint64
get_le64(const guint8 *p)
{
    guint64 v;

    memcpy(&v, p, 8);
    return GUINT64_FROM_LE(v);
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
    soft_iommu *io = mig_iommu(mig);
    GError *err = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(rec.pattern); i++)
        rec.pattern[i] = vfio_migration__dma_pattern(rec.seq, i);
    if (!io || !soft_iommu__dma_write(io, mig_ring_iova(mig) + mig->ring_pos, &rec,
                                      sizeof(rec), &err)) {
        mig->dma_error = g_strdup_printf(_("%s: the DMA engine stopped after an IOMMU fault writing record %" G_GUINT64_FORMAT " at ring offset %" G_GUINT64_FORMAT ": %s"),
                                         mig_name(mig), rec.seq, mig->ring_pos,
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
static void
mig_dma_ensure_thread(vfio_migration *mig)
{
    if (!mig->thread && (mig->regs[VFIO_MIG_REG_CTRL] & VFIO_MIG_CTRL_DMA_ENABLE))
        mig->thread = g_thread_new("vfio-mig-dma", mig_dma_thread, mig);
}

/* ------------------------------------------------------------------ */
/* Data sessions                                                       */

static void
mig_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void
mig_session_end(vfio_migration *mig)
{
    mig_close(&mig->save_rfd);
    mig_close(&mig->save_wfd);
    mig_close(&mig->resume_fd);
    mig->save_written = 0;
    mig->initial_len = 0;
    mig->resume_len = 0;
}

static gsize
mig_chunk(guint8 *out, guint type, const guint8 *payload, guint32 len)
{
    put_le32(out, STREAM_MAGIC);
    out[4] = STREAM_VERSION & 0xff;
    out[5] = STREAM_VERSION >> 8;
    out[6] = type & 0xff;
    out[7] = type >> 8;
    put_le32(out + 8, len);
    put_le32(out + 12, crc32_ieee(payload, len));
    memcpy(out + STREAM_HEADER_SIZE, payload, len);
    return STREAM_HEADER_SIZE + len;
}

static void
mig_put_regs(guint8 *p, const guint32 *regs)
{
    put_le32(p, VFIO_MIG_NR_REGS);
    for (guint i = 0; i < VFIO_MIG_NR_REGS; i++)
        put_le32(p + 4 + 4 * i, regs[i]);
}

/* The device writes one chunk into the saving pipe. */
static gboolean
mig_save_emit(vfio_migration *mig, guint type, GError **error)
{
    guint8 payload[STREAM_FINAL_SIZE];
    guint8 buf[STREAM_HEADER_SIZE + STREAM_FINAL_SIZE];
    guint32 len = type == STREAM_CHUNK_FINAL ? STREAM_FINAL_SIZE : STREAM_REGS_SIZE;
    gsize n, done = 0;

    mig_put_regs(payload, mig->regs);
    if (type == STREAM_CHUNK_FINAL) {
        put_le64(payload + STREAM_REGS_SIZE, mig->ring_pos);
        put_le64(payload + STREAM_REGS_SIZE + 8, mig->seq);
    }
    n = mig_chunk(buf, type, payload, len);
    while (done < n) {
        ssize_t w = write(mig->save_wfd, buf + done, n - done);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            /* The pipe holds 64 KiB and a chunk is ~100 bytes; only a
             * reader that never reads could fill it. */
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        _("%s: the device cannot write its migration data: %s"),
                        mig_name(mig), g_strerror(errno));
            return FALSE;
        }
        done += (gsize)w;
    }
    mig->save_written += n;
    mig->regs_sent_gen = mig->regs_gen;
    return TRUE;
}

static gboolean
mig_save_open(vfio_migration *mig, GError **error)
{
    int fds[2];

    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("%s: cannot create the migration data_fd: %s"),
                    mig_name(mig), g_strerror(errno));
        return FALSE;
    }
    mig->save_rfd = fds[0];
    mig->save_wfd = fds[1];
    mig->save_written = 0;
    return TRUE;
}

static gboolean
mig_resume_open(vfio_migration *mig, GError **error)
{
    mig->resume_fd = memfd_create("dmaguard-vfio-resume", MFD_CLOEXEC);
    if (mig->resume_fd < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("%s: cannot create the migration data_fd: %s"),
                    mig_name(mig), g_strerror(errno));
        return FALSE;
    }
    mig->resume_len = 0;
    return TRUE;
}

/* What a stream carries. */
typedef struct {
    guint32 regs[VFIO_MIG_NR_REGS];
    guint64 ring_pos, seq;
} mig_loaded;

static gboolean
mig_stream_regs(const guint8 *p, guint32 *regs, GError **error)
{
    guint32 n = get_le32(p);

    if (n != VFIO_MIG_NR_REGS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration data has %u registers, this device has %u"),
                    n, VFIO_MIG_NR_REGS);
        return FALSE;
    }
    for (guint i = 0; i < VFIO_MIG_NR_REGS; i++)
        regs[i] = get_le32(p + 4 + 4 * i);
    return TRUE;
}

/* Check every chunk, then the state they describe. */
static gboolean
mig_stream_parse(const guint8 *buf, gsize len, mig_loaded *out, GError **error)
{
    gsize off = 0;
    bool final = false;
    guint64 ring_size;

    if (len == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration data is truncated: the device received no data at all"));
        return FALSE;
    }
    while (off < len) {
        guint32 magic, plen, crc, want_crc;
        guint version, type;

        if (final) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("the migration data is corrupt: %zu bytes follow the final chunk"),
                        len - off);
            return FALSE;
        }
        if (len - off < STREAM_HEADER_SIZE) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("the migration data is truncated: the last %zu bytes (at offset %zu) are not a whole chunk header"),
                        len - off, off);
            return FALSE;
        }
        magic = get_le32(buf + off);
        version = buf[off + 4] | (guint)buf[off + 5] << 8;
        type = buf[off + 6] | (guint)buf[off + 7] << 8;
        plen = get_le32(buf + off + 8);
        crc = get_le32(buf + off + 12);
        if (magic != STREAM_MAGIC) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("the migration data is corrupt: no chunk magic at offset %zu (0x%08x); it does not come from a dmaguard soft VFIO function"),
                        off, magic);
            return FALSE;
        }
        if (version != STREAM_VERSION) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("the migration data has stream version %u (chunk at offset %zu), this device understands version %u only"),
                        version, off, STREAM_VERSION);
            return FALSE;
        }
        off += STREAM_HEADER_SIZE;
        if (plen > len - off) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("the migration data is truncated: the chunk at offset %zu announces %u bytes, only %zu follow"),
                        off - STREAM_HEADER_SIZE, plen, len - off);
            return FALSE;
        }
        want_crc = crc32_ieee(buf + off, plen);
        if (crc != want_crc) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("the migration data is corrupt: CRC-32 mismatch in the chunk at offset %zu (0x%08x, computed 0x%08x)"),
                        off - STREAM_HEADER_SIZE, crc, want_crc);
            return FALSE;
        }
        if (type != STREAM_CHUNK_REGS && type != STREAM_CHUNK_FINAL) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("the migration data is corrupt: unknown chunk type %u at offset %zu"),
                        type, off - STREAM_HEADER_SIZE);
            return FALSE;
        }
        if (plen != (type == STREAM_CHUNK_FINAL ? STREAM_FINAL_SIZE : STREAM_REGS_SIZE)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                        _("the migration data is corrupt: the chunk of type %u at offset %zu has %u bytes, expected %u"),
                        type, off - STREAM_HEADER_SIZE, plen,
                        type == STREAM_CHUNK_FINAL ? STREAM_FINAL_SIZE : STREAM_REGS_SIZE);
            return FALSE;
        }
        if (!mig_stream_regs(buf + off, out->regs, error))
            return FALSE;
        if (type == STREAM_CHUNK_FINAL) {
            out->ring_pos = get_le64(buf + off + STREAM_REGS_SIZE);
            out->seq = get_le64(buf + off + STREAM_REGS_SIZE + 8);
            final = true;
        }
        off += plen;
    }
    if (!final) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration data is truncated: it ends after %zu bytes without the final (STOP_COPY) chunk"),
                    len);
        return FALSE;
    }
    if (out->regs[VFIO_MIG_REG_ID] != VFIO_MIG_DEVICE_ID) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration data comes from a device with ID 0x%08x, this device is 0x%08x"),
                    out->regs[VFIO_MIG_REG_ID], VFIO_MIG_DEVICE_ID);
        return FALSE;
    }
    ring_size = out->regs[VFIO_MIG_REG_RING_SIZE];
    if ((ring_size && (out->ring_pos >= ring_size || out->ring_pos % RECORD_SIZE)) ||
        (!ring_size && out->ring_pos)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration data is inconsistent: ring position %" G_GUINT64_FORMAT " in a ring of %" G_GUINT64_FORMAT " bytes of %" G_GUINT64_FORMAT "-byte records"),
                    out->ring_pos, ring_size, RECORD_SIZE);
        return FALSE;
    }
    return TRUE;
}

/* RESUMING -> STOP: incorporate what was written (uAPI: "perform final
 * validity and consistency checking of the new device state"). */
static gboolean
mig_resume_load(vfio_migration *mig, GError **error)
{
    g_autofree guint8 *buf = NULL;
    mig_loaded l;
    gsize done = 0;

    memset(&l, 0, sizeof(l));

    buf = g_malloc(MAX(mig->resume_len, 1));
    while (done < mig->resume_len) {
        ssize_t n = pread(mig->resume_fd, buf + done, mig->resume_len - done, (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, G_IO_ERROR, n < 0 ? g_io_error_from_errno(errno) : G_IO_ERROR_FAILED,
                        _("cannot read back the migration data: %s"),
                        n < 0 ? g_strerror(errno) : _("short read"));
            return FALSE;
        }
        done += (gsize)n;
    }
    if (!mig_stream_parse(buf, mig->resume_len, &l, error))
        return FALSE;
    memcpy(mig->regs, l.regs, sizeof(mig->regs));
    mig->ring_pos = l.ring_pos;
    mig->seq = l.seq;
    mig->regs_gen++;
    g_clear_pointer(&mig->dma_error, g_free);
    return TRUE;
}

/* ------------------------------------------------------------------ */
/* set_state: one arc at a time                                        */

static void
mig_regs_reset(vfio_migration *mig)
{
    memset(mig->regs, 0, sizeof(mig->regs));
    mig->regs[VFIO_MIG_REG_ID] = VFIO_MIG_DEVICE_ID;
    mig->ring_pos = 0;
    mig->seq = 0;
    mig->regs_gen++;
    g_clear_pointer(&mig->dma_error, g_free);
}

/* The driver's action for the arc state -> @next (as in
 * mlx5vf_pci_step_device_state_locked()). */
static gboolean
mig_step(vfio_migration *mig, vfio_mig_state next, GError **error)
{
    vfio_mig_state cur = mig->state;
    g_autoptr(GError) err = NULL;

    if ((cur == S_RUN && next == S_PC) || (cur == S_RP2P && next == S_PP2P)) {
        /* Start saving: a new data_fd, the initial data in it. */
        if (!mig_save_open(mig, error))
            return FALSE;
        if (!mig_save_emit(mig, STREAM_CHUNK_REGS, error)) {
            mig_session_end(mig);
            return FALSE;
        }
        mig->initial_len = mig->save_written;
    } else if (cur == S_STOP && next == S_SC) {
        if (!mig_save_open(mig, error))
            return FALSE;
        if (!mig_save_emit(mig, STREAM_CHUNK_FINAL, error)) {
            mig_session_end(mig);
            return FALSE;
        }
        mig_close(&mig->save_wfd);           /* end of stream */
    } else if ((cur == S_PP2P || cur == S_PC) && next == S_SC) {
        /* The precopy data_fd goes on; the rest, then end of stream.
         * Without P2P the kernel skips PRE_COPY_P2P and the driver sees
         * PRE_COPY -> STOP_COPY. */
        if (!mig_save_emit(mig, STREAM_CHUNK_FINAL, error))
            return FALSE;
        mig_close(&mig->save_wfd);
    } else if ((cur == S_PC && next == S_RUN) || (cur == S_PP2P && next == S_RP2P) ||
               (cur == S_SC && next == S_STOP)) {
        mig_session_end(mig);                /* "terminate a data transfer session" */
    } else if (cur == S_STOP && next == S_RES) {
        if (!mig_resume_open(mig, error))
            return FALSE;
    } else if (cur == S_RES && next == S_STOP) {
        gboolean ok = mig_resume_load(mig, &err);

        mig_session_end(mig);
        if (!ok) {
            /* uAPI: the driver "must fail the SET_STATE ioctl and
             * optionally go to the ERROR state"; ours does. */
            mig->state = S_ERR;
            g_set_error(error, G_IO_ERROR, err->code,
                        _("%s: failed setting device state to %s: %s; the device is in ERROR now and must be reset"),
                        mig_name(mig), vfio_mig_state__to_string(next), err->message);
            g_cond_broadcast(&mig->cond);
            return FALSE;
        }
    }
    mig->state = next;
    if (state_runs(next))
        mig_dma_ensure_thread(mig);
    g_cond_broadcast(&mig->cond);
    return TRUE;
}

static gboolean
mig_set_state_locked(vfio_migration *mig, vfio_mig_state new_state, GError **error)
{
    vfio_mig_state next;

    g_string_assign(mig->path, vfio_mig_state__to_string(mig->state));
    if (mig->state == new_state)
        return TRUE;
    if (mig->state == S_ERR) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: failed setting device state to %s: the device is in ERROR; only a device reset (VFIO_DEVICE_RESET) takes it out of ERROR"),
                    mig_name(mig), vfio_mig_state__to_string(new_state));
        return FALSE;
    }
    if ((guint)new_state >= VFIO_MIG_STATE_NUM || new_state == S_ERR ||
        !fsm_supported(mig->flags, new_state)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    new_state == S_ERR
                    ? _("%s: failed setting device state to %s (from %s): ERROR cannot be requested, a device only falls into it")
                    : _("%s: failed setting device state to %s (from %s): the device does not support that state (no VFIO_MIGRATION_P2P)"),
                    mig_name(mig), vfio_mig_state__to_string(new_state),
                    vfio_mig_state__to_string(mig->state));
        return FALSE;
    }
    while (mig->state != new_state) {
        if (!fsm_next_state(mig->flags, mig->state, new_state, &next)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        _("%s: failed setting device state to %s: the VFIO migration FSM has no arc from %s to %s (vfio_mig_get_next_state)"),
                        mig_name(mig), vfio_mig_state__to_string(new_state),
                        vfio_mig_state__to_string(mig->state),
                        vfio_mig_state__to_string(new_state));
            return FALSE;
        }
        if (!mig_step(mig, next, error))
            return FALSE;
        g_string_append_printf(mig->path, " -> %s", vfio_mig_state__to_string(next));
    }
    return TRUE;
}

static void
mig_reset_locked(vfio_migration *mig)
{
    mig_session_end(mig);
    mig_regs_reset(mig);
    mig->state = S_RUN;
    g_cond_broadcast(&mig->cond);
}

vfio_mig_state
vfio_migration__state(vfio_device *dev)
{
    vfio_migration *mig = mig_of(dev);
    vfio_mig_state s;

    g_mutex_lock(&mig->lock);
    s = mig->state;
    g_mutex_unlock(&mig->lock);
    return s;
}

gboolean
vfio_migration__set_state(vfio_device *dev, vfio_mig_state new_state, GError **error)
{
    vfio_migration *mig = mig_of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = mig_set_state_locked(mig, new_state, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

char *
vfio_migration__last_path(vfio_device *dev)
{
    vfio_migration *mig = mig_of(dev);
    char *s;

    g_mutex_lock(&mig->lock);
    s = g_strdup(mig->path->str);
    g_mutex_unlock(&mig->lock);
    return s;
}

void
vfio_migration__reset(vfio_device *dev)
{
    vfio_migration *mig = mig_of(dev);

    g_mutex_lock(&mig->lock);
    mig_reset_locked(mig);
    g_mutex_unlock(&mig->lock);
}

/* vfio_migration_set_state_or_reset(). */
static gboolean
mig_set_state_or_reset_locked(vfio_migration *mig, vfio_mig_state new_state, GError **error)
{
    if (mig_set_state_locked(mig, new_state, error))
        return TRUE;
    mig_reset_locked(mig);
    g_prefix_error(error, _("the device was reset: "));
    return FALSE;
}

/* ------------------------------------------------------------------ */
/* The data_fd                                                         */

int
vfio_migration__data_fd(vfio_device *dev)
{
    vfio_migration *mig = mig_of(dev);
    int fd;

    g_mutex_lock(&mig->lock);
    fd = mig->save_rfd >= 0 ? mig->save_rfd : mig->resume_fd;
    g_mutex_unlock(&mig->lock);
    return fd;
}

static gboolean
mig_precopy_info_locked(vfio_migration *mig, guint64 *initial_bytes, guint64 *dirty_bytes,
                        GError **error)
{
    int unread = 0;
    guint64 consumed, initial;

    if (!state_precopy(mig->state) || mig->save_rfd < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: VFIO_MIG_GET_PRECOPY_INFO: the device is in %s, not in PRE_COPY or PRE_COPY_P2P"),
                    mig_name(mig), vfio_mig_state__to_string(mig->state));
        return FALSE;
    }
    if (ioctl(mig->save_rfd, FIONREAD, &unread) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("%s: VFIO_MIG_GET_PRECOPY_INFO: %s"), mig_name(mig), g_strerror(errno));
        return FALSE;
    }
    /* mlx5vf_precopy_ioctl(): at the end of what was written, a register
     * change since the last chunk becomes the next increment. */
    if (unread == 0 && mig->regs_gen != mig->regs_sent_gen) {
        if (!mig_save_emit(mig, STREAM_CHUNK_REGS, error))
            return FALSE;
        unread = (int)(STREAM_HEADER_SIZE + STREAM_REGS_SIZE);
    }
    consumed = mig->save_written - (guint64)unread;
    initial = mig->initial_len > consumed ? mig->initial_len - consumed : 0;
    *initial_bytes = initial;
    *dirty_bytes = (guint64)unread - initial;
    return TRUE;
}

gboolean
vfio_migration__precopy_info(vfio_device *dev, guint64 *initial_bytes, guint64 *dirty_bytes,
                             GError **error)
{
    vfio_migration *mig = mig_of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = mig_precopy_info_locked(mig, initial_bytes, dirty_bytes, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

static gssize
mig_save_block_locked(vfio_migration *mig, GByteArray *out, GError **error)
{
    guint old = out->len;
    ssize_t n;

    if (mig->save_rfd < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                    _("%s: no migration data to read: the device is in %s, not saving"),
                    mig_name(mig), vfio_mig_state__to_string(mig->state));
        return -1;
    }
    g_byte_array_set_size(out, old + SAVE_BLOCK_SIZE);
    do
        n = read(mig->save_rfd, out->data + old, SAVE_BLOCK_SIZE);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int e = errno;

        g_byte_array_set_size(out, old);
        /* The temporary end of stream of PRE_COPY (the kernel's ENOMSG). */
        if ((e == EAGAIN || e == EWOULDBLOCK) && state_precopy(mig->state))
            return 0;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                    _("%s: reading the migration data failed: %s"), mig_name(mig), g_strerror(e));
        return -1;
    }
    g_byte_array_set_size(out, old + (guint)n);
    return n;
}

gssize
vfio_migration__save_block(vfio_device *dev, GByteArray *out, GError **error)
{
    vfio_migration *mig = mig_of(dev);
    gssize n;

    g_mutex_lock(&mig->lock);
    n = mig_save_block_locked(mig, out, error);
    g_mutex_unlock(&mig->lock);
    return n;
}

static gboolean
mig_load_buffer_locked(vfio_migration *mig, const guint8 *data, gsize len, GError **error)
{
    gsize done = 0;

    if (mig->state != S_RES || mig->resume_fd < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: cannot load migration data: the device is in %s, not RESUMING"),
                    mig_name(mig), vfio_mig_state__to_string(mig->state));
        return FALSE;
    }
    if (len > STREAM_MAX - mig->resume_len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    _("%s: cannot load migration data: more than %u bytes, far more than this device's state; the stream is not for this device"),
                    mig_name(mig), STREAM_MAX);
        return FALSE;
    }
    while (done < len) {
        ssize_t n = write(mig->resume_fd, data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        _("%s: writing the migration data failed: %s"),
                        mig_name(mig), g_strerror(errno));
            return FALSE;
        }
        done += (gsize)n;
    }
    mig->resume_len += len;
    return TRUE;
}

gboolean
vfio_migration__load_buffer(vfio_device *dev, const guint8 *data, gsize len, GError **error)
{
    vfio_migration *mig = mig_of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = mig_load_buffer_locked(mig, data, len, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Registers and the DMA engine's controls                             */

static gboolean
mig_mmio_allowed(vfio_migration *mig, GError **error)
{
    if (state_runs(mig->state))
        return TRUE;
    /* uAPI: in STOP "It must not change its internal state". */
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                _("%s: the device is in %s: its registers are frozen until it runs again"),
                mig_name(mig), vfio_mig_state__to_string(mig->state));
    return FALSE;
}

static gboolean
mig_ring_check(vfio_migration *mig, guint64 iova, guint64 size, GError **error)
{
    if (!size || size % RECORD_SIZE || iova % RECORD_SIZE || size > G_MAXUINT32 ||
        iova + size < iova) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: a DMA ring at iova 0x%" PRIx64 " of %" G_GUINT64_FORMAT " bytes: base and size must be non-zero multiples of the %" G_GUINT64_FORMAT "-byte record, below 4 GiB of size"),
                    mig_name(mig), iova, size, RECORD_SIZE);
        return FALSE;
    }
    return TRUE;
}

gboolean
vfio_migration__reg_write(vfio_device *dev, guint reg, guint32 value, GError **error)
{
    vfio_migration *mig = mig_of(dev);
    gboolean ok = FALSE;

    g_mutex_lock(&mig->lock);
    if (!mig_mmio_allowed(mig, error))
        goto out;
    if (reg >= VFIO_MIG_NR_REGS || reg == VFIO_MIG_REG_ID) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: register %u is not writable"), mig_name(mig), reg);
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
                    mig_name(mig));
        goto out;
    }
    mig->regs[reg] = value;
    if (reg == VFIO_MIG_REG_RING_SIZE)
        mig->ring_pos = 0;
    if (reg == VFIO_MIG_REG_CTRL && (value & VFIO_MIG_CTRL_DMA_ENABLE))
        g_clear_pointer(&mig->dma_error, g_free);
    mig->regs_gen++;
    mig_dma_ensure_thread(mig);
    g_cond_broadcast(&mig->cond);
    ok = TRUE;
 out:
    g_mutex_unlock(&mig->lock);
    return ok;
}

guint32
vfio_migration__reg_read(vfio_device *dev, guint reg)
{
    vfio_migration *mig = mig_of(dev);
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
    vfio_migration *mig = mig_of(dev);

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
    vfio_migration *mig = mig_of(dev);
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
    mig_dma_ensure_thread(mig);
    g_cond_broadcast(&mig->cond);
    ok = TRUE;
 out:
    g_mutex_unlock(&mig->lock);
    return ok;
}

void
vfio_migration__dma_stop(vfio_device *dev)
{
    vfio_migration *mig = mig_of(dev);

    g_mutex_lock(&mig->lock);
    mig->regs[VFIO_MIG_REG_CTRL] &= ~VFIO_MIG_CTRL_DMA_ENABLE;
    mig->regs_gen++;
    g_cond_broadcast(&mig->cond);
    g_mutex_unlock(&mig->lock);
}

gboolean
vfio_migration__wait_seq(vfio_device *dev, guint64 seq, guint timeout_ms)
{
    vfio_migration *mig = mig_of(dev);
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
    vfio_migration *mig = mig_of(dev);
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

static gboolean
mig_logging_start_locked(vfio_migration *mig, const soft_dirty_range *ranges, guint nranges,
                         guint64 *page_size, GError **error)
{
    g_autoptr(GArray) sorted = NULL;
    soft_iommu *io = mig_iommu(mig);
    guint64 ps = *page_size;

    /* vfio_ioctl_device_feature_logging_start() and the driver's
     * log_start (mlx5vf_start_page_tracker). */
    if (mig->log) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_BUSY,
                    _("%s: DMA logging is already started; stop it first (one start at a time)"),
                    mig_name(mig));
        return FALSE;
    }
    if (!io) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    _("%s: DMA logging needs the soft IOMMU"), mig_name(mig));
        return FALSE;
    }
    if (!ps || (ps & (ps - 1))) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: DMA logging page size %" G_GUINT64_FORMAT " is not a power of two"),
                    mig_name(mig), ps);
        return FALSE;
    }
    ps = MAX(ps, LOG_PAGE_SIZE);
    if (!nranges || nranges > LOG_MAX_RANGES) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: DMA logging takes 1 to %u IOVA ranges, not %u"),
                    mig_name(mig), LOG_MAX_RANGES, nranges);
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
                        mig_name(mig), r->iova, r->length, ps);
            return FALSE;
        }
        if (r->iova + r->length < r->iova) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        _("%s: DMA logging range 0x%" PRIx64 "+0x%" PRIx64 " wraps around: %s"),
                        mig_name(mig), r->iova, r->length, g_strerror(EOVERFLOW));
            return FALSE;
        }
        if (i > 0) {
            soft_dirty_range *p = &g_array_index(sorted, soft_dirty_range, i - 1);

            if (p->iova + p->length > r->iova) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            _("%s: DMA logging ranges 0x%" PRIx64 "+0x%" PRIx64 " and 0x%" PRIx64 "+0x%" PRIx64 " overlap"),
                            mig_name(mig), p->iova, p->length, r->iova, r->length);
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
    vfio_migration *mig = mig_of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = mig_logging_start_locked(mig, ranges, nranges, page_size, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

static gboolean
mig_logging_report_locked(vfio_migration *mig, guint64 iova, guint64 length,
                          guint64 page_size, guint64 *bitmap, GError **error)
{
    /* vfio_ioctl_device_feature_logging_report() */
    if (!mig->log) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                    _("%s: DMA logging report: DMA logging is not started"), mig_name(mig));
        return FALSE;
    }
    if (page_size < LOG_PAGE_SIZE || (page_size & (page_size - 1)) || !length ||
        iova % page_size || length % page_size || iova + length < iova) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: DMA logging report of 0x%" PRIx64 "+0x%" PRIx64 " with page size %" G_GUINT64_FORMAT ": the page size must be a power of two of at least 4096 and the range a non-empty multiple of it"),
                    mig_name(mig), iova, length, page_size);
        return FALSE;
    }
    soft_iommu__log_report(mig_iommu(mig), mig->log, iova, length, page_size, bitmap);
    return TRUE;
}

gboolean
vfio_migration__dma_logging_report(vfio_device *dev, guint64 iova, guint64 length,
                                   guint64 page_size, guint64 *bitmap, GError **error)
{
    vfio_migration *mig = mig_of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = mig_logging_report_locked(mig, iova, length, page_size, bitmap, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

static void
mig_logging_stop_locked(vfio_migration *mig)
{
    if (!mig->log)
        return;
    soft_iommu__log_stop(mig_iommu(mig), mig->log);
    mig->log = NULL;
    g_clear_pointer(&mig->log_ranges, g_array_unref);
}

void
vfio_migration__dma_logging_stop(vfio_device *dev)
{
    vfio_migration *mig = mig_of(dev);

    g_mutex_lock(&mig->lock);
    mig_logging_stop_locked(mig);
    g_mutex_unlock(&mig->lock);
}

/* The ranges to log: the container's mappings, adjacent ones merged; more
 * than the kernel takes become QEMU's two ranges, the span below and the
 * span above 4 GiB (vfio_dirty_tracking_init()). */
static GArray *
mig_logging_ranges(vfio_migration *mig)
{
    g_autoptr(GArray) maps = soft_iommu__mappings(mig_iommu(mig));
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
    if (!view || !soft_iommu__translate(mig_iommu(mig), iova, &hva, &len))
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
        g_autoptr(GArray) maps = soft_iommu__mappings(mig_iommu(mig));

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

            ok = mig_logging_report_locked(mig, r->iova + off, wlen, LOG_PAGE_SIZE, bitmap,
                                           error);
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
        if (!mig_set_state_locked(mig, VFIO_MIG_STATE_PRE_COPY, error)) {
            g_prefix_error(error, _("%s: failed to set new PRE_COPY state: "), mig_name(mig));
            goto out;
        }
        break;
    case VFIO_MIG_STATE_STOP:
        break;
    default:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: cannot start saving the device: invalid device state %s"),
                    mig_name(mig), vfio_mig_state__to_string(mig->state));
        goto out;
    }
    mig->saving = true;
    if (mig->tracking && !mig->log) {
        g_autoptr(GArray) ranges = mig_logging_ranges(mig);
        guint64 ps = LOG_PAGE_SIZE;

        /* Nothing mapped: nothing the device could write. */
        if (ranges->len &&
            !mig_logging_start_locked(mig, (soft_dirty_range *)(void *)ranges->data,
                                      ranges->len, &ps, error)) {
            g_prefix_error(error, _("%s: failed to start DMA logging: "), mig_name(mig));
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
    if (state_precopy(mig->state)) {
        ok = mig_precopy_info_locked(mig, &initial, &dirty, error);
        while (ok && n > 0) {
            n = mig_save_block_locked(mig, out, error);
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
    if (!state_precopy(mig->state) && mig->state != S_STOP && mig->state != S_SC) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: cannot complete saving the device: invalid device state %s"),
                    mig_name(mig), vfio_mig_state__to_string(mig->state));
        goto out;
    }
    if (!mig_set_state_locked(mig, S_SC, error))
        goto out;
    do
        n = mig_save_block_locked(mig, out, error);
    while (n > 0);
    if (n < 0)
        goto out;
    ok = mig_set_state_locked(mig, S_STOP, error);
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
    mig_close(&mig->save_rfd);
    mig_close(&mig->save_wfd);
    mig->saving = false;
    mig_logging_stop_locked(mig);
    g_mutex_unlock(&mig->lock);
}

/* vfio_load_setup() */
static gboolean
vfio_mig_load_setup(void *opaque, GError **error)
{
    vfio_migration *mig = ((vfio_device *)opaque)->mig;
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = mig_set_state_locked(mig, S_RES, error);
    if (!ok)
        g_prefix_error(error, _("%s: failed to set RESUMING state: "), mig_name(mig));
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
        mig_reset_locked(mig);
    mig_close(&mig->resume_fd);
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
        (!running && state_runs(mig->state)))
        return mig_set_state_or_reset_locked(mig, state_precopy(mig->state) ? S_PP2P : S_RP2P,
                                             error);
    return TRUE;
}

static gboolean
mig_vmstate_change_locked(vfio_migration *mig, bool running, GError **error)
{
    /* Stopping during a precopy is the switch-over: STOP_COPY. */
    vfio_mig_state s = running ? S_RUN : state_precopy(mig->state) ? S_SC : S_STOP;

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
    mig_regs_reset(mig);
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
    mig_logging_stop_locked(mig);
    mig_session_end(mig);
    dev->mig = NULL;
    g_string_free(mig->path, TRUE);
    g_free(mig->dma_error);
    g_free(mig->id);
    g_cond_clear(&mig->cond);
    g_mutex_clear(&mig->lock);
    g_free(mig);
}

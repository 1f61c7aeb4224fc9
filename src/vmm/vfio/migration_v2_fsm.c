/*
 * vfio/migration_v2_fsm.c: the migration FSM of the soft VFIO function
 * (vfio/migration_v2.h): the kernel's arcs (vfio_mig_get_next_state()),
 * set_state one arc at a time, and the data stream of a session: its
 * data_fd, the chunks and their CRC, precopy info, saving and resuming the
 * device state.  After QEMU's hw/vfio/migration.c and the kernel's
 * drivers/vfio/vfio_main.c.  The locking is in vfio/migration_v2_priv.h.
 */
#include "vfio/migration_v2_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migration/le_bytes.h"
#include "dmg_i18n.h"

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
bool
vfio_mig__state_runs(vfio_mig_state s)
{
    return s == S_RUN || s == S_RP2P || s == S_PC || s == S_PP2P;
}

bool
vfio_mig__state_precopy(vfio_mig_state s)
{
    return s == S_PC || s == S_PP2P;
}

/* ------------------------------------------------------------------ */
/* The stream's encoding: CRC-32, little-endian                        */

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





/* ------------------------------------------------------------------ */
/* Data sessions                                                       */

void
vfio_mig__close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void
vfio_mig__session_end(vfio_migration *mig)
{
    vfio_mig__close(&mig->save_rfd);
    vfio_mig__close(&mig->save_wfd);
    vfio_mig__close(&mig->resume_fd);
    mig->save_written = 0;
    mig->initial_len = 0;
    mig->resume_len = 0;
}

static gsize
mig_chunk(guint8 *out, guint type, const guint8 *payload, guint32 len)
{
    le_put32(out, STREAM_MAGIC);
    out[4] = STREAM_VERSION & 0xff;
    out[5] = STREAM_VERSION >> 8;
    out[6] = type & 0xff;
    out[7] = type >> 8;
    le_put32(out + 8, len);
    le_put32(out + 12, crc32_ieee(payload, len));
    memcpy(out + STREAM_HEADER_SIZE, payload, len);
    return STREAM_HEADER_SIZE + len;
}

static void
mig_put_regs(guint8 *p, const guint32 *regs)
{
    le_put32(p, VFIO_MIG_NR_REGS);
    for (guint i = 0; i < VFIO_MIG_NR_REGS; i++)
        le_put32(p + 4 + 4 * i, regs[i]);
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
        le_put64(payload + STREAM_REGS_SIZE, mig->ring_pos);
        le_put64(payload + STREAM_REGS_SIZE + 8, mig->seq);
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
                        vfio_mig__name(mig), g_strerror(errno));
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
                    vfio_mig__name(mig), g_strerror(errno));
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
                    vfio_mig__name(mig), g_strerror(errno));
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
    guint32 n = le_get32(p);

    if (n != VFIO_MIG_NR_REGS) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration data has %u registers, this device has %u"),
                    n, VFIO_MIG_NR_REGS);
        return FALSE;
    }
    for (guint i = 0; i < VFIO_MIG_NR_REGS; i++)
        regs[i] = le_get32(p + 4 + 4 * i);
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
        magic = le_get32(buf + off);
        version = buf[off + 4] | (guint)buf[off + 5] << 8;
        type = buf[off + 6] | (guint)buf[off + 7] << 8;
        plen = le_get32(buf + off + 8);
        crc = le_get32(buf + off + 12);
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
            out->ring_pos = le_get64(buf + off + STREAM_REGS_SIZE);
            out->seq = le_get64(buf + off + STREAM_REGS_SIZE + 8);
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
            vfio_mig__session_end(mig);
            return FALSE;
        }
        mig->initial_len = mig->save_written;
    } else if (cur == S_STOP && next == S_SC) {
        if (!mig_save_open(mig, error))
            return FALSE;
        if (!mig_save_emit(mig, STREAM_CHUNK_FINAL, error)) {
            vfio_mig__session_end(mig);
            return FALSE;
        }
        vfio_mig__close(&mig->save_wfd);     /* end of stream */
    } else if ((cur == S_PP2P || cur == S_PC) && next == S_SC) {
        /* The precopy data_fd goes on; the rest, then end of stream.
         * Without P2P the kernel skips PRE_COPY_P2P and the driver sees
         * PRE_COPY -> STOP_COPY. */
        if (!mig_save_emit(mig, STREAM_CHUNK_FINAL, error))
            return FALSE;
        vfio_mig__close(&mig->save_wfd);
    } else if ((cur == S_PC && next == S_RUN) || (cur == S_PP2P && next == S_RP2P) ||
               (cur == S_SC && next == S_STOP)) {
        vfio_mig__session_end(mig);          /* "terminate a data transfer session" */
    } else if (cur == S_STOP && next == S_RES) {
        if (!mig_resume_open(mig, error))
            return FALSE;
    } else if (cur == S_RES && next == S_STOP) {
        gboolean ok = mig_resume_load(mig, &err);

        vfio_mig__session_end(mig);
        if (!ok) {
            /* uAPI: the driver "must fail the SET_STATE ioctl and
             * optionally go to the ERROR state"; ours does. */
            mig->state = S_ERR;
            g_set_error(error, G_IO_ERROR, err->code,
                        _("%s: failed setting device state to %s: %s; the device is in ERROR now and must be reset"),
                        vfio_mig__name(mig), vfio_mig_state__to_string(next), err->message);
            g_cond_broadcast(&mig->cond);
            return FALSE;
        }
    }
    mig->state = next;
    if (vfio_mig__state_runs(next))
        vfio_mig__dma_ensure_thread(mig);
    g_cond_broadcast(&mig->cond);
    return TRUE;
}

gboolean
vfio_mig__set_state_locked(vfio_migration *mig, vfio_mig_state new_state, GError **error)
{
    vfio_mig_state next;

    g_string_assign(mig->path, vfio_mig_state__to_string(mig->state));
    if (mig->state == new_state)
        return TRUE;
    if (mig->state == S_ERR) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: failed setting device state to %s: the device is in ERROR; only a device reset (VFIO_DEVICE_RESET) takes it out of ERROR"),
                    vfio_mig__name(mig), vfio_mig_state__to_string(new_state));
        return FALSE;
    }
    if ((guint)new_state >= VFIO_MIG_STATE_NUM || new_state == S_ERR ||
        !fsm_supported(mig->flags, new_state)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    new_state == S_ERR
                    ? _("%s: failed setting device state to %s (from %s): ERROR cannot be requested, a device only falls into it")
                    : _("%s: failed setting device state to %s (from %s): the device does not support that state (no VFIO_MIGRATION_P2P)"),
                    vfio_mig__name(mig), vfio_mig_state__to_string(new_state),
                    vfio_mig_state__to_string(mig->state));
        return FALSE;
    }
    while (mig->state != new_state) {
        if (!fsm_next_state(mig->flags, mig->state, new_state, &next)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        _("%s: failed setting device state to %s: the VFIO migration FSM has no arc from %s to %s (vfio_mig_get_next_state)"),
                        vfio_mig__name(mig), vfio_mig_state__to_string(new_state),
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

void
vfio_mig__reset_locked(vfio_migration *mig)
{
    vfio_mig__session_end(mig);
    vfio_mig__regs_reset(mig);
    mig->state = S_RUN;
    g_cond_broadcast(&mig->cond);
}

vfio_mig_state
vfio_migration__state(vfio_device *dev)
{
    vfio_migration *mig = vfio_mig__of(dev);
    vfio_mig_state s;

    g_mutex_lock(&mig->lock);
    s = mig->state;
    g_mutex_unlock(&mig->lock);
    return s;
}

gboolean
vfio_migration__set_state(vfio_device *dev, vfio_mig_state new_state, GError **error)
{
    vfio_migration *mig = vfio_mig__of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = vfio_mig__set_state_locked(mig, new_state, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

char *
vfio_migration__last_path(vfio_device *dev)
{
    vfio_migration *mig = vfio_mig__of(dev);
    char *s;

    g_mutex_lock(&mig->lock);
    s = g_strdup(mig->path->str);
    g_mutex_unlock(&mig->lock);
    return s;
}

void
vfio_migration__reset(vfio_device *dev)
{
    vfio_migration *mig = vfio_mig__of(dev);

    g_mutex_lock(&mig->lock);
    vfio_mig__reset_locked(mig);
    g_mutex_unlock(&mig->lock);
}

/* ------------------------------------------------------------------ */
/* The data_fd                                                         */

int
vfio_migration__data_fd(vfio_device *dev)
{
    vfio_migration *mig = vfio_mig__of(dev);
    int fd;

    g_mutex_lock(&mig->lock);
    fd = mig->save_rfd >= 0 ? mig->save_rfd : mig->resume_fd;
    g_mutex_unlock(&mig->lock);
    return fd;
}

gboolean
vfio_mig__precopy_info_locked(vfio_migration *mig, guint64 *initial_bytes,
                              guint64 *dirty_bytes, GError **error)
{
    int unread = 0;
    guint64 consumed, initial;

    if (!vfio_mig__state_precopy(mig->state) || mig->save_rfd < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("%s: VFIO_MIG_GET_PRECOPY_INFO: the device is in %s, not in PRE_COPY or PRE_COPY_P2P"),
                    vfio_mig__name(mig), vfio_mig_state__to_string(mig->state));
        return FALSE;
    }
    if (ioctl(mig->save_rfd, FIONREAD, &unread) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("%s: VFIO_MIG_GET_PRECOPY_INFO: %s"), vfio_mig__name(mig), g_strerror(errno));
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
    vfio_migration *mig = vfio_mig__of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = vfio_mig__precopy_info_locked(mig, initial_bytes, dirty_bytes, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

gssize
vfio_mig__save_block_locked(vfio_migration *mig, GByteArray *out, GError **error)
{
    guint old = out->len;
    ssize_t n;

    if (mig->save_rfd < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                    _("%s: no migration data to read: the device is in %s, not saving"),
                    vfio_mig__name(mig), vfio_mig_state__to_string(mig->state));
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
        if ((e == EAGAIN || e == EWOULDBLOCK) && vfio_mig__state_precopy(mig->state))
            return 0;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                    _("%s: reading the migration data failed: %s"),
                    vfio_mig__name(mig), g_strerror(e));
        return -1;
    }
    g_byte_array_set_size(out, old + (guint)n);
    return n;
}

gssize
vfio_migration__save_block(vfio_device *dev, GByteArray *out, GError **error)
{
    vfio_migration *mig = vfio_mig__of(dev);
    gssize n;

    g_mutex_lock(&mig->lock);
    n = vfio_mig__save_block_locked(mig, out, error);
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
                    vfio_mig__name(mig), vfio_mig_state__to_string(mig->state));
        return FALSE;
    }
    if (len > STREAM_MAX - mig->resume_len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    _("%s: cannot load migration data: more than %u bytes, far more than this device's state; the stream is not for this device"),
                    vfio_mig__name(mig), STREAM_MAX);
        return FALSE;
    }
    while (done < len) {
        ssize_t n = write(mig->resume_fd, data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        _("%s: writing the migration data failed: %s"),
                        vfio_mig__name(mig), g_strerror(errno));
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
    vfio_migration *mig = vfio_mig__of(dev);
    gboolean ok;

    g_mutex_lock(&mig->lock);
    ok = mig_load_buffer_locked(mig, data, len, error);
    g_mutex_unlock(&mig->lock);
    return ok;
}

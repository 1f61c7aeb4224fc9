/*
 * vfio/migration_v2.h: VFIO migration v2 of the soft VFIO function, after
 * QEMU's hw/vfio/migration.c and the Linux VFIO uAPI (linux/vfio.h,
 * drivers/vfio/vfio_main.c).
 *
 * The soft VFIO function is a small device that exists on the soft backend
 * (vfio_backend_soft) for every VFIO device whose migration QEMU would
 * initialize (vfio_device.migration).  It has
 *
 *  - a register file (VFIO_MIG_REG_*), its "MMIO";
 *  - a DMA engine: a thread that, while the device runs, writes one
 *    vfio_mig_dma_record every interval into a guest ring through the soft
 *    IOMMU (soft_iommu__dma_write: the pinned pages, not the CPU mapping);
 *  - the migration FSM of enum vfio_device_mig_state, with the kernel's
 *    arcs (vfio_mig_get_next_state()) and a data stream per session;
 *  - DMA dirty logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*), recorded in
 *    the soft IOMMU's write path.
 *
 * Its migratable state is the register file, the ring position and the
 * sequence counter.  It registers savevm handlers "vfio:<alias>"
 * (migration/savevm.h) that migration/outgoing.c and incoming.c drive, and vfio_migration__vm_running()
 * is QEMU's vfio_vmstate_change().
 *
 * The data stream.  The kernel returns a data_fd from SET_STATE; here the
 * device owns it and lends it (vfio_migration__data_fd()) until the
 * session ends, at the points where QEMU's vfio_migration_cleanup()
 * closes its copy, so no fd can leak:
 *  - saving (PRE_COPY, PRE_COPY_P2P, STOP_COPY): the read end of a
 *    non-blocking pipe the device writes its state into.  In PRE_COPY an
 *    empty pipe is the uAPI's temporary end of stream: read() fails with
 *    EAGAIN where the kernel driver returns ENOMSG.  In STOP_COPY the
 *    device writes the rest and closes its end: read() returns 0 at the
 *    end of the stream, as the uAPI says;
 *  - resuming (RESUMING): a memfd the user write()s the stream into; the
 *    device checks and loads it on RESUMING -> STOP.
 * The stream is a series of chunks (16-byte header: magic "DGVM",
 * version, type, length, CRC-32 of the payload): PRE_COPY emits the
 * register file (initial_bytes) and, when asked with nothing unread and
 * the registers changed, again (dirty_bytes, as mlx5vf_precopy_ioctl()
 * arms the next increment); STOP_COPY emits the final chunk (registers,
 * ring position, sequence).  A stream without the final chunk is
 * truncated; a bad magic, version, length or CRC is corrupt.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "vfio/vfio.h"
#include "vfio/soft.h"

/* enum vfio_device_mig_state, with the uAPI's values. */
typedef enum {
    VFIO_MIG_STATE_ERROR = 0,
    VFIO_MIG_STATE_STOP = 1,
    VFIO_MIG_STATE_RUNNING = 2,
    VFIO_MIG_STATE_STOP_COPY = 3,
    VFIO_MIG_STATE_RESUMING = 4,
    VFIO_MIG_STATE_RUNNING_P2P = 5,
    VFIO_MIG_STATE_PRE_COPY = 6,
    VFIO_MIG_STATE_PRE_COPY_P2P = 7,
    VFIO_MIG_STATE_NUM,
} vfio_mig_state;

/* QEMU's mig_state_to_str(): "STOP", "RUNNING", ..., "UNKNOWN STATE". */
const char *vfio_mig_state__to_string(vfio_mig_state state);

/* The register file of the soft function. */
enum {
    VFIO_MIG_REG_ID,                     /* read-only: VFIO_MIG_DEVICE_ID */
    VFIO_MIG_REG_CTRL,                   /* VFIO_MIG_CTRL_* */
    VFIO_MIG_REG_RING_LO,                /* ring IOVA */
    VFIO_MIG_REG_RING_HI,
    VFIO_MIG_REG_RING_SIZE,              /* bytes, a multiple of the record */
    VFIO_MIG_REG_INTERVAL_US,            /* one record per interval */
    VFIO_MIG_REG_SCRATCH0,               /* free for the driver (and tests) */
    VFIO_MIG_NR_REGS = 16,
};
#define VFIO_MIG_CTRL_DMA_ENABLE 0x1u
#define VFIO_MIG_DEVICE_ID       0x1d6a0001u

/* What the DMA engine writes into the ring, one per interval. */
#define VFIO_MIG_DMA_MAGIC 0x52474d44u   /* "DMGR" */
typedef struct vfio_mig_dma_record {
    guint64 seq;                         /* 1, 2, 3, ... over migrations */
    guint32 magic;                       /* VFIO_MIG_DMA_MAGIC */
    guint32 device_id;                   /* VFIO_MIG_DEVICE_ID */
    guint64 pos;                         /* its byte offset in the ring */
    guint64 pattern[5];                  /* vfio_migration__dma_pattern(seq, i) */
} vfio_mig_dma_record;
G_STATIC_ASSERT(sizeof(vfio_mig_dma_record) == 64);

guint64 vfio_migration__dma_pattern(guint64 seq, guint word);
/* A well-formed record (magic, pattern, position @pos); its seq. */
gboolean vfio_mig_dma_record__check(const vfio_mig_dma_record *rec, guint64 pos,
                                    guint64 *seq);

/* A snapshot of the device (under its lock). */
typedef struct vfio_migration_info {
    vfio_mig_state state;
    guint32 regs[VFIO_MIG_NR_REGS];
    guint64 ring_iova, ring_size;        /* from the registers */
    guint64 ring_pos;                    /* next record goes here */
    guint64 seq;                         /* of the last record written */
    guint64 records;                     /* written by this device instance */
    bool dma_enabled;                    /* CTRL.DMA_ENABLE */
    bool dma_active;                     /* enabled, running, no fault */
    bool logging;                        /* DMA logging started */
    bool p2p;                            /* VFIO_MIGRATION_P2P */
} vfio_migration_info;

/* ------------------------------------------------------------------ */
/* Realize (vfio/device.c)                                                    */

/* vfio_migration_init(): on the soft backend, for a device with
 * dev->migration, create the soft function (dev->mig) in RUNNING and
 * register its savevm handlers "vfio:<alias>".  Else nothing. */
void vfio_migration__realize(vmm_machine *m, vfio_device *dev,
                             const vfio_device_config *cfg);
/* vfio_migration_exit(): unregister, stop DMA logging, quiesce and join
 * the DMA thread, close the data fds. */
void vfio_migration__unrealize(vmm_machine *m, vfio_device *dev);

/* The device has a soft function (dev->mig). */
bool vfio_migration__present(const vfio_device *dev);

/* ------------------------------------------------------------------ */
/* The FSM: VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE                       */

vfio_mig_state vfio_migration__state(vfio_device *dev);
/* Move to @new_state through the kernel's arcs (vfio_mig_get_next_state(),
 * one arc at a time, as the drivers' set_state loops do).  An impossible
 * request fails naming the device and both states and leaves the state
 * as it was; a failing arc (a bad stream on RESUMING -> STOP) leaves the
 * device in ERROR. */
gboolean vfio_migration__set_state(vfio_device *dev, vfio_mig_state new_state,
                                   GError **error);
/* vfio_mig_get_next_state() itself: the next arc from @cur towards @new
 * for a device with (or without) P2P; FALSE when there is none. */
gboolean vfio_migration__next_state(bool p2p, vfio_mig_state cur, vfio_mig_state new_state,
                                    vfio_mig_state *next);
/* The states the last set_state went through, "RUNNING -> PRE_COPY".
 * Free it. */
char *vfio_migration__last_path(vfio_device *dev);
/* VFIO_DEVICE_RESET: back to RUNNING with a fresh register file, no
 * session, DMA disabled (uAPI: the only way out of ERROR). */
void vfio_migration__reset(vfio_device *dev);

/* The data_fd of the session (borrowed, see above), or -1. */
int vfio_migration__data_fd(vfio_device *dev);
/* VFIO_MIG_GET_PRECOPY_INFO, in PRE_COPY and PRE_COPY_P2P only. */
gboolean vfio_migration__precopy_info(vfio_device *dev, guint64 *initial_bytes,
                                      guint64 *dirty_bytes, GError **error);
/* QEMU's vfio_save_block(): one read() of the saving data_fd appended to
 * @out.  Returns the bytes read, 0 when there is nothing more for now
 * (PRE_COPY) or at the end of the stream (STOP_COPY), -1 on error. */
gssize vfio_migration__save_block(vfio_device *dev, GByteArray *out, GError **error);
/* QEMU's vfio_load_buffer(): write @len bytes to the RESUMING data_fd. */
gboolean vfio_migration__load_buffer(vfio_device *dev, const guint8 *data, gsize len,
                                     GError **error);

/* ------------------------------------------------------------------ */
/* The device                                                          */

gboolean vfio_migration__reg_write(vfio_device *dev, guint reg, guint32 value,
                                   GError **error);
guint32 vfio_migration__reg_read(vfio_device *dev, guint reg);
void vfio_migration__get_info(vfio_device *dev, vfio_migration_info *out);
/* Program the ring [iova, iova + size) (a multiple of 64 bytes, 64-byte
 * aligned), rewind it to 0 and enable DMA: one record per @interval_us
 * while the device runs.  The sequence goes on from where it was. */
gboolean vfio_migration__dma_start(vfio_device *dev, guint64 iova, guint64 size,
                                   guint interval_us, GError **error);
/* Clear CTRL.DMA_ENABLE; returns with no DMA in flight. */
void vfio_migration__dma_stop(vfio_device *dev);
/* Wait until the device has written the record of sequence @seq; FALSE
 * after @timeout_ms or when the engine cannot get there (stopped, faulted). */
gboolean vfio_migration__wait_seq(vfio_device *dev, guint64 seq, guint timeout_ms);
/* The first DMA fault of the engine (it disables itself), or NULL.  Free it. */
char *vfio_migration__dma_error(vfio_device *dev);

/* ------------------------------------------------------------------ */
/* DMA logging: VFIO_DEVICE_FEATURE_DMA_LOGGING_START/_REPORT/_STOP    */

/* vfio_ioctl_device_feature_logging_start(): @ranges (1 to 256, aligned to
 * the page size, not overlapping) and a page size hint, a power of two;
 * below 4096 the device picks 4096 and returns it in @page_size.  One
 * start at a time. */
gboolean vfio_migration__dma_logging_start(vfio_device *dev, const soft_dirty_range *ranges,
                                           guint nranges, guint64 *page_size,
                                           GError **error);
/* vfio_ioctl_device_feature_logging_report(): set (never clear) a bit of
 * @bitmap (ceil(length / page_size / 64) words) for every @page_size unit
 * of [iova, iova + length) the device wrote since the last report, and
 * clear the log there.  Fails when logging is not started. */
gboolean vfio_migration__dma_logging_report(vfio_device *dev, guint64 iova, guint64 length,
                                            guint64 page_size, guint64 *bitmap,
                                            GError **error);
void vfio_migration__dma_logging_stop(vfio_device *dev);

/* ------------------------------------------------------------------ */
/* The machine                                                         */

/* The savevm entry's vm_running op (savevm__vm_running()) is QEMU's
 * vfio_vmstate_change() for one device, errors reset the device and are
 * logged.  This is the machine-wide form with the error returned. */
/* vfio_vmstate_change() for every soft function of @m: running -> RUNNING;
 * stopped -> STOP, or STOP_COPY from PRE_COPY (the switch-over).  With
 * P2P every device first goes to its P2P state, as
 * vfio_vmstate_change_prepare() does.  A device that fails is reset
 * (vfio_migration_set_state_or_reset()); the first error is returned. */
gboolean vfio_migration__vm_running(vmm_machine *m, bool running, GError **error);

/* Tests only: sync_dirty reports no page (as if the device had no dirty
 * tracking and nothing marked all memory dirty), so a migration misses
 * what the device wrote. */
void vfio_migration__test_disable_dirty_tracking(bool disable);

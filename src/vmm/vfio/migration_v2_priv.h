/*
 * vfio/migration_v2_priv.h: what the files of the soft VFIO function share,
 * and no one else: vfio/migration_v2_savevm.c (realize, savevm handlers, the
 * machine), vfio/migration_v2_fsm.c (the FSM and the data stream) and
 * vfio/migration_v2_dma.c (the register file, the DMA engine, DMA logging).
 * Everyone else uses vfio/migration_v2.h.
 *
 * Locking: mig->lock guards the FSM, the registers, the ring position and
 * sequence, the data sessions and the DMA log.  The DMA thread holds it
 * across each record it writes, so whoever takes it (a state change) knows
 * no DMA is in flight; it takes the soft IOMMU's lock inside, never the
 * other way round.  The *_locked functions below expect it held.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "vfio/migration_v2.h"
#include "vfio/soft.h"

/* VFIO_MIGRATION_* of struct vfio_device_feature_migration. */
#define MIG_FLAG_STOP_COPY   (1u << 0)
#define MIG_FLAG_P2P         (1u << 1)
#define MIG_FLAG_PRE_COPY    (1u << 2)

/* vfio_main.c: LOG_MAX_RANGES */
#define LOG_MAX_RANGES       256u
#define LOG_PAGE_SIZE        4096ULL
/* One report covers at most this much IOVA (a 32 KiB bitmap). */
#define LOG_REPORT_WINDOW    (1ULL << 30)

#define RECORD_SIZE          ((guint64)sizeof(vfio_mig_dma_record))

#define S_ERR  VFIO_MIG_STATE_ERROR
#define S_STOP VFIO_MIG_STATE_STOP
#define S_RUN  VFIO_MIG_STATE_RUNNING
#define S_SC   VFIO_MIG_STATE_STOP_COPY
#define S_RES  VFIO_MIG_STATE_RESUMING
#define S_RP2P VFIO_MIG_STATE_RUNNING_P2P
#define S_PC   VFIO_MIG_STATE_PRE_COPY
#define S_PP2P VFIO_MIG_STATE_PRE_COPY_P2P

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

/* ------------------------------------------------------------------ */
/* vfio/migration_v2_savevm.c                                                    */

/* dev->mig of a device with a soft function (asserted). */
vfio_migration *vfio_mig__of(vfio_device *dev);
/* The device's alias, for messages. */
const char *vfio_mig__name(vfio_migration *mig);
/* The soft IOMMU of the device's container, or NULL. */
soft_iommu *vfio_mig__iommu(vfio_migration *mig);

/* ------------------------------------------------------------------ */
/* vfio/migration_v2_fsm.c                                                */

/* RUNNING, PRE_COPY and their P2P variants: the device runs (DMA, MMIO). */
bool vfio_mig__state_runs(vfio_mig_state s);
/* PRE_COPY or PRE_COPY_P2P. */
bool vfio_mig__state_precopy(vfio_mig_state s);

/* Close *@fd if open and set it to -1. */
void vfio_mig__close(int *fd);
/* Close the data fds of the session and forget its lengths. */
void vfio_mig__session_end(vfio_migration *mig);

/* vfio_migration__set_state() with the lock held. */
gboolean vfio_mig__set_state_locked(vfio_migration *mig, vfio_mig_state new_state,
                                    GError **error);
/* vfio_migration__reset() with the lock held. */
void vfio_mig__reset_locked(vfio_migration *mig);
/* vfio_migration__precopy_info() with the lock held. */
gboolean vfio_mig__precopy_info_locked(vfio_migration *mig, guint64 *initial_bytes,
                                       guint64 *dirty_bytes, GError **error);
/* vfio_migration__save_block() with the lock held. */
gssize vfio_mig__save_block_locked(vfio_migration *mig, GByteArray *out, GError **error);

/* ------------------------------------------------------------------ */
/* vfio/migration_v2_dma.c                                                */

/* A fresh register file (ID set, the rest 0), ring position and sequence
 * 0, no DMA fault. */
void vfio_mig__regs_reset(vfio_migration *mig);
/* Start the DMA thread the first time DMA is enabled. */
void vfio_mig__dma_ensure_thread(vfio_migration *mig);

/* vfio_migration__dma_logging_start/_report/_stop() with the lock held. */
gboolean vfio_mig__logging_start_locked(vfio_migration *mig, const soft_dirty_range *ranges,
                                        guint nranges, guint64 *page_size, GError **error);
gboolean vfio_mig__logging_report_locked(vfio_migration *mig, guint64 iova, guint64 length,
                                         guint64 page_size, guint64 *bitmap,
                                         GError **error);
void vfio_mig__logging_stop_locked(vfio_migration *mig);

/*
 * migration/ram.h: what both ends of the RAM stream share, private to
 * migration/: the record layout, the RAM regions, the page hashes END
 * carries and the dirty bitmap helpers, after QEMU's migration/ram.c.
 * The stream format and the API are in migration/migration.h; the
 * source is migration/outgoing.c, the destination migration/incoming.c.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "vm.h"

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
#define BITMAP_WORDS(pages) (((pages) + 63) / 64)

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

extern const char *const mig_region_names[MIG_NR_REGIONS];

void mig_regions(vm *v, memory_region **regions);
bool mig_page_is_zero(const guint8 *page);
guint64 mig_page_hash(guint id, guint64 index, const guint8 *page);

/* What END carries: the sum of every page's hash.  Both sides keep one
 * hash per page, updated as each page is sent or received, so the sum is
 * ready at switch-over without reading all RAM in the downtime.  The
 * last time a page is sent it holds what the source ends with: a page
 * written after it was read is dirty, and goes again. */
typedef struct mig_hashes {
    guint64 *page[MIG_NR_REGIONS];
} mig_hashes;

void mig_hashes__init(mig_hashes *h, memory_region **regions);
void mig_hashes__free(mig_hashes *h);
void mig_hashes__update(mig_hashes *h, guint id, const guint8 *base, guint64 first,
                        guint32 count, bool zero);
guint64 mig_hashes__sum(const mig_hashes *h, memory_region **regions);

guint64 mig_bitmap_next(const unsigned long *bm, guint64 n, guint64 from, bool set);
void mig_bitmap_fill(unsigned long *bm, guint64 n);

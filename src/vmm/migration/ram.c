/*
 * migration/ram.c: the RAM helpers both ends of a precopy migration use
 * (migration/ram.h): the regions, zero pages (QEMU's buffer_is_zero()),
 * the page hashes END carries, the dirty bitmaps (QEMU's
 * migration/ram.c bitmap walk, find_next_bit()), and the RAM checksum
 * (migration__ram_checksum()).
 */
#include "migration/ram.h"

#include <string.h>

#include "migration/migration.h"

G_STATIC_ASSERT(sizeof(unsigned long) == 8);   /* memory/memslots.c's bitmaps */
G_STATIC_ASSERT(sizeof(MIGRATION_MAGIC) - 1 == 8);

const char *const mig_region_names[MIG_NR_REGIONS] = { "boot", "pc.ram" };

void
mig_regions(vm *v, memory_region **regions)
{
    regions[MIG_REGION_BOOT] = vm__boot_region(v);
    regions[MIG_REGION_RAM] = vm__ram_region(v);
}

/* buffer_is_zero() */
bool
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
guint64
mig_page_hash(guint id, guint64 index, const guint8 *page)
{
    const guint64 *w = (const guint64 *)page;
    guint64 acc = 0;

    for (guint i = 0; page && i < PAGE / 8; i++)
        acc += w[i] * (0x9e3779b97f4a7c15ULL + 2 * i);
    return mig_mix(acc ^ mig_mix(index << 4 | id));
}

void
mig_hashes__init(mig_hashes *h, memory_region **regions)
{
    for (guint i = 0; i < MIG_NR_REGIONS; i++)
        h->page[i] = g_new0(guint64, regions[i]->size / PAGE);
}

void
mig_hashes__free(mig_hashes *h)
{
    for (guint i = 0; i < MIG_NR_REGIONS; i++)
        g_clear_pointer(&h->page[i], g_free);
}

/* Pages [first, first + count) of region @id as they are in @base now. */
void
mig_hashes__update(mig_hashes *h, guint id, const guint8 *base, guint64 first,
                   guint32 count, bool zero)
{
    for (guint64 p = first; p < first + count; p++)
        h->page[id][p] = mig_page_hash(id, p, zero ? NULL : base + p * PAGE);
}

guint64
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
guint64
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

void
mig_bitmap_fill(unsigned long *bm, guint64 n)
{
    memset(bm, 0, BITMAP_WORDS(n) * sizeof(*bm));
    for (guint64 p = 0; p < n; p++)
        bm[p / 64] |= 1UL << (p % 64);
}

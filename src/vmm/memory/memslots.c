/*
 * memory/memslots.c: memslot bookkeeping and seed 003's atomic commit
 * (kvm_set_phys_mem, kvm_region_add/del, kvm_region_commit).
 */
#include "memory/memslots.h"

#include <gio/gio.h>
#include <string.h>

#include "dmg_i18n.h"

#define PAGE_SIZE 4096ULL

static guint64
memslots__now_ns(void)
{
    return (guint64)g_get_monotonic_time() * 1000;
}

static memslot *
memslots__slot(memslots *ms, guint i)
{
    return &g_array_index(ms->slots, memslot, i);
}

guint
memslots__used(const memslots *ms)
{
    guint n = 0;

    for (guint i = 0; i < ms->slots->len; i++)
        n += g_array_index(ms->slots, memslot, i).used;
    return n;
}

const memslot *
memslots__find(const memslots *ms, guint64 gpa)
{
    for (guint i = 0; i < ms->slots->len; i++) {
        const memslot *s = &g_array_index(ms->slots, memslot, i);

        if (s->used && gpa >= s->start_addr && gpa < s->start_addr + s->memory_size)
            return s;
    }
    return NULL;
}

/* kvm_get_free_slot(): the table grows on demand up to NR_MEMSLOTS;
 * freed indexes are reused first, so a slot costs O(1) even with tens
 * of thousands of them (bench/bench-memslots). */
static memslot *
memslots__alloc(memslots *ms)
{
    memslot fresh = { 0 };

    if (ms->free_ids->len) {
        guint i = g_array_index(ms->free_ids, guint, ms->free_ids->len - 1);

        g_array_set_size(ms->free_ids, ms->free_ids->len - 1);
        return memslots__slot(ms, i);
    }
    if (ms->slots->len >= ms->nr_slots_max)
        return NULL;
    fresh.slot = ms->slots->len;
    g_array_append_val(ms->slots, fresh);
    return memslots__slot(ms, ms->slots->len - 1);
}

static void
memslots__release(memslots *ms, memslot *s)
{
    guint i = s->slot;

    s->used = false;
    g_array_append_val(ms->free_ids, i);
}

static void
memslots__index(memslots *ms, memslot *s, bool add)
{
    gpointer key = GSIZE_TO_POINTER(s->start_addr);

    if (add)
        g_hash_table_insert(ms->by_start, key, GUINT_TO_POINTER(s->slot + 1));
    else
        g_hash_table_remove(ms->by_start, key);
}

/* kvm_lookup_matching_slot() */
static memslot *
memslots__lookup(memslots *ms, guint64 start, guint64 size)
{
    guint i = GPOINTER_TO_UINT(g_hash_table_lookup(ms->by_start, GSIZE_TO_POINTER(start)));
    memslot *s;

    if (!i)
        return NULL;
    s = memslots__slot(ms, i - 1);
    return s->used && s->memory_size == size ? s : NULL;
}

static void
memslots__error(memslots *ms, GError *err)
{
    ms->stats.errors++;
    if (!ms->first_error)
        ms->first_error = err;
    else
        g_error_free(err);
}

static bool
memslots__set(memslots *ms, const memslot *s)
{
    GError *err = NULL;
    guint64 t0 = memslots__now_ns();
    int ret = ms->backend.set_region(ms->backend.opaque, s, &err);

    ms->stats.ioctl_ns += memslots__now_ns() - t0;
    ms->stats.ioctls++;
    if (ret < 0)
        memslots__error(ms, err);
    return ret == 0;
}

static void
memslots__dirty_bmap(memslot *s, bool on)
{
    if (on && !s->dirty_bmap)
        s->dirty_bmap = g_new0(unsigned long,
                               (s->memory_size / PAGE_SIZE + 63) / 64 + 1);
    else if (!on)
        g_clear_pointer(&s->dirty_bmap, g_free);
}

/* kvm_slot_get_dirty_log() + kvm_slot_sync_dirty_pages(): move what KVM
 * logged for @s into its region's bitmap. */
static bool
memslots__harvest(memslots *ms, memslot *s, GError **error)
{
    guint64 pages = s->memory_size / PAGE_SIZE, first = s->offset / PAGE_SIZE;

    if (!s->dirty_bmap || !s->mr->dirty_bitmap)
        return true;
    memset(s->dirty_bmap, 0, (pages + 63) / 64 * sizeof(unsigned long));
    if (ms->backend.get_dirty_log(ms->backend.opaque, s, error) < 0)
        return false;
    for (guint64 p = 0; p < pages; p++) {
        if ((s->dirty_bmap[p / 64] >> (p % 64)) & 1)
            s->mr->dirty_bitmap[(first + p) / 64] |= 1UL << ((first + p) % 64);
    }
    return true;
}

/* kvm_set_phys_mem(): only RAM becomes slots; split at max_slot_size. */
static void
memslots__set_phys_mem(memslots *ms, const memory_region_section *sec, bool add)
{
    guint64 start = sec->offset_within_address_space;
    guint64 size = sec->size & ~(PAGE_SIZE - 1);
    guint8 *ram;

    if (sec->mr->type != MR_RAM || !size)
        return;
    ram = (guint8 *)sec->mr->ram + sec->offset_within_region;
    while (size) {
        guint64 chunk = MIN(ms->max_slot_size, size);
        memslot *s;

        if (!add) {
            GError *err = NULL;

            if (!(s = memslots__lookup(ms, start, chunk)))
                return;
            /* A slot going away takes its dirty log with it: read it
             * first, as kvm_set_phys_mem() does. */
            if (s->flags & MEMSLOT_LOG_DIRTY_PAGES && !memslots__harvest(ms, s, &err))
                memslots__error(ms, err);
            s->memory_size = 0;
            memslots__set(ms, s);
            memslots__dirty_bmap(s, false);
            memslots__index(ms, s, false);
            memslots__release(ms, s);
        } else {
            if (!(s = memslots__alloc(ms))) {
                memslots__error(ms, g_error_new(G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                                                _("no free memory slot for %s at 0x%" G_GINT64_MODIFIER "x: all %u KVM memslots are in use"),
                                                sec->mr->name, start, ms->nr_slots_max));
                return;
            }
            *s = (memslot){ .slot = s->slot, .used = true, .start_addr = start,
                            .memory_size = chunk, .ram = ram,
                            .flags = sec->log_dirty ? MEMSLOT_LOG_DIRTY_PAGES : 0,
                            .mr = sec->mr,
                            .offset = (guint64)(ram - (guint8 *)sec->mr->ram) };
            memslots__dirty_bmap(s, sec->log_dirty);
            if (memslots__set(ms, s)) {
                memslots__index(ms, s, true);
            } else {
                memslots__dirty_bmap(s, false);
                memslots__release(ms, s);
            }
        }
        start += chunk;
        ram += chunk;
        size -= chunk;
    }
}

static gint
section_cmp(gconstpointer a, gconstpointer b)
{
    const memory_region_section *x = a, *y = b;

    return x->offset_within_address_space < y->offset_within_address_space ? -1 :
           x->offset_within_address_space > y->offset_within_address_space;
}

bool
memslots__adds_overlap_dels(GArray *adds, GArray *dels)
{
    guint i = 0, j = 0;

    /* Both are sorted: advance whichever ends first (seed 003). */
    while (i < adds->len && j < dels->len) {
        const memory_region_section *a = &g_array_index(adds, memory_region_section, i);
        const memory_region_section *d = &g_array_index(dels, memory_region_section, j);
        guint64 a_end = a->offset_within_address_space + a->size;
        guint64 d_end = d->offset_within_address_space + d->size;

        if (a->offset_within_address_space < d_end && d->offset_within_address_space < a_end)
            return true;
        if (a_end <= d_end)
            i++;
        else
            j++;
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* The listener                                                        */

static memslots *
memslots__of(memory_listener *l)
{
    return (memslots *)l;
}

static bool
section_is_ram(const memory_region_section *s)
{
    return s->mr->type == MR_RAM;
}

static void
memslots__region_add(memory_listener *l, const memory_region_section *s)
{
    memslots *ms = memslots__of(l);

    if (!section_is_ram(s))
        return;
    if (ms->atomic)
        g_array_append_val(ms->transaction_add, *s);
    else
        memslots__set_phys_mem(ms, s, true);
}

static void
memslots__region_del(memory_listener *l, const memory_region_section *s)
{
    memslots *ms = memslots__of(l);

    if (!section_is_ram(s))
        return;
    if (ms->atomic)
        g_array_append_val(ms->transaction_del, *s);
    else
        memslots__set_phys_mem(ms, s, false);
}

static void
memslots__log_change(memory_listener *l, const memory_region_section *sec, bool on)
{
    memslots *ms = memslots__of(l);
    guint64 end = sec->offset_within_address_space + sec->size;

    if (!section_is_ram(sec))
        return;
    for (guint i = 0; i < ms->slots->len; i++) {
        memslot *s = memslots__slot(ms, i);

        if (!s->used || s->start_addr < sec->offset_within_address_space ||
            s->start_addr + s->memory_size > end)
            continue;
        s->flags = on ? s->flags | MEMSLOT_LOG_DIRTY_PAGES : s->flags & ~MEMSLOT_LOG_DIRTY_PAGES;
        memslots__dirty_bmap(s, on);
        memslots__set(ms, s);
    }
}

static void
memslots__log_start(memory_listener *l, const memory_region_section *s)
{
    memslots__log_change(l, s, true);
}

static void
memslots__log_stop(memory_listener *l, const memory_region_section *s)
{
    memslots__log_change(l, s, false);
}

/* kvm_region_commit(): deletes first, then adds; inhibit only when a
 * vCPU could otherwise hit the gap between them. */
static void
memslots__commit(memory_listener *l)
{
    memslots *ms = memslots__of(l);
    guint64 t0 = memslots__now_ns();
    bool inhibit;

    if (!ms->transaction_add->len && !ms->transaction_del->len)
        return;
    g_array_sort(ms->transaction_add, section_cmp);
    g_array_sort(ms->transaction_del, section_cmp);
    inhibit = ms->blocker &&
              memslots__adds_overlap_dels(ms->transaction_add, ms->transaction_del);
    if (inhibit) {
        accel_ioctl__inhibit_begin(ms->blocker);
        ms->stats.inhibited_commits++;
    }
    for (guint i = 0; i < ms->transaction_del->len; i++)
        memslots__set_phys_mem(ms, &g_array_index(ms->transaction_del, memory_region_section, i), false);
    for (guint i = 0; i < ms->transaction_add->len; i++)
        memslots__set_phys_mem(ms, &g_array_index(ms->transaction_add, memory_region_section, i), true);
    if (inhibit)
        accel_ioctl__inhibit_end(ms->blocker);
    g_array_set_size(ms->transaction_add, 0);
    g_array_set_size(ms->transaction_del, 0);
    ms->stats.commits++;
    ms->stats.commit_ns += memslots__now_ns() - t0;
}

void
memslots__init(memslots *ms, const memslot_backend *backend,
               accel_blocker *blocker, unsigned nr_slots_max,
               guint64 max_slot_size, bool atomic)
{
    *ms = (memslots){ 0 };
    ms->listener = (memory_listener){
        .region_add = memslots__region_add,
        .region_del = memslots__region_del,
        .commit = memslots__commit,
        .log_start = memslots__log_start,
        .log_stop = memslots__log_stop,
        .priority = 10,                  /* after VFIO, as in QEMU */
    };
    ms->slots = g_array_new(FALSE, TRUE, sizeof(memslot));
    ms->by_start = g_hash_table_new(g_direct_hash, g_direct_equal);
    ms->free_ids = g_array_new(FALSE, FALSE, sizeof(guint));
    ms->nr_slots_max = nr_slots_max ? nr_slots_max : 32;
    ms->max_slot_size = max_slot_size ? max_slot_size : G_MAXUINT64;
    ms->atomic = atomic;
    ms->transaction_add = g_array_new(FALSE, FALSE, sizeof(memory_region_section));
    ms->transaction_del = g_array_new(FALSE, FALSE, sizeof(memory_region_section));
    ms->blocker = blocker;
    ms->backend = *backend;
}

void
memslots__destroy(memslots *ms)
{
    for (guint i = 0; i < ms->slots->len; i++)
        g_free(memslots__slot(ms, i)->dirty_bmap);
    g_array_unref(ms->slots);
    g_hash_table_unref(ms->by_start);
    g_array_unref(ms->free_ids);
    g_array_unref(ms->transaction_add);
    g_array_unref(ms->transaction_del);
    g_clear_error(&ms->first_error);
}

gboolean
memslots__harvest_region(memslots *ms, memory_region *mr, GError **error)
{
    for (guint i = 0; i < ms->slots->len; i++) {
        memslot *s = memslots__slot(ms, i);

        if (s->used && s->mr == mr && !memslots__harvest(ms, s, error))
            return FALSE;
    }
    return TRUE;
}

guint64
memslots__sync_dirty(memslots *ms, memory_region *mr, GError **error)
{
    guint64 dirty = 0, words;

    if (!mr->dirty_bitmap)
        return 0;
    if (!memslots__harvest_region(ms, mr, error))
        return G_MAXUINT64;
    words = (mr->size / PAGE_SIZE + 63) / 64;
    for (guint64 w = 0; w < words; w++) {
        dirty += __builtin_popcountl(mr->dirty_bitmap[w]);
        mr->dirty_bitmap[w] = 0;
    }
    return dirty;
}

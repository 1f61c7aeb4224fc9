/*
 * memory/memory.c: memory regions, flat views, transactions and listeners
 * (QEMU softmmu/memory.c: render_memory_region, flatview_simplify,
 * address_space_update_topology_pass).
 */
#include "memory/memory.h"

#include <inttypes.h>
#include <gio/gio.h>
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dmg_i18n.h"

static unsigned transaction_depth;
static bool update_pending;
static GPtrArray *all_address_spaces;

/* ------------------------------------------------------------------ */
/* Regions                                                             */

static memory_region *
memory_region__alloc(memory_region_type type, const char *name, guint64 size)
{
    memory_region *mr = g_new0(memory_region, 1);

    mr->type = type;
    mr->fd = -1;
    mr->name = g_strdup(name);
    mr->size = size;
    mr->enabled = true;
    mr->subregions = g_ptr_array_new();
    return mr;
}

memory_region *
memory_region__new_ram(const char *name, guint64 size, guint64 capacity,
                       GError **error)
{
    memory_region *mr;
    void *ram;

    capacity = MAX(capacity, size);
    /* NORESERVE: a guest larger than what it touches costs nothing. */
    ram = mmap(NULL, capacity, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("cannot map %" PRIu64 " MiB of guest RAM for %s: %s"),
                    (uint64_t)(capacity >> 20), name, g_strerror(errno));
        return NULL;
    }
    mr = memory_region__alloc(MR_RAM, name, size);
    mr->ram = ram;
    mr->ram_capacity = capacity;
    return mr;
}

memory_region *
memory_region__new_ram_shared(const char *name, guint64 size, GError **error)
{
    memory_region *mr;
    int fd = memfd_create(name, MFD_CLOEXEC);
    void *ram;

    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("cannot create %" PRIu64 " MiB of shared guest RAM for %s: %s"),
                    (uint64_t)(size >> 20), name, g_strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ram == MAP_FAILED) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("cannot map shared guest RAM for %s: %s"), name, g_strerror(errno));
        close(fd);
        return NULL;
    }
    mr = memory_region__alloc(MR_RAM, name, size);
    mr->ram = ram;
    mr->ram_capacity = size;
    mr->fd = fd;
    return mr;
}

gboolean
memory_region__discard(memory_region *mr, guint64 offset, guint64 size, GError **error)
{
    int ret;

    g_return_val_if_fail(mr->type == MR_RAM && offset + size <= mr->ram_capacity, FALSE);
    if (mr->fd >= 0)
        ret = fallocate(mr->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        (off_t)offset, (off_t)size);
    else
        ret = madvise((guint8 *)mr->ram + offset, size, MADV_DONTNEED);
    if (ret == 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                _("%s: discarding 0x%" PRIx64 "+0x%" PRIx64 " of guest RAM failed: %s"),
                mr->name, offset, size, g_strerror(errno));
    return FALSE;
}

memory_region *
memory_region__new_alias(const char *name, memory_region *target,
                         guint64 offset, guint64 size)
{
    memory_region *mr = memory_region__alloc(MR_ALIAS, name, size);

    mr->alias = target;
    mr->alias_offset = offset;
    return mr;
}

memory_region *
memory_region__new_container(const char *name, guint64 size)
{
    return memory_region__alloc(MR_CONTAINER, name, size);
}

memory_region *
memory_region__new_mmio(const char *name, guint64 size)
{
    return memory_region__alloc(MR_MMIO, name, size);
}

memory_region *
memory_region__new_iommu(const char *name, guint64 size)
{
    return memory_region__alloc(MR_IOMMU, name, size);
}

void
memory_region__free(memory_region *mr)
{
    if (!mr)
        return;
    g_return_if_fail(!mr->container && mr->subregions->len == 0);
    if (mr->ram)
        munmap(mr->ram, mr->ram_capacity);
    if (mr->fd >= 0)
        close(mr->fd);
    g_free(mr->dirty_bitmap);
    g_ptr_array_unref(mr->subregions);
    g_free(mr->name);
    g_free(mr);
}

static void
memory_region__changed(void)
{
    memory_region_transaction__begin();
    update_pending = true;
    memory_region_transaction__commit();
}

void
memory_region__add_subregion(memory_region *parent, guint64 addr,
                             memory_region *child, int priority)
{
    guint i;

    g_return_if_fail(!child->container);
    child->container = parent;
    child->addr = addr;
    child->priority = priority;
    /* Kept lowest priority first and, among equals, oldest first; the
     * renderer walks it backwards, so higher priority wins and among
     * equals the newest wins, as in QEMU's
     * memory_region_update_container_subregions().  Appending the usual
     * equal-priority region is O(1). */
    for (i = parent->subregions->len; i > 0; i--) {
        memory_region *other = g_ptr_array_index(parent->subregions, i - 1);

        if (priority >= other->priority)
            break;
    }
    g_ptr_array_insert(parent->subregions, i, child);
    memory_region__changed();
}

void
memory_region__del_subregion(memory_region *parent, memory_region *child)
{
    g_return_if_fail(child->container == parent);
    g_ptr_array_remove(parent->subregions, child);
    child->container = NULL;
    memory_region__changed();
}

void
memory_region__set_enabled(memory_region *mr, bool enabled)
{
    if (mr->enabled == enabled)
        return;
    mr->enabled = enabled;
    memory_region__changed();
}

void
memory_region__set_size(memory_region *mr, guint64 size)
{
    g_return_if_fail(mr->type != MR_RAM || size <= mr->ram_capacity);
    if (mr->size == size)
        return;
    mr->size = size;
    memory_region__changed();
}

void
memory_region__set_address(memory_region *mr, guint64 addr)
{
    if (mr->addr == addr)
        return;
    mr->addr = addr;
    memory_region__changed();
}

void
memory_region__set_alias_offset(memory_region *mr, guint64 offset)
{
    if (mr->alias_offset == offset)
        return;
    mr->alias_offset = offset;
    memory_region__changed();
}

void
memory_region__set_log(memory_region *mr, bool log)
{
    if (mr->log_dirty == log)
        return;
    mr->log_dirty = log;
    /* Like a RAMBlock's dirty bitmap: it outlives the memslots, which
     * split and merge under it. */
    if (log && mr->type == MR_RAM && !mr->dirty_bitmap)
        mr->dirty_bitmap = g_new0(unsigned long, mr->ram_capacity / 4096 / 64 + 1);
    memory_region__changed();
}

/* ------------------------------------------------------------------ */
/* Flat views                                                          */

flat_view *
flat_view__ref(flat_view *view)
{
    g_atomic_int_inc(&view->ref);
    return view;
}

void
flat_view__unref(flat_view *view)
{
    if (view && g_atomic_int_dec_and_test(&view->ref)) {
        g_array_unref(view->ranges);
        g_free(view);
    }
}

static flat_view *
flat_view__new(void)
{
    flat_view *view = g_new0(flat_view, 1);

    view->ref = 1;
    view->ranges = g_array_new(FALSE, FALSE, sizeof(memory_region_section));
    return view;
}

/* While rendering, ranges live in a balanced tree keyed by start, so a
 * view of k ranges renders in O(k log k) (bench/bench-memslots). */
static gint
range_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
    guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

    return x < y ? -1 : x > y;
}

static void
render_add(GTree *t, memory_region *mr, guint64 base, guint64 start, guint64 end)
{
    memory_region_section *s = g_new(memory_region_section, 1);

    *s = (memory_region_section){
        .mr = mr,
        .offset_within_region = start - base,
        .offset_within_address_space = start,
        .size = end - start,
        .log_dirty = mr->log_dirty,
    };
    g_tree_insert(t, &s->offset_within_address_space, s);
}

/* Insert [start, end) of terminal region @mr, whose offset 0 is at @base,
 * into the gaps that higher-priority regions left. */
static void
render_insert(GTree *t, memory_region *mr, guint64 base, guint64 start, guint64 end)
{
    GTreeNode *node = g_tree_upper_bound(t, &start);
    GTreeNode *prev = node ? g_tree_node_previous(node) : g_tree_node_last(t);
    guint64 cursor = start;

    if (prev) {
        memory_region_section *p = g_tree_node_value(prev);

        cursor = MAX(cursor, p->offset_within_address_space + p->size);
    }
    while (cursor < end) {
        memory_region_section *next;

        node = g_tree_lower_bound(t, &cursor);
        next = node ? g_tree_node_value(node) : NULL;
        if (!next || next->offset_within_address_space >= end) {
            render_add(t, mr, base, cursor, end);
            return;
        }
        if (next->offset_within_address_space > cursor)
            render_add(t, mr, base, cursor, next->offset_within_address_space);
        cursor = next->offset_within_address_space + next->size;
    }
}

/* render_memory_region(): @base is where the region's container starts. */
static void
render_region(GTree *t, memory_region *mr, guint64 base, guint64 clip_start,
              guint64 clip_end)
{
    guint64 start, end;

    if (!mr->enabled)
        return;
    base += mr->addr;
    start = MAX(clip_start, base);
    end = MIN(clip_end, base + mr->size);
    if (start >= end)
        return;
    if (mr->type == MR_ALIAS) {
        render_region(t, mr->alias, base - mr->alias->addr - mr->alias_offset, start, end);
        return;
    }
    /* Subregions first, highest priority first: they win. */
    for (guint i = mr->subregions->len; i > 0; i--)
        render_region(t, g_ptr_array_index(mr->subregions, i - 1), base, start, end);
    if (mr->type != MR_CONTAINER)
        render_insert(t, mr, base, start, end);
}

static gboolean
render_collect(gpointer key, gpointer value, gpointer data)
{
    g_array_append_val((GArray *)data, *(memory_region_section *)value);
    return FALSE;
}

/* flatview_simplify(): merge neighbours that continue each other, in one
 * pass. */
static void
flat_view__simplify(flat_view *view)
{
    GArray *r = view->ranges;
    guint out = 0;

    for (guint i = 0; i < r->len; i++) {
        memory_region_section *b = &g_array_index(r, memory_region_section, i);
        memory_region_section *a = out ? &g_array_index(r, memory_region_section, out - 1) : NULL;

        if (a && a->mr == b->mr && a->log_dirty == b->log_dirty &&
            a->offset_within_address_space + a->size == b->offset_within_address_space &&
            a->offset_within_region + a->size == b->offset_within_region)
            a->size += b->size;
        else
            g_array_index(r, memory_region_section, out++) = *b;
    }
    g_array_set_size(r, out);
}

flat_view *
flat_view__render(memory_region *root)
{
    flat_view *view = flat_view__new();
    GTree *t = g_tree_new_full(range_cmp, NULL, NULL, g_free);

    if (root)
        render_region(t, root, 0, 0, G_MAXUINT64);
    g_tree_foreach(t, render_collect, view->ranges);
    g_tree_destroy(t);
    flat_view__simplify(view);
    return view;
}

/* ------------------------------------------------------------------ */
/* Listeners and topology updates                                      */

static bool
section_equal(const memory_region_section *a, const memory_region_section *b)
{
    return a->mr == b->mr && a->offset_within_address_space == b->offset_within_address_space &&
           a->size == b->size && a->offset_within_region == b->offset_within_region;
}

typedef enum { CALL_REGION_ADD, CALL_REGION_DEL, CALL_LOG_START, CALL_LOG_STOP } listener_call;

/* Adds go in listener order, deletes in reverse (QEMU's Forward and
 * Reverse MEMORY_LISTENER_UPDATE_REGION). */
static void
listeners__call(address_space *as, listener_call call, const memory_region_section *s)
{
    GPtrArray *ls = as->listeners;
    bool reverse = call == CALL_REGION_DEL || call == CALL_LOG_STOP;

    for (guint n = 0; n < ls->len; n++) {
        memory_listener *l = g_ptr_array_index(ls, reverse ? ls->len - 1 - n : n);
        void (*fn)(memory_listener *, const memory_region_section *) =
            call == CALL_REGION_ADD ? l->region_add :
            call == CALL_REGION_DEL ? l->region_del :
            call == CALL_LOG_START ? l->log_start : l->log_stop;

        if (fn)
            fn(l, s);
    }
}

static void
listeners__begin_commit(address_space *as, bool begin)
{
    for (guint n = 0; n < as->listeners->len; n++) {
        memory_listener *l = g_ptr_array_index(as->listeners, n);
        void (*fn)(memory_listener *) = begin ? l->begin : l->commit;

        if (fn)
            fn(l);
    }
}

/* address_space_update_topology_pass(): walk both sorted views. */
static void
address_space__update_pass(address_space *as, flat_view *old, flat_view *new,
                           bool adding)
{
    guint iold = 0, inew = 0;
    GArray *o = old->ranges, *n = new->ranges;

    while (iold < o->len || inew < n->len) {
        memory_region_section *fo = iold < o->len ? &g_array_index(o, memory_region_section, iold) : NULL;
        memory_region_section *fn = inew < n->len ? &g_array_index(n, memory_region_section, inew) : NULL;

        if (fo && (!fn || fo->offset_within_address_space < fn->offset_within_address_space ||
                   (fo->offset_within_address_space == fn->offset_within_address_space &&
                    !section_equal(fo, fn)))) {
            if (!adding)
                listeners__call(as, CALL_REGION_DEL, fo);
            iold++;
        } else if (fo && fn && section_equal(fo, fn)) {
            if (adding && fo->log_dirty != fn->log_dirty)
                listeners__call(as, fn->log_dirty ? CALL_LOG_START : CALL_LOG_STOP, fn);
            iold++;
            inew++;
        } else {
            if (adding)
                listeners__call(as, CALL_REGION_ADD, fn);
            inew++;
        }
    }
}

static void
address_space__update(address_space *as)
{
    flat_view *new = flat_view__render(as->root);
    flat_view *old = as->current;

    listeners__begin_commit(as, true);
    address_space__update_pass(as, old, new, false);
    address_space__update_pass(as, old, new, true);
    g_mutex_lock(&as->view_lock);
    as->current = new;
    g_mutex_unlock(&as->view_lock);
    listeners__begin_commit(as, false);
    flat_view__unref(old);
}

void
memory_region_transaction__begin(void)
{
    transaction_depth++;
}

void
memory_region_transaction__commit(void)
{
    g_return_if_fail(transaction_depth > 0);
    if (--transaction_depth || !update_pending)
        return;
    update_pending = false;
    for (guint i = 0; all_address_spaces && i < all_address_spaces->len; i++)
        address_space__update(g_ptr_array_index(all_address_spaces, i));
}

unsigned
memory_region_transaction__depth(void)
{
    return transaction_depth;
}

/* ------------------------------------------------------------------ */
/* Address spaces                                                      */

address_space *
address_space__new(const char *name, memory_region *root)
{
    address_space *as = g_new0(address_space, 1);

    as->name = g_strdup(name);
    as->root = root;
    g_mutex_init(&as->view_lock);
    as->current = flat_view__render(root);
    as->listeners = g_ptr_array_new();
    if (!all_address_spaces)
        all_address_spaces = g_ptr_array_new();
    g_ptr_array_add(all_address_spaces, as);
    return as;
}

void
address_space__free(address_space *as)
{
    if (!as)
        return;
    while (as->listeners->len)
        memory_listener__unregister(g_ptr_array_index(as->listeners, as->listeners->len - 1));
    g_ptr_array_remove(all_address_spaces, as);
    if (all_address_spaces->len == 0)
        g_clear_pointer(&all_address_spaces, g_ptr_array_unref);
    flat_view__unref(as->current);
    g_ptr_array_unref(as->listeners);
    g_mutex_clear(&as->view_lock);
    g_free(as->name);
    g_free(as);
}

flat_view *
address_space__get_view(address_space *as)
{
    flat_view *view;

    g_mutex_lock(&as->view_lock);
    view = flat_view__ref(as->current);
    g_mutex_unlock(&as->view_lock);
    return view;
}

bool
address_space__lookup(address_space *as, guint64 addr, memory_region_section *out)
{
    flat_view *view = address_space__get_view(as);
    GArray *r = view->ranges;
    guint lo = 0, hi = r->len;
    bool found = false;

    while (lo < hi) {
        guint mid = (lo + hi) / 2;
        memory_region_section *s = &g_array_index(r, memory_region_section, mid);

        if (addr < s->offset_within_address_space) {
            hi = mid;
        } else if (addr >= s->offset_within_address_space + s->size) {
            lo = mid + 1;
        } else {
            *out = *s;
            found = true;
            break;
        }
    }
    flat_view__unref(view);
    return found;
}

void
memory_listener__register(memory_listener *l, address_space *as)
{
    guint i;
    GArray *r;

    l->as = as;
    for (i = 0; i < as->listeners->len; i++) {
        if (l->priority < ((memory_listener *)g_ptr_array_index(as->listeners, i))->priority)
            break;
    }
    g_ptr_array_insert(as->listeners, i, l);
    /* listener_add_address_space(): replay the current view. */
    r = as->current->ranges;
    if (l->begin)
        l->begin(l);
    for (guint n = 0; n < r->len; n++) {
        memory_region_section *s = &g_array_index(r, memory_region_section, n);

        if (l->region_add)
            l->region_add(l, s);
        if (s->log_dirty && l->log_start)
            l->log_start(l, s);
    }
    if (l->commit)
        l->commit(l);
}

void
memory_listener__unregister(memory_listener *l)
{
    address_space *as = l->as;
    GArray *r;

    if (!as)
        return;
    r = as->current->ranges;
    if (l->begin)
        l->begin(l);
    for (guint n = r->len; n > 0; n--) {
        if (l->region_del)
            l->region_del(l, &g_array_index(r, memory_region_section, n - 1));
    }
    if (l->commit)
        l->commit(l);
    g_ptr_array_remove(as->listeners, l);
    l->as = NULL;
}

/*
 * memory/memory.h: the embedded VMM's memory API, after QEMU's softmmu/memory.c.
 *
 * A tree of memory regions (RAM, alias, container, MMIO, IOMMU) with
 * priorities is rendered into a flat view per address space: a sorted
 * list of non-overlapping ranges, higher priority first.  Changes happen
 * inside (nestable) transactions; at the outermost commit every address
 * space is re-rendered and its listeners get region_del for what went
 * away (in reverse listener order), region_add for what came (in
 * listener order), log_start/log_stop for dirty-logging changes, and
 * begin/commit around it all.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
    MR_RAM,
    MR_ALIAS,
    MR_CONTAINER,
    MR_MMIO,
    MR_IOMMU,
} memory_region_type;

typedef struct memory_region memory_region;
typedef struct ram_discard_manager ram_discard_manager;

struct memory_region {
    memory_region_type type;
    char *name;
    guint64 size;
    void *ram;                           /* MR_RAM: the host mapping */
    int fd;                              /* MR_RAM shared: its memfd, else -1 */
    guint64 ram_capacity;                /* MR_RAM: bytes mapped */
    memory_region *alias;                /* MR_ALIAS: the target */
    guint64 alias_offset;
    memory_region *container;            /* where it is mapped, or NULL */
    guint64 addr;                        /* offset inside the container */
    int priority;
    bool enabled;
    bool log_dirty;
    unsigned long *dirty_bitmap;         /* RAM: pages written while logging */
    ram_discard_manager *rdm;            /* RAM: virtio-mem's block state */
    GPtrArray *subregions;               /* memory_region *, lowest priority first */
};

/* A piece of a region as the address space sees it. */
typedef struct memory_region_section {
    memory_region *mr;
    guint64 offset_within_region;
    guint64 offset_within_address_space;
    guint64 size;
    bool log_dirty;
} memory_region_section;

typedef struct flat_view {
    gint ref;
    GArray *ranges;                      /* memory_region_section, sorted */
} flat_view;

typedef struct address_space address_space;

typedef struct memory_listener {
    void (*begin)(struct memory_listener *l);
    void (*commit)(struct memory_listener *l);
    void (*region_add)(struct memory_listener *l, const memory_region_section *s);
    void (*region_del)(struct memory_listener *l, const memory_region_section *s);
    void (*log_start)(struct memory_listener *l, const memory_region_section *s);
    void (*log_stop)(struct memory_listener *l, const memory_region_section *s);
    int priority;                        /* lower runs first for adds */
    address_space *as;
} memory_listener;

struct address_space {
    char *name;
    memory_region *root;
    GMutex view_lock;                    /* guards @current for readers */
    flat_view *current;
    GPtrArray *listeners;                /* memory_listener *, by priority */
};

/* Regions.  RAM is an anonymous private mapping of @capacity bytes (at
 * least @size; room to grow for memory_region__set_size). */
memory_region *memory_region__new_ram(const char *name, guint64 size,
                                      guint64 capacity, GError **error);
/* Shared RAM backed by a memfd (memory-backend-memfd, share=on). */
memory_region *memory_region__new_ram_shared(const char *name, guint64 size,
                                             GError **error);
/* ram_block_discard_range(): give [offset, offset+size) of RAM back to the
 * host: MADV_DONTNEED for private memory, fallocate(PUNCH_HOLE) for shared
 * memory, whose pages the page cache would otherwise keep. */
gboolean memory_region__discard(memory_region *mr, guint64 offset, guint64 size,
                                GError **error);
memory_region *memory_region__new_alias(const char *name, memory_region *target,
                                        guint64 offset, guint64 size);
memory_region *memory_region__new_container(const char *name, guint64 size);
memory_region *memory_region__new_mmio(const char *name, guint64 size);
memory_region *memory_region__new_iommu(const char *name, guint64 size);
/* Unmapped and without subregions; frees the mapping of RAM. */
void memory_region__free(memory_region *mr);

void memory_region__add_subregion(memory_region *parent, guint64 addr,
                                  memory_region *child, int priority);
void memory_region__del_subregion(memory_region *parent, memory_region *child);
void memory_region__set_enabled(memory_region *mr, bool enabled);
void memory_region__set_size(memory_region *mr, guint64 size);
void memory_region__set_address(memory_region *mr, guint64 addr);
void memory_region__set_alias_offset(memory_region *mr, guint64 offset);
void memory_region__set_log(memory_region *mr, bool log);

/* Transactions nest; only the outermost commit updates the views. */
void memory_region_transaction__begin(void);
void memory_region_transaction__commit(void);
unsigned memory_region_transaction__depth(void);

address_space *address_space__new(const char *name, memory_region *root);
void address_space__free(address_space *as);
/* The current view, referenced; release with flat_view__unref. */
flat_view *address_space__get_view(address_space *as);
/* The section covering @addr in the current view; false if none. */
bool address_space__lookup(address_space *as, guint64 addr,
                           memory_region_section *out);

flat_view *flat_view__ref(flat_view *view);
void flat_view__unref(flat_view *view);
/* Render a region tree on its own, without an address space. */
flat_view *flat_view__render(memory_region *root);

/* A new listener gets region_add for the current view (replay); a leaving
 * one gets region_del for it. */
void memory_listener__register(memory_listener *l, address_space *as);
void memory_listener__unregister(memory_listener *l);

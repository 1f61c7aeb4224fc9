/*
 * virtio/memory_device.h: hot-pluggable memory: pc-dimm and virtio-mem, each
 * backed by its own memory backend (hw/mem/memory-device.c).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "machine_state.h"

/* A backend on the host's normal pages, whatever the machine's are. */
#define VMM_PAGE_SIZE_SMALL G_MAXUINT64

typedef enum {
    MEMORY_DEVICE_DIMM,
    MEMORY_DEVICE_VIRTIO_MEM,
} memory_device_model;

typedef struct memory_device_config {
    const char *alias;
    memory_device_model model;
    guint64 size;                        /* the backend's size */
    guint64 block_size;                  /* virtio-mem */
    guint64 requested;                   /* virtio-mem requested-size */
    int node;                            /* -1: unset */
    vmm_pci_addr guest;                  /* virtio-mem-pci's address */
    /* The backend's page size: 0 the machine's (backend_page_size),
     * VMM_PAGE_SIZE_SMALL normal pages, else that huge page size. */
    guint64 page_size;
    int slot;                            /* pc-dimm's slot, -1: unset */
    guint64 addr;                        /* pc-dimm's addr, 0: unset */
} memory_device_config;

typedef struct memory_device {
    memory_device_config cfg;
    char *alias;
    guint64 page_size;                   /* backend page size, 0 = normal RAM */
} memory_device;

/* virtio-mem asks for coordinated discard; a dimm asks for nothing. */
memory_device *memory_device__realize(vmm_machine *m,
                                      const memory_device_config *cfg,
                                      GError **error);
void memory_device__free(memory_device *md);

/* How many virtio-mem devices the machine has. */
guint memory_devices__virtio_mem_count(const vmm_machine *m);

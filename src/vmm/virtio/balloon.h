/*
 * virtio/balloon.h: the virtio-balloon device model.  Whether it can return
 * memory is not a property of the balloon but of the discard manager:
 * QEMU's balloon silently skips its madvise() while discard is disabled
 * (hw/virtio/virtio-balloon.c, virtio_balloon_handle_output).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "machine_state.h"

typedef enum {
    VIRTIO_BALLOON_PCI,
    VIRTIO_BALLOON_PCI_TRANSITIONAL,
    VIRTIO_BALLOON_PCI_NON_TRANSITIONAL,
} virtio_balloon_model;

typedef struct virtio_balloon_config {
    const char *alias;
    virtio_balloon_model model;
    vmm_switch deflate_on_oom;
    vmm_switch free_page_reporting;
    vmm_virtio_transport transport;
    vmm_pci_addr guest;                  /* on PCI */
    vmm_ccw_addr ccw;                    /* on CCW */
    vmm_virtio_options virtio;
} virtio_balloon_config;

struct virtio_balloon {
    virtio_balloon_config cfg;
    char *alias;
    guint64 host_page_size;              /* of the RAM backend */
    guint64 skipped_discards;            /* counted, as issue 5 reports */
    guint64 discarded_pages;
    guint64 reported_pages;              /* free page reports discarded */
    guint64 skipped_reports;
    guint64 inflated_pages;              /* the balloon's size now */
    GHashTable *inflated;                /* gpa -> gpa, pages the guest gave */
};

virtio_balloon *virtio_balloon__realize(vmm_machine *m,
                                        const virtio_balloon_config *cfg);
void virtio_balloon__free(virtio_balloon *b);

/* The guest gives page @gpa (4 KiB) to the balloon, or reports it free:
 * virtio_balloon_handle_output() discards it, unless discard is disabled,
 * in which case it is skipped and counted, as QEMU does silently.
 * Returns false with @error only when the discard itself fails. */
gboolean virtio_balloon__inflate(vmm_machine *m, guint64 gpa, GError **error);
/* Free page reporting: discard a free page the guest reported. */
gboolean virtio_balloon__report_free(vmm_machine *m, guint64 gpa, GError **error);
/* The guest takes the page back; the next CPU access faults in a page. */
void virtio_balloon__deflate(vmm_machine *m, guint64 gpa);

/* qemu_balloon_is_inhibited(): inflate and free page reporting are no-ops */
bool virtio_balloon__inhibited(vmm_machine *m);
/* balloon_inflate_page(): with pages larger than the balloon's 4 KiB, a
 * host page is discarded only once the guest inflated all of it. */
bool virtio_balloon__partial(const virtio_balloon *b);

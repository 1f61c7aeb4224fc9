/*
 * balloon.c: virtio-balloon.
 */
#include "balloon.h"

#define VIRTIO_BALLOON_PFN_SIZE 4096

virtio_balloon *
virtio_balloon__realize(vmm_machine *m, const char *alias,
                        bool free_page_reporting, guint64 host_page_size)
{
    virtio_balloon *b = g_new0(virtio_balloon, 1);

    b->alias = g_strdup(alias);
    b->free_page_reporting = free_page_reporting;
    b->host_page_size = host_page_size ? host_page_size : VIRTIO_BALLOON_PFN_SIZE;
    m->balloon = b;
    return b;
}

void
virtio_balloon__free(virtio_balloon *b)
{
    if (!b)
        return;
    g_free(b->alias);
    g_free(b);
}

bool
virtio_balloon__inhibited(vmm_machine *m)
{
    return discard_manager__is_disabled(&m->discard);
}

bool
virtio_balloon__partial(const virtio_balloon *b)
{
    return b->host_page_size > VIRTIO_BALLOON_PFN_SIZE;
}

/*
 * balloon.c: virtio-balloon.
 */
#include "balloon.h"

#define VIRTIO_BALLOON_PFN_SIZE 4096

virtio_balloon *
virtio_balloon__realize(vmm_machine *m, const virtio_balloon_config *cfg)
{
    virtio_balloon *b = g_new0(virtio_balloon, 1);

    b->cfg = *cfg;
    b->alias = g_strdup(cfg->alias);
    b->cfg.alias = b->alias;
    b->host_page_size = m->cfg.backend_page_size ? m->cfg.backend_page_size
                                                 : VIRTIO_BALLOON_PFN_SIZE;
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

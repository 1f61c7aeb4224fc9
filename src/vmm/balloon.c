/*
 * balloon.c: virtio-balloon.
 */
#include "balloon.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <sys/mman.h>

#include "dmg_i18n.h"
#include "memory.h"

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
    b->inflated = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    m->balloon = b;
    return b;
}

void
virtio_balloon__free(virtio_balloon *b)
{
    if (!b)
        return;
    g_free(b->alias);
    g_hash_table_destroy(b->inflated);
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

static gboolean
virtio_balloon__discard(vmm_machine *m, guint64 gpa, GError **error)
{
    memory_region_section s;

    if (!m->memory || !address_space__lookup(m->memory, gpa, &s) || s.mr->type != MR_RAM) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("balloon: guest page 0x%llx is not RAM"), (unsigned long long)gpa);
        return FALSE;
    }
    return memory_region__discard(s.mr, s.offset_within_region +
                                  (gpa - s.offset_within_address_space),
                                  VIRTIO_BALLOON_PFN_SIZE, error);
}

/* Free page reporting (virtio_balloon_handle_report): the guest says a
 * page is free; it is discarded under the same rule as an inflate. */
gboolean
virtio_balloon__report_free(vmm_machine *m, guint64 gpa, GError **error)
{
    virtio_balloon *b = m->balloon;

    g_return_val_if_fail(b, FALSE);
    if (virtio_balloon__inhibited(m)) {
        b->skipped_reports++;
        return TRUE;
    }
    if (!virtio_balloon__discard(m, gpa, error))
        return FALSE;
    b->reported_pages++;
    return TRUE;
}

gboolean
virtio_balloon__inflate(vmm_machine *m, guint64 gpa, GError **error)
{
    virtio_balloon *b = m->balloon;
    gint64 *key;

    g_return_val_if_fail(b, FALSE);
    if (g_hash_table_contains(b->inflated, &gpa))
        return TRUE;
    key = g_new(gint64, 1);
    *key = (gint64)gpa;
    g_hash_table_add(b->inflated, key);
    b->inflated_pages++;
    if (virtio_balloon__inhibited(m)) {
        b->skipped_discards++;
        return TRUE;
    }
    if (!virtio_balloon__discard(m, gpa, error))
        return FALSE;
    b->discarded_pages++;
    return TRUE;
}

void
virtio_balloon__deflate(vmm_machine *m, guint64 gpa)
{
    virtio_balloon *b = m->balloon;

    if (b && g_hash_table_remove(b->inflated, &gpa))
        b->inflated_pages--;
}

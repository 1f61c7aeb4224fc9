/*
 * virtio/balloon.c: virtio-balloon.
 */
#include "virtio/balloon.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/mman.h>

#include "dmg_i18n.h"
#include "memory/memory.h"
#include "migration/savevm.h"

#define VIRTIO_BALLOON_PFN_SIZE 4096
#define BALLOON_STATE_VERSION 1u
#define BALLOON_STATE_HDR 16u            /* {u32 version, u32 0, u64 pages} */

/* ---- migration: virtio-balloon's vmstate (the balloon's size and which
 * pages the guest gave), sent with the vCPUs stopped ---------------- */

static gint
balloon__cmp_gpa(gconstpointer a, gconstpointer b)
{
    guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

    return x < y ? -1 : x > y;
}

static gboolean
balloon__save(void *opaque, GByteArray *out, GError **error)
{
    virtio_balloon *b = opaque;
    g_autoptr(GArray) pages = g_array_new(FALSE, FALSE, sizeof(guint64));
    GHashTableIter it;
    gpointer key;
    guint64 hdr[2] = { GUINT64_TO_LE(BALLOON_STATE_VERSION),
                       GUINT64_TO_LE(b->inflated_pages) };

    (void)error;
    g_hash_table_iter_init(&it, b->inflated);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        guint64 gpa = GUINT64_TO_LE(*(guint64 *)key);

        g_array_append_val(pages, gpa);
    }
    g_array_sort(pages, balloon__cmp_gpa);
    g_byte_array_append(out, (guint8 *)hdr, sizeof(hdr));
    g_byte_array_append(out, (guint8 *)pages->data, pages->len * sizeof(guint64));
    return TRUE;
}

static gboolean
balloon__load(void *opaque, const guint8 *data, gsize len, GError **error)
{
    virtio_balloon *b = opaque;
    guint64 version, n;

    if (len < BALLOON_STATE_HDR)
        goto err_len;
    memcpy(&version, data, 8);
    memcpy(&n, data + 8, 8);
    if (GUINT64_FROM_LE(version) != BALLOON_STATE_VERSION) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    _("balloon state of version %" G_GUINT64_FORMAT "; this VMM reads version %u"),
                    GUINT64_FROM_LE(version), BALLOON_STATE_VERSION);
        return FALSE;
    }
    n = GUINT64_FROM_LE(n);
    if (n != (len - BALLOON_STATE_HDR) / 8 || (len - BALLOON_STATE_HDR) % 8)
        goto err_len;
    g_hash_table_remove_all(b->inflated);
    for (guint64 i = 0; i < n; i++) {
        guint64 *gpa = g_new(guint64, 1);

        memcpy(gpa, data + BALLOON_STATE_HDR + i * 8, 8);
        *gpa = GUINT64_FROM_LE(*gpa);
        g_hash_table_add(b->inflated, gpa);
    }
    b->inflated_pages = g_hash_table_size(b->inflated);
    return TRUE;

err_len:
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("balloon state of %" G_GSIZE_FORMAT " bytes is truncated or inconsistent"), len);
    return FALSE;
}

static const savevm_ops balloon_savevm_ops = {
    .save_complete = balloon__save,
    .load_state = balloon__load,
};

/* virtio_pci_realize() (hw/virtio/virtio-pci.c, QEMU 7.2): with
 * disable-legacy=auto a virtio-pci device keeps its legacy interface
 * unless it sits behind a PCI Express port; the -transitional type always
 * keeps it, the -non-transitional never. */
static bool
virtio_balloon__legacy(const virtio_balloon_config *cfg)
{
    if (cfg->transport != VMM_VIRTIO_PCI)
        return false;
    if (cfg->model == VIRTIO_BALLOON_PCI_TRANSITIONAL)
        return true;
    return cfg->model == VIRTIO_BALLOON_PCI && !cfg->guest.express_port;
}

virtio_balloon *
virtio_balloon__realize(vmm_machine *m, const virtio_balloon_config *cfg)
{
    virtio_balloon *b = g_new0(virtio_balloon, 1);

    /* virtio_pci_device_plugged(): a device with a legacy interface
     * cannot offer VIRTIO_F_IOMMU_PLATFORM, and QEMU refuses to start. */
    if (cfg->virtio.iommu_platform == VMM_ON && virtio_balloon__legacy(cfg)) {
        g_autofree char *msg = g_strdup_printf(_("%s: VIRTIO_F_IOMMU_PLATFORM was supported by neither legacy nor transitional device; use model='virtio-non-transitional', or put the balloon behind a PCI Express root port"),
                                               cfg->alias);

        vmm_findings__error(&m->findings, "virtio-legacy-iommu-platform", cfg->alias, msg);
    }

    b->cfg = *cfg;
    b->alias = g_strdup(cfg->alias);
    b->cfg.alias = b->alias;
    b->host_page_size = m->cfg.backend_page_size ? m->cfg.backend_page_size
                                                 : VIRTIO_BALLOON_PFN_SIZE;
    b->inflated = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    m->balloon = b;
    savevm__register(m, "virtio-balloon", &balloon_savevm_ops, b);
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

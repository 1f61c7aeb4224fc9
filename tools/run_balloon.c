/*
 * run_balloon.c: `virt-dmaguard run --balloon TARGET`: the domain's host
 * devices realized on the soft VFIO backend over the running guest's
 * memory, the balloon set to TARGET, and what really happened measured:
 * RSS returned to the host, who inhibited, and the coherence auditor.
 */
#include "run_balloon.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

#include "virtio/balloon.h"
#include "dmg_i18n.h"
#include "vfio/listener.h"
#include "vfio/soft.h"

#define PAGE 4096ULL

static guint64
rss_anon_bytes(void)
{
    g_autofree char *status = NULL;
    const char *line;
    guint64 kib = 0;

    if (g_file_get_contents("/proc/self/status", &status, NULL, NULL) &&
        (line = strstr(status, "RssAnon:")))
        sscanf(line, "RssAnon: %" G_GUINT64_FORMAT, &kib);
    return kib * 1024;
}

static void
run_balloon_audit(vmm_machine *m, balloon_report *rep, GError **error)
{
    for (guint i = 0; i < m->address_spaces->len; i++) {
        vfio_address_space *space = g_ptr_array_index(m->address_spaces, i);

        for (guint j = 0; j < space->containers->len; j++) {
            soft_audit a;

            if (!soft_iommu__audit(vfio_soft__iommu(g_ptr_array_index(space->containers, j)),
                                   &a, error))
                return;
            rep->audited_pages += a.pages;
            rep->stale_pages += a.stale;
        }
    }
}

gboolean
run_balloon(vm *v, vmm_machine *m, guint64 ram_size, guint64 target,
            balloon_report *rep, GError **error)
{
    guint64 start, end, pages, rss0;

    *rep = (balloon_report){ .target = target };
    if (!m->balloon) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    _("the domain has no virtio <memballoon>, so there is no balloon to set; add <memballoon model='virtio'/>"));
        return FALSE;
    }
    if (target > ram_size) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("balloon target %" G_GUINT64_FORMAT " MiB is above the guest's %" G_GUINT64_FORMAT " MiB of memory; the balloon can only take memory away"),
                    target >> 20, ram_size >> 20);
        return FALSE;
    }
    vm__balloon_range(v, &start, &end);
    pages = (ram_size - target) / PAGE;
    if (pages > (end - start) / PAGE) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("balloon target %" G_GUINT64_FORMAT " MiB leaves the guest less than the RAM its program uses; choose at least %" G_GUINT64_FORMAT " MiB"),
                    target >> 20, (ram_size - (end - start)) >> 20);
        return FALSE;
    }
    /* The guest used this memory before it gave it to the balloon. */
    for (guint64 p = 0; p < pages; p++)
        *(volatile guint32 *)vm__ram_hva(v, end - (p + 1) * PAGE) = 0x5a5a5a5a;
    rss0 = rss_anon_bytes();
    for (guint64 p = 0; p < pages; p++) {
        if (!virtio_balloon__inflate(m, end - (p + 1) * PAGE, error))
            return FALSE;
    }
    rep->returned = rss0 > rss_anon_bytes() ? rss0 - rss_anon_bytes() : 0;
    rep->inflated_pages = m->balloon->inflated_pages;
    rep->discarded_pages = m->balloon->discarded_pages;
    rep->skipped_pages = m->balloon->skipped_discards;
    run_balloon_audit(m, rep, error);
    return !(error && *error);
}

/*
 * bench-vfio.c: the soft IOMMU and the balloon on the real kernel.
 *
 *   (a) soft DMA map of 1, 4 and 16 GiB of fresh anonymous guest RAM
 *       (fault in, long-term pin through io_uring, read every PFN), in
 *       GB/s, against the same memory populated with MAP_POPULATE in the
 *       same run; target: at least 0.5x that rate.  Also the map of
 *       already-populated memory (pin and PFNs only), and the coherence
 *       auditor's rate over the mapping, in pages/s;
 *   (b) the balloon inflating all 262,144 pages of 1 GiB of RAM: without
 *       VFIO (discard effective) the rate in pages/s and the RSS really
 *       returned; with a soft VFIO device attached (discard inhibited) the
 *       rate of the skips, and the RSS returned (none).
 *
 * A benchmark that prints figures, not a test: a missed target prints
 * "TARGET MISSED" and exits 0.  It exits 77 when io_uring's fixed buffers
 * or the PFNs in /proc/self/pagemap are unavailable.  The sizes run one
 * after another, each freed before the next; a size that does not fit in
 * MemAvailable (or fails to pin with ENOMEM) is skipped.  A warm-up pass
 * comes first: on a VM the first touch of guest-physical memory also pays
 * the host's fault, which would favour whichever of the two runs second.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "virtio/balloon.h"
#include "memory/memory.h"
#include "machine.h"
#include "vfio/device.h"
#include "vfio/soft.h"

#define MiB (G_GUINT64_CONSTANT(1024) * 1024)
#define GiB (1024 * MiB)
#define PAGE G_GUINT64_CONSTANT(4096)
#define IOVA G_GUINT64_CONSTANT(0x100000000)
#define RAM_BASE (16 * MiB)
#define BAL_RAM GiB
#define BAL_PAGES (BAL_RAM / PAGE)
#define MARGIN GiB                       /* MemAvailable kept free */
#define TARGET_MAP_RATIO 0.5

static guint64
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (guint64)ts.tv_sec * G_GUINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

static double
gbs(guint64 bytes, guint64 ns)
{
    return (double)bytes / MAX(ns, 1);
}

/* A "Key:   N kB" field of /proc/self/status or /proc/meminfo, in KiB. */
static guint64
proc_kib(const char *file, const char *key)
{
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents(file, &text, NULL, NULL) || !(p = strstr(text, key)))
        return 0;
    return g_ascii_strtoull(p + strlen(key), NULL, 10);
}

/* Resident pages of [p, p+len), by mincore(): exact for one mapping. */
static guint64
resident_pages(void *p, guint64 len)
{
    g_autofree unsigned char *vec = g_malloc(len / PAGE);
    guint64 n = 0;

    if (mincore(p, len, vec) < 0)
        return 0;
    for (guint64 i = 0; i < len / PAGE; i++)
        n += vec[i] & 1;
    return n;
}

/* What the soft IOMMU needs: io_uring's sparse fixed buffers (container
 * open) and PFNs in /proc/self/pagemap (the audit of one mapped page). */
static char *
unusable(void)
{
    vfio_container c = { .fd = -1 };
    g_autoptr(GError) err = NULL;
    soft_audit a;
    char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return g_strdup_printf("mmap: %s", g_strerror(errno));
    if (vfio_backend_soft.container_open(&c, &err) == 0 &&
        vfio_backend_soft.dma_map(&c, IOVA, PAGE, p, false, &err) == 0)
        soft_iommu__audit(vfio_soft__iommu(&c), &a, &err);
    if (c.backend_data)
        vfio_backend_soft.container_close(&c);
    munmap(p, PAGE);
    return err ? g_strdup(err->message) : NULL;
}

/* ---- (a) DMA map --------------------------------------------------------- */

typedef struct {
    char *skipped;                       /* why, or NULL */
    char *error;
    double populate_gbs, pin_gbs, map_gbs, audit_pps;
    guint64 vmpin_kib;                   /* VmPin right after the fresh map */
    soft_audit audit;
} map_row;

/* Anonymous private memory, as memory_region__new_ram maps guest RAM. */
static void *
anon(guint64 size, int extra)
{
    return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
}

static gboolean
timed_map(vfio_container *c, guint64 size, void *hva, double *best, map_row *r)
{
    g_autoptr(GError) err = NULL;
    guint64 t0 = now_ns();
    int ret = vfio_backend_soft.dma_map(c, IOVA, size, hva, false, &err);

    *best = MAX(*best, gbs(size, now_ns() - t0));
    if (ret == -ENOMEM)
        r->skipped = g_strdup_printf("not enough memory: %s", err->message);
    else if (ret < 0)
        r->error = g_strdup(err ? err->message : g_strerror(-ret));
    return ret == 0;
}

static void
unmap(vfio_container *c, guint64 size, map_row *r)
{
    g_autoptr(GError) err = NULL;

    if (vfio_backend_soft.dma_unmap(c, IOVA, size, &err) < 0 && !r->error)
        r->error = g_strdup(err->message);
}

/* One warm-up pass (on a VM the first touch of guest-physical memory also
 * pays the host's fault, which would favour whichever runs second), then
 * @reps rounds of: populate (and, in round 1, pin it), fresh map; best of. */
static void
bench_map(guint64 size, guint reps, map_row *r)
{
    vfio_container *c = g_new0(vfio_container, 1);
    g_autoptr(GError) err = NULL;
    guint64 avail = proc_kib("/proc/meminfo", "MemAvailable:") * 1024, t0;
    void *p;

    c->fd = -1;
    if (avail < size + MARGIN) {
        r->skipped = g_strdup_printf("not enough memory: MemAvailable %.1f GiB, needs %.1f",
                                     (double)avail / GiB, (double)(size + MARGIN) / GiB);
        goto out;
    }
    if (vfio_backend_soft.container_open(c, &err) < 0) {
        r->error = g_strdup(err->message);
        goto out;
    }
    if ((p = anon(size, MAP_POPULATE)) != MAP_FAILED)
        munmap(p, size);
    for (guint i = 0; i < reps && !r->skipped && !r->error; i++) {
        /* Baseline: the same amount populated by the kernel in one call. */
        t0 = now_ns();
        p = anon(size, MAP_POPULATE);
        r->populate_gbs = MAX(r->populate_gbs, gbs(size, now_ns() - t0));
        if (p == MAP_FAILED) {
            r->skipped = g_strdup_printf("not enough memory: mmap(MAP_POPULATE): %s", g_strerror(errno));
            break;
        }
        /* Already populated: the pin and the PFNs only. */
        if (timed_map(c, size, p, &r->pin_gbs, r))
            unmap(c, size, r);
        munmap(p, size);
        if (r->skipped || r->error)
            break;
        /* Fresh guest RAM, as memory_region__new_ram maps it: dma_map
         * faults in, pins and reads the PFN of every page. */
        if ((p = anon(size, MAP_NORESERVE)) == MAP_FAILED) {
            r->skipped = g_strdup_printf("not enough memory: mmap: %s", g_strerror(errno));
            break;
        }
        if (timed_map(c, size, p, &r->map_gbs, r)) {
            r->vmpin_kib = proc_kib("/proc/self/status", "VmPin:");
            t0 = now_ns();
            if (!soft_iommu__audit(vfio_soft__iommu(c), &r->audit, &err))
                r->error = g_strdup(err->message);
            r->audit_pps = MAX(r->audit_pps, r->audit.pages * 1e9 / MAX(now_ns() - t0, 1));
            unmap(c, size, r);
        }
        munmap(p, size);
    }
out:
    if (c->backend_data)
        vfio_backend_soft.container_close(c);
    g_free(c);
}

/* ---- (b) balloon --------------------------------------------------------- */

typedef struct {
    bool inhibited;
    double pps;
    gint64 rss_returned_kib;             /* RssAnon before - after */
    guint64 resident_before, resident_after;   /* pages of the RAM region */
    guint64 discarded, skipped;
    soft_audit audit;                    /* with VFIO: after the inflate */
    char *error;
} bal_row;

static void
bench_balloon(bool with_vfio, bal_row *r)
{
    vmm_machine_config cfg = { .type = VMM_MACHINE_Q35, .kvm = true, .kvm_sync_mmu = true,
                               .vfio_backend = &vfio_backend_soft };
    vfio_device_config dc = { .alias = "hostdev0", .host = "0000:01:00.0",
                              .kind = VFIO_KIND_PCI, .group = 1 };
    virtio_balloon_config bal = { .alias = "balloon0" };
    memory_region *root = memory_region__new_container("system", G_MAXUINT64), *ram;
    address_space *as = NULL;
    vmm_machine *m = NULL;
    vfio_device *dev = NULL;
    g_autoptr(GError) err = NULL;
    guint64 rss0, t0, p;

    if (!(ram = memory_region__new_ram("pc.ram", BAL_RAM, 0, &err))) {
        r->error = g_strdup(err->message);
        memory_region__free(root);
        return;
    }
    memory_region__add_subregion(root, RAM_BASE, ram, 0);
    as = address_space__new("memory", root);
    m = vmm_machine__new(&cfg);
    m->memory = as;
    virtio_balloon__realize(m, &bal);
    for (p = 0; p < BAL_PAGES; p++)      /* the guest touched all its RAM */
        ((volatile guint8 *)ram->ram)[p * PAGE] = (guint8)p | 1;
    if (with_vfio && !(dev = vfio_device__realize(m, &dc, &err))) {
        r->error = g_strdup(err->message);
        goto out;
    }
    r->inhibited = virtio_balloon__inhibited(m);
    r->resident_before = resident_pages(ram->ram, BAL_RAM);
    rss0 = proc_kib("/proc/self/status", "RssAnon:");
    t0 = now_ns();
    for (p = 0; p < BAL_PAGES && !err; p++)
        virtio_balloon__inflate(m, RAM_BASE + p * PAGE, &err);
    r->pps = p * 1e9 / MAX(now_ns() - t0, 1);
    r->rss_returned_kib = (gint64)rss0 - (gint64)proc_kib("/proc/self/status", "RssAnon:");
    r->resident_after = resident_pages(ram->ram, BAL_RAM);
    r->discarded = m->balloon->discarded_pages;
    r->skipped = m->balloon->skipped_discards;
    if (err || (dev && !soft_iommu__audit(vfio_soft__iommu(dev->group->container), &r->audit, &err)))
        r->error = g_strdup(err->message);
out:
    vmm_machine__free(m);
    address_space__free(as);
    memory_region__del_subregion(root, ram);
    memory_region__free(ram);
    memory_region__free(root);
}

/* ---- report --------------------------------------------------------------- */

static bool all_met = true;

static void
target(const char *what, bool met, const char *fig)
{
    printf("    %-46s %-6s (%s)\n", what, met ? "met" : "MISSED", fig);
    all_met &= met;
}

int
main(void)
{
    static const guint64 sizes[] = { 1 * GiB, 4 * GiB, 16 * GiB };
    map_row rows[G_N_ELEMENTS(sizes)] = { { 0 } };
    bal_row bal[2] = { { 0 } };
    g_autofree char *why = unusable(), *thp = NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("dmaguard VFIO benchmark: soft IOMMU DMA map, auditor, balloon\n");
    if (g_file_get_contents("/sys/kernel/mm/transparent_hugepage/enabled", &thp, NULL, NULL))
        g_strstrip(thp);
    printf("  %s, %ld CPUs, MemAvailable %.1f GiB, THP: %s\n", g_get_os_info(G_OS_INFO_KEY_PRETTY_NAME),
           sysconf(_SC_NPROCESSORS_ONLN), proc_kib("/proc/meminfo", "MemAvailable:") / (double)(GiB / 1024),
           thp ?: "n/a");
    if (why) {
        printf("SKIP: the soft IOMMU is unusable here: %s\n", why);
        return 77;
    }

    printf("\n(a) soft DMA map of fresh anonymous RAM (fault in + long-term pin + PFNs) against\n"
           "    mmap(MAP_POPULATE) of the same size, no madvise (THP as above); after a warm-up\n"
           "    pass, alternating, best of 3 (16 GiB: 1); \"pin only\": dma_map of populated memory:\n");
    printf("    %-8s %12s %12s %8s %12s %10s %14s\n", "size", "POPULATE", "soft map", "ratio",
           "pin only", "VmPin", "auditor");
    printf("    %-8s %12s %12s %8s %12s %10s %14s\n", "", "GB/s", "GB/s", "", "GB/s", "GiB", "pages/s");
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
        map_row *r = &rows[i];

        bench_map(sizes[i], sizes[i] > 4 * GiB ? 1 : 3, r);
        printf("    %2" G_GUINT64_FORMAT " GiB   ", sizes[i] / GiB);
        if (r->skipped || r->error)
            printf(" %s: %s\n", r->skipped ? "skipped" : "FAILED", r->skipped ?: r->error);
        else
            printf("%12.2f %12.2f %7.2fx %12.2f %10.2f %14.0f\n", r->populate_gbs, r->map_gbs,
                   r->map_gbs / r->populate_gbs, r->pin_gbs, r->vmpin_kib / (double)(GiB / 1024),
                   r->audit_pps);
    }

    printf("\n(b) balloon: inflate all %" G_GUINT64_FORMAT " pages of %" G_GUINT64_FORMAT
           " MiB of populated guest RAM (RssAnon: process-wide,\n    net of the balloon's own "
           "bookkeeping; RAM resident: mincore() of the region):\n", BAL_PAGES, BAL_RAM / MiB);
    printf("    %-28s %10s %10s %10s %10s %17s %6s\n", "", "pages/s", "discarded", "skipped",
           "RssAnon", "RAM resident MiB", "stale");
    printf("    %-28s %10s %10s %10s %10s %17s %6s\n", "", "", "", "", "returned", "before -> after", "");
    for (int v = 0; v < 2; v++) {
        bal_row *b = &bal[v];
        char stale[24] = "-";

        bench_balloon(v, b);
        if (v)
            g_snprintf(stale, sizeof(stale), "%" G_GUINT64_FORMAT, b->audit.stale);
        printf("    %-28s ", !v ? "no VFIO" : b->inhibited ? "soft VFIO device, inhibited" : "soft VFIO, NOT inhibited");
        if (b->error)
            printf("FAILED: %s\n", b->error);
        else
            printf("%10.0f %10" G_GUINT64_FORMAT " %10" G_GUINT64_FORMAT " %6.1f MiB %8.1f -> %6.1f %6s\n",
                   b->pps, b->discarded, b->skipped, b->rss_returned_kib / 1024.0,
                   b->resident_before * PAGE / (double)MiB, b->resident_after * PAGE / (double)MiB,
                   stale);
    }

    printf("\nresults:\n");
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
        map_row *r = &rows[i];
        g_autofree char *what = g_strdup_printf("soft map >= %.1fx MAP_POPULATE, %2" G_GUINT64_FORMAT " GiB",
                                                TARGET_MAP_RATIO, sizes[i] / GiB);
        g_autofree char *fig = g_strdup_printf("%.2f / %.2f GB/s = %.2fx", r->map_gbs, r->populate_gbs,
                                               r->map_gbs / MAX(r->populate_gbs, 1e-9));

        if (r->skipped)
            printf("    %-46s %-6s (%s)\n", what, "skip", r->skipped);
        else
            target(what, !r->error && r->map_gbs >= TARGET_MAP_RATIO * r->populate_gbs, r->error ?: fig);
    }
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++)
        if (!rows[i].skipped && !rows[i].error)
            printf("    auditor, %2" G_GUINT64_FORMAT " GiB mapped: %10.0f pages/s (%" G_GUINT64_FORMAT
                   " pages, %" G_GUINT64_FORMAT " stale, %" G_GUINT64_FORMAT " not present)\n",
                   sizes[i] / GiB, rows[i].audit_pps, rows[i].audit.pages, rows[i].audit.stale,
                   rows[i].audit.not_present);
    for (int v = 0; v < 2; v++)
        if (!bal[v].error)
            printf("    balloon %-22s %10.0f pages/s, %.1f MiB RssAnon returned (RAM region: %.1f of %"
                   G_GUINT64_FORMAT " MiB)%s\n", v ? "with VFIO (inhibited):" : "without VFIO:", bal[v].pps,
                   bal[v].rss_returned_kib / 1024.0,
                   ((double)bal[v].resident_before - (double)bal[v].resident_after) * PAGE / MiB,
                   BAL_RAM / MiB, v ? (bal[v].audit.stale ? "; STALE IOMMU pages" : "; 0 stale IOMMU pages") : "");
    printf(all_met ? "ALL TARGETS MET\n" : "TARGET MISSED\n");
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
        g_free(rows[i].skipped);
        g_free(rows[i].error);
    }
    g_free(bal[0].error);
    g_free(bal[1].error);
    return 0;
}

/*
 * test-vfio-soft.c: the soft IOMMU on the real kernel.  Guest memory is
 * pinned by io_uring (VmPin shows it), DMA moves through the pinned
 * pages, and seed 000's hazard is reproduced: after MADV_DONTNEED and a
 * CPU refault the device keeps reading the old page.
 */
#include <glib.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <liburing.h>

#include "machine.h"
#include "vfio/device.h"
#include "vfio/soft.h"
#include "uring-probe.h"

#define KiB 1024ULL
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)
#define IOVA 0x100000000ULL

static gsize page_size;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* VmPin from /proc/self/status, in KiB: io_uring accounts every pinned
 * page in mm->pinned_vm, so this is the kernel's own count. */
static guint64
vm_pin_kib(void)
{
    g_autofree char *status = NULL;
    const char *p;

    g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL, NULL));
    p = strstr(status, "VmPin:");
    g_assert_nonnull(p);
    return g_ascii_strtoull(p + strlen("VmPin:"), NULL, 10);
}

static guint
count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    guint n = 0;

    g_assert_nonnull(d);
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Anonymous private memory like guest RAM, 2 MiB aligned so a THP is
 * either fully inside or fully outside (VmPin then counts exactly). */
typedef struct guest_mem {
    guint8 *base;
    gsize size;
    void *map;
    gsize map_size;
} guest_mem;

static void
guest_mem__alloc(guest_mem *g, gsize size, bool noreserve)
{
    gsize align = 2 * MiB;
    guint8 *p;

    g->size = size;
    g->map_size = size + align;
    g->map = mmap(NULL, g->map_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | (noreserve ? MAP_NORESERVE : 0), -1, 0);
    g_assert_true(g->map != MAP_FAILED);
    p = (guint8 *)(((guintptr)g->map + align - 1) & ~(guintptr)(align - 1));
    g->base = p;
}

static void
guest_mem__free(guest_mem *g)
{
    g_assert_cmpint(munmap(g->map, g->map_size), ==, 0);
}

static void
fill(guint8 *p, gsize len, guint64 seed)
{
    guint64 *w = (guint64 *)p;

    for (gsize i = 0; i < len / 8; i++)
        w[i] = seed ^ (i * 0x9e3779b97f4a7c15ULL);
}

/* The offset of the first byte where @p differs from pattern @seed laid
 * at word @first_word, or -1. */
static gssize
check(const guint8 *p, gsize len, guint64 seed, gsize first_word)
{
    const guint64 *w = (const guint64 *)p;

    for (gsize i = 0; i < len / 8; i++)
        if (w[i] != (seed ^ ((first_word + i) * 0x9e3779b97f4a7c15ULL)))
            return (gssize)(i * 8);
    return -1;
}

#define PAT_A 0xaaaaaaaa00000000ULL
#define PAT_B 0xbbbbbbbb00000000ULL
#define PAT_C 0xcccccccc00000000ULL
#define PAT_D 0xdddddddd00000000ULL

/* A machine with one vfio-pci device on the soft backend: realize opens
 * the container (container_open) and attaches the group. */
typedef struct soft_env {
    vmm_machine *m;
    vfio_device *dev;
    vfio_container *c;
    soft_iommu *io;
} soft_env;

static void
soft_env__open(soft_env *e)
{
    vmm_machine_config mc = { .type = VMM_MACHINE_Q35, .kvm = false,
                              .vfio_backend = &vfio_backend_soft };
    vfio_device_config dc = { .alias = "hostdev0", .host = "0000:01:00.0",
                              .kind = VFIO_KIND_PCI, .group = 7, .driver = "vfio-pci" };
    g_autoptr(GError) err = NULL;

    e->m = vmm_machine__new(&mc);
    e->dev = vfio_device__realize(e->m, &dc, &err);
    g_assert_no_error(err);
    g_assert_nonnull(e->dev);
    e->c = e->dev->group->container;
    e->io = vfio_soft__iommu(e->c);
    g_assert_nonnull(e->io);
}

static void
soft_env__close(soft_env *e)
{
    vmm_machine__free(e->m);             /* unrealizes: container_close */
    memset(e, 0, sizeof(*e));
}

static int
map(soft_env *e, guint64 iova, guint64 size, void *vaddr, GError **err)
{
    return vfio_backend_soft.dma_map(e->c, iova, size, vaddr, false, err);
}

static int
unmap(soft_env *e, guint64 iova, guint64 size, GError **err)
{
    return vfio_backend_soft.dma_unmap(e->c, iova, size, err);
}

static double
map_timed(soft_env *e, guint64 iova, guest_mem *g)
{
    g_autoptr(GError) err = NULL;
    gint64 t0 = g_get_monotonic_time(), t1;

    g_assert_cmpint(map(e, iova, g->size, g->base, &err), ==, 0);
    g_assert_no_error(err);
    t1 = g_get_monotonic_time();
    return (double)g->size / ((double)MAX(t1 - t0, 1) / 1e6) / 1e9;
}

static void
audit(soft_env *e, soft_audit *a)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(soft_iommu__audit(e->io, a, &err));
    g_assert_no_error(err);
}

/* ------------------------------------------------------------------ */
/* a. map, DMA read, audit, unmap                                      */

static void
test_map_read_audit(void)
{
    soft_env e;
    guest_mem g;
    g_autofree guint8 *out = g_malloc(64 * MiB);
    g_autoptr(GError) err = NULL;
    guint64 total0 = vfio_soft__pinned_pages_total(), pin0;
    soft_audit a;
    double gbs;

    SKIP_IF_NO_URING();
    soft_env__open(&e);
    guest_mem__alloc(&g, 64 * MiB, false);
    pin0 = vm_pin_kib();

    gbs = map_timed(&e, IOVA, &g);
    g_test_message("map 64 MiB: %.2f GB/s", gbs);
    g_assert_cmpuint(soft_iommu__pinned_pages(e.io), ==, 64 * MiB / page_size);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, total0 + 64 * MiB / page_size);
    /* The kernel's own count: the pin is real. */
    g_assert_cmpuint(vm_pin_kib() - pin0, ==, 64 * MiB / KiB);

    fill(g.base, g.size, PAT_A);
    g_assert_true(soft_iommu__dma_read(e.io, IOVA, out, 64 * MiB, &err));
    g_assert_no_error(err);
    g_assert_cmpint(check(out, 64 * MiB, PAT_A, 0), ==, -1);

    audit(&e, &a);
    g_assert_cmpuint(a.pages, ==, 64 * MiB / page_size);
    g_assert_cmpuint(a.stale, ==, 0);
    g_assert_cmpuint(a.not_present, ==, 0);
    g_assert_cmpuint(a.first_stale_iova, ==, G_MAXUINT64);

    g_assert_cmpint(unmap(&e, IOVA, 64 * MiB, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpuint(soft_iommu__pinned_pages(e.io), ==, 0);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, total0);
    g_assert_cmpuint(vm_pin_kib(), ==, pin0);
    /* Unmapped: the device faults. */
    g_assert_false(soft_iommu__dma_read(e.io, IOVA, out, 4096, &err));
    g_assert_nonnull(strstr(err->message, "not mapped"));
    g_clear_error(&err);

    /* Pinning alone, on memory the CPU has populated. */
    gbs = map_timed(&e, IOVA, &g);
    g_test_message("map 64 MiB, already populated: %.2f GB/s", gbs);
    g_assert_cmpint(unmap(&e, IOVA, 64 * MiB, &err), ==, 0);

    guest_mem__free(&g);
    soft_env__close(&e);
}

/* ------------------------------------------------------------------ */
/* b. seed 000's hazard: the balloon zaps pinned pages                 */

#define ZAP_FIRST 256u
#define ZAP_PAGES 512u

static void
test_balloon_zap_stale(gconstpointer data)
{
    bool thp = GPOINTER_TO_INT(data);
    soft_env e;
    guest_mem g;
    gsize zoff = ZAP_FIRST * page_size, zlen = ZAP_PAGES * page_size;
    g_autofree guint8 *out = g_malloc(zlen);
    g_autoptr(GError) err = NULL;
    guint64 pin0, pinned;
    soft_audit a;

    SKIP_IF_NO_URING();
    soft_env__open(&e);
    guest_mem__alloc(&g, 64 * MiB, false);
    /* Transparent huge pages or 4 KiB pages: the zap splits a huge PMD
     * first, the result is the same. */
    g_assert_cmpint(madvise(g.base, g.size, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE), ==, 0);
    pin0 = vm_pin_kib();
    map_timed(&e, IOVA, &g);
    fill(g.base, g.size, PAT_A);
    pinned = vm_pin_kib();

    /* virtio-balloon inflate without the inhibitor: ram_block_discard_range()
     * -> madvise(MADV_DONTNEED) on private anonymous memory. */
    g_assert_cmpint(madvise(g.base + zoff, zlen, MADV_DONTNEED), ==, 0);

    /* The PTEs are gone although io_uring holds the pages: the zap does
     * not care about pins, the pages only lose their mapping. */
    audit(&e, &a);
    g_test_message("after MADV_DONTNEED of %u pinned pages: not present %" G_GUINT64_FORMAT
                   ", stale %" G_GUINT64_FORMAT, ZAP_PAGES, a.not_present, a.stale);
    g_assert_cmpuint(a.not_present, ==, ZAP_PAGES);
    g_assert_cmpuint(a.stale, ==, 0);
    g_assert_cmpuint(vm_pin_kib(), ==, pinned);          /* still pinned */
    g_assert_cmpuint(soft_iommu__pinned_pages(e.io), ==, 64 * MiB / page_size);
    /* The device still reads the old data from the pinned pages. */
    g_assert_true(soft_iommu__dma_read(e.io, IOVA + zoff, out, zlen, &err));
    g_assert_no_error(err);
    g_assert_cmpint(check(out, zlen, PAT_A, zoff / 8), ==, -1);

    /* Balloon deflate, the guest reuses the pages: the CPU faults in new
     * ones and writes B. */
    fill(g.base + zoff, zlen, PAT_B);
    audit(&e, &a);
    g_test_message("after the CPU refault: stale %" G_GUINT64_FORMAT ", first stale iova 0x%"
                   G_GINT64_MODIFIER "x", a.stale, a.first_stale_iova);
    g_assert_cmpuint(a.stale, ==, ZAP_PAGES);
    g_assert_cmpuint(a.not_present, ==, 0);
    g_assert_cmpuint(a.first_stale_iova, ==, IOVA + zoff);

    /* "Badness": the vCPU sees B, the device sees A at the same address. */
    g_assert_cmpint(check(g.base + zoff, zlen, PAT_B, 0), ==, -1);
    g_assert_true(soft_iommu__dma_read(e.io, IOVA + zoff, out, zlen, &err));
    g_assert_no_error(err);
    g_assert_cmpint(check(out, zlen, PAT_A, zoff / 8), ==, -1);
    /* And a device write is lost to the CPU. */
    fill(out, zlen, PAT_D);
    g_assert_true(soft_iommu__dma_write(e.io, IOVA + zoff, out, zlen, &err));
    g_assert_no_error(err);
    g_assert_cmpint(check(g.base + zoff, zlen, PAT_B, 0), ==, -1);
    memset(out, 0, zlen);
    g_assert_true(soft_iommu__dma_read(e.io, IOVA + zoff, out, zlen, &err));
    g_assert_cmpint(check(out, zlen, PAT_D, 0), ==, -1);
    /* The neighbours are coherent. */
    g_assert_true(soft_iommu__dma_read(e.io, IOVA + zoff - page_size, out, page_size, &err));
    g_assert_cmpint(memcmp(out, g.base + zoff - page_size, page_size), ==, 0);
    g_assert_true(soft_iommu__dma_read(e.io, IOVA + zoff + zlen, out, page_size, &err));
    g_assert_cmpint(memcmp(out, g.base + zoff + zlen, page_size), ==, 0);

    g_assert_cmpint(unmap(&e, IOVA, g.size, &err), ==, 0);
    g_assert_cmpuint(vm_pin_kib(), ==, pin0);
    guest_mem__free(&g);
    soft_env__close(&e);
}

/* ------------------------------------------------------------------ */
/* c. no zap: the CPU writes in place and the device sees it           */

static void
test_in_place_coherent(void)
{
    soft_env e;
    guest_mem g;
    gsize zoff = ZAP_FIRST * page_size, zlen = ZAP_PAGES * page_size;
    g_autofree guint8 *out = g_malloc(zlen);
    g_autoptr(GError) err = NULL;
    soft_audit a;

    SKIP_IF_NO_URING();
    soft_env__open(&e);
    guest_mem__alloc(&g, 64 * MiB, false);
    map_timed(&e, IOVA, &g);
    fill(g.base, g.size, PAT_A);
    fill(g.base + zoff, zlen, PAT_B);

    g_assert_true(soft_iommu__dma_read(e.io, IOVA + zoff, out, zlen, &err));
    g_assert_no_error(err);
    g_assert_cmpint(check(out, zlen, PAT_B, 0), ==, -1);
    audit(&e, &a);
    g_assert_cmpuint(a.stale, ==, 0);
    g_assert_cmpuint(a.not_present, ==, 0);

    g_assert_cmpint(unmap(&e, IOVA, g.size, &err), ==, 0);
    guest_mem__free(&g);
    soft_env__close(&e);
}

/* ------------------------------------------------------------------ */
/* d. device writes land in guest memory                               */

static void
test_dma_write(void)
{
    soft_env e;
    guest_mem g;
    gsize off = 1 * MiB + 120, len = 3 * MiB + 8;  /* not page aligned */
    g_autofree guint8 *in = g_malloc(len);
    g_autofree guint8 *out = g_malloc(len);
    g_autoptr(GError) err = NULL;
    soft_audit a;

    SKIP_IF_NO_URING();
    soft_env__open(&e);
    guest_mem__alloc(&g, 8 * MiB, false);
    map_timed(&e, IOVA, &g);
    fill(g.base, g.size, PAT_A);

    fill(in, len, PAT_C);
    g_assert_true(soft_iommu__dma_write(e.io, IOVA + off, in, len, &err));
    g_assert_no_error(err);
    g_assert_cmpint(memcmp(g.base + off, in, len), ==, 0);
    /* Around it, untouched. */
    g_assert_cmpint(check(g.base, off, PAT_A, 0), ==, -1);
    g_assert_cmpint(check(g.base + off + len, g.size - off - len, PAT_A, (off + len) / 8), ==, -1);
    g_assert_true(soft_iommu__dma_read(e.io, IOVA + off, out, len, &err));
    g_assert_cmpint(memcmp(out, in, len), ==, 0);
    audit(&e, &a);
    g_assert_cmpuint(a.stale, ==, 0);

    /* A DMA running off the end of the mapping faults and moves nothing. */
    g_assert_false(soft_iommu__dma_write(e.io, IOVA + g.size - 8, in, 16, &err));
    g_assert_nonnull(strstr(err->message, "not mapped"));
    g_clear_error(&err);
    g_assert_cmpint(check(g.base + g.size - 8, 8, PAT_A, (g.size - 8) / 8), ==, -1);
    g_assert_cmpint(unmap(&e, IOVA, g.size, &err), ==, 0);

    /* A read-only mapping refuses device writes. */
    g_assert_cmpint(vfio_backend_soft.dma_map(e.c, IOVA, g.size, g.base, true, &err), ==, 0);
    g_assert_false(soft_iommu__dma_write(e.io, IOVA, in, 64, &err));
    g_assert_nonnull(strstr(err->message, "read-only"));
    g_clear_error(&err);
    g_assert_true(soft_iommu__dma_read(e.io, IOVA, out, 64, &err));
    g_assert_cmpint(unmap(&e, IOVA, g.size, &err), ==, 0);

    guest_mem__free(&g);
    soft_env__close(&e);
}

/* ------------------------------------------------------------------ */
/* e. faults                                                           */

static void
expect_error(int ret, GError **err, const char *substr)
{
    g_assert_cmpint(ret, <, 0);
    g_assert_nonnull(*err);
    g_test_message("expected error: %s", (*err)->message);
    if (substr)
        g_assert_nonnull(strstr((*err)->message, substr));
    g_clear_error(err);
}

static void
test_faults(void)
{
    soft_env e;
    guest_mem g;
    g_autoptr(GError) err = NULL;
    guint64 total0 = vfio_soft__pinned_pages_total(), pin0;
    g_autofree char *enomem = g_strdup(g_strerror(ENOMEM));

    SKIP_IF_NO_URING();
    soft_env__open(&e);
    guest_mem__alloc(&g, 8 * MiB, false);
    pin0 = vm_pin_kib();

    /* Misaligned iova, size, vaddr; empty. */
    expect_error(map(&e, IOVA + 1, 4 * MiB, g.base, &err), &err, "page size");
    expect_error(map(&e, IOVA, 4 * MiB + 1, g.base, &err), &err, "page size");
    expect_error(map(&e, IOVA, 4 * MiB, g.base + 8, &err), &err, "page size");
    expect_error(map(&e, IOVA, 0, g.base, &err), &err, "page size");

    /* Overlap: inside, straddling the start, straddling the end. */
    g_assert_cmpint(map(&e, IOVA, 4 * MiB, g.base, &err), ==, 0);
    expect_error(map(&e, IOVA + 1 * MiB, 1 * MiB, g.base + 4 * MiB, &err), &err, g_strerror(EEXIST));
    expect_error(map(&e, IOVA - 2 * MiB, 4 * MiB, g.base + 4 * MiB, &err), &err, "overlaps");
    expect_error(map(&e, IOVA + 2 * MiB, 4 * MiB, g.base + 4 * MiB, &err), &err, "overlaps");
    /* Adjacent is fine; one unmap may cover whole mappings. */
    g_assert_cmpint(map(&e, IOVA + 4 * MiB, 4 * MiB, g.base + 4 * MiB, &err), ==, 0);
    g_assert_cmpuint(vm_pin_kib() - pin0, ==, 8 * MiB / KiB);
    /* Unmap that would split a mapping, or of nothing. */
    expect_error(unmap(&e, IOVA, 2 * MiB, &err), &err, "split");
    expect_error(unmap(&e, IOVA + 2 * MiB, 4 * MiB, &err), &err, "split");
    expect_error(unmap(&e, IOVA + 64 * MiB, 4 * MiB, &err), &err, "nothing is mapped");
    g_assert_cmpint(unmap(&e, IOVA, 8 * MiB, &err), ==, 0);
    g_assert_no_error(err);
    expect_error(unmap(&e, IOVA, 8 * MiB, &err), &err, "nothing is mapped");
    g_assert_cmpuint(vm_pin_kib(), ==, pin0);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, total0);

    /* Pinning hits RLIMIT_MEMLOCK: a clear error, nothing left pinned,
     * and the same map works afterwards. */
    vfio_soft__fail_next_map(ENOMEM);
    g_assert_cmpint(map(&e, IOVA, 8 * MiB, g.base, &err), ==, -ENOMEM);
    g_test_message("injected: %s", err->message);
    g_assert_nonnull(strstr(err->message, "iova 0x100000000"));
    g_assert_nonnull(strstr(err->message, enomem));
    g_clear_error(&err);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, total0);
    g_assert_cmpuint(soft_iommu__pinned_pages(e.io), ==, 0);
    g_assert_cmpuint(vm_pin_kib(), ==, pin0);
    g_assert_cmpint(map(&e, IOVA, 8 * MiB, g.base, &err), ==, 0);
    g_assert_cmpint(unmap(&e, IOVA, 8 * MiB, &err), ==, 0);
    guest_mem__free(&g);
    soft_env__close(&e);
}

/* A map larger than one registered buffer (1 GiB) takes two slots; the
 * injected failure on the second unwinds the first. */
static void
test_map_over_1g(void)
{
    soft_env e;
    guest_mem g, small;
    gsize size = 1 * GiB + 256 * MiB, span = 64 * KiB;
    g_autofree guint8 *out = g_malloc(span);
    g_autofree guint8 *in = g_malloc(span);
    g_autoptr(GError) err = NULL;
    guint64 total0 = vfio_soft__pinned_pages_total(), pin0;
    gsize boundary = 1 * GiB - span / 2;
    g_autofree char *enomem = g_strdup(g_strerror(ENOMEM));
    soft_audit a;
    double gbs, gbs64;

    SKIP_IF_NO_URING();
    soft_env__open(&e);
    guest_mem__alloc(&g, size, true);
    pin0 = vm_pin_kib();

    vfio_soft__fail_next_map(ENOMEM);
    g_assert_cmpint(map(&e, IOVA, size, g.base, &err), ==, -ENOMEM);
    g_assert_nonnull(strstr(err->message, "iova"));
    g_assert_nonnull(strstr(err->message, enomem));
    g_assert_nonnull(strstr(err->message, "fixed buffer 2 of 2"));
    g_clear_error(&err);
    g_assert_cmpuint(vm_pin_kib(), ==, pin0);    /* chunk 1 was unpinned */
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, total0);

    /* This pins pages the first attempt faulted in; measure on fresh
     * memory too. */
    guest_mem__free(&g);
    guest_mem__alloc(&g, size, true);
    gbs = map_timed(&e, IOVA, &g);
    g_assert_cmpuint(soft_iommu__pinned_pages(e.io), ==, size / page_size);
    g_assert_cmpuint(vm_pin_kib() - pin0, ==, size / KiB);

    guest_mem__alloc(&small, 64 * MiB, false);
    gbs64 = map_timed(&e, IOVA + 2 * GiB, &small);
    g_test_message("map 1.25 GiB (fresh MAP_NORESERVE memory): %.2f GB/s; 64 MiB: %.2f GB/s",
                   gbs, gbs64);

    /* DMA across the boundary of the two registered buffers. */
    fill(g.base + boundary, span, PAT_A);
    g_assert_true(soft_iommu__dma_read(e.io, IOVA + boundary, out, span, &err));
    g_assert_no_error(err);
    g_assert_cmpint(memcmp(out, g.base + boundary, span), ==, 0);
    fill(in, span, PAT_C);
    g_assert_true(soft_iommu__dma_write(e.io, IOVA + boundary, in, span, &err));
    g_assert_cmpint(memcmp(in, g.base + boundary, span), ==, 0);
    audit(&e, &a);
    g_assert_cmpuint(a.pages, ==, (size + 64 * MiB) / page_size);
    g_assert_cmpuint(a.stale, ==, 0);
    g_assert_cmpuint(a.not_present, ==, 0);

    g_assert_cmpint(unmap(&e, IOVA, size, &err), ==, 0);
    g_assert_cmpint(unmap(&e, IOVA + 2 * GiB, 64 * MiB, &err), ==, 0);
    gbs = map_timed(&e, IOVA, &g);
    g_test_message("map 1.25 GiB, already populated: %.2f GB/s", gbs);
    g_assert_cmpint(unmap(&e, IOVA, size, &err), ==, 0);
    g_assert_cmpuint(vm_pin_kib(), ==, pin0);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, total0);
    guest_mem__free(&small);
    guest_mem__free(&g);
    soft_env__close(&e);
}

/* ------------------------------------------------------------------ */
/* f. no leak                                                          */

static void
test_no_leak(void)
{
    soft_env e;
    guest_mem g;
    g_autoptr(GError) err = NULL;
    guint fds0 = count_fds();
    guint64 total0 = vfio_soft__pinned_pages_total(), pin0;
    vfio_device_config dc2 = { .alias = "hostdev1", .host = "0000:02:00.0",
                               .kind = VFIO_KIND_PCI, .group = 8, .driver = "vfio-pci" };
    vfio_device *dev2;

    SKIP_IF_NO_URING();
    guest_mem__alloc(&g, 4 * MiB, false);
    pin0 = vm_pin_kib();
    for (int round = 0; round < 3; round++) {
        soft_env__open(&e);
        g_assert_cmpuint(count_fds(), >, fds0);
        /* A second group joins the same container. */
        dev2 = vfio_device__realize(e.m, &dc2, &err);
        g_assert_no_error(err);
        g_assert_true(dev2->group->container == e.c);
        /* Closing with a live mapping unpins it. */
        g_assert_cmpint(map(&e, IOVA, g.size, g.base, &err), ==, 0);
        g_assert_cmpuint(vm_pin_kib() - pin0, ==, g.size / KiB);
        soft_env__close(&e);
        g_assert_cmpuint(count_fds(), ==, fds0);
        g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, total0);
        g_assert_cmpuint(vm_pin_kib(), ==, pin0);
    }
    guest_mem__free(&g);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    page_size = (gsize)sysconf(_SC_PAGESIZE);
    g_test_add_func("/vfio-soft/map-read-audit", test_map_read_audit);
    g_test_add_data_func("/vfio-soft/seed000-balloon-zap-stale/4k", GINT_TO_POINTER(0),
                         test_balloon_zap_stale);
    g_test_add_data_func("/vfio-soft/seed000-balloon-zap-stale/thp", GINT_TO_POINTER(1),
                         test_balloon_zap_stale);
    g_test_add_func("/vfio-soft/in-place-coherent", test_in_place_coherent);
    g_test_add_func("/vfio-soft/dma-write", test_dma_write);
    g_test_add_func("/vfio-soft/faults", test_faults);
    g_test_add_func("/vfio-soft/map-over-1g", test_map_over_1g);
    g_test_add_func("/vfio-soft/no-leak", test_no_leak);
    return g_test_run();
}

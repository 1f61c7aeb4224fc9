/*
 * test-vfio-balloon.c: seeds 000-002 on the real kernel.  Guest RAM is
 * mapped into a soft VFIO container (pinned with io_uring), the balloon
 * discards with MADV_DONTNEED, and the coherence auditor compares the
 * PFNs the IOMMU holds with the PFNs the CPU sees.
 *
 *  - inhibitor bypassed (test-only switch): inflate, deflate, CPU write:
 *    stale pages, and DMA reads the old data: seed 000's "Badness";
 *  - with the inhibitor: nothing discarded, no stale page, and the
 *    inhibitor names the group and the device;
 *  - an opted-in mediated device that pins only its working set:
 *    discards happen outside it, no stale page;
 *  - virtio-mem with VFIO: unplug and plug really shrink and grow RSS,
 *    no stale page.
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "virtio/balloon.h"
#include "memory/memory.h"
#include "machine.h"
#include "vfio/device.h"
#include "vfio/listener.h"
#include "vfio/soft.h"
#include "viommu.h"

#define MiB (1024ULL * 1024)
#define PAGE 4096ULL
#define RAM_BASE (16 * MiB)
#define RAM_SIZE (64 * MiB)

typedef struct {
    vmm_machine *m;
    memory_region *root, *ram;
    address_space *as;
} rig;

static void
rig_init(rig *r, bool bypass)
{
    vmm_machine_config cfg = { .type = VMM_MACHINE_Q35, .kvm = true, .kvm_sync_mmu = true,
                               .vfio_backend = &vfio_backend_soft,
                               .test_bypass_discard_inhibit = bypass };
    virtio_balloon_config bal = { .alias = "balloon0" };

    r->root = memory_region__new_container("system", G_MAXUINT64);
    r->ram = memory_region__new_ram("pc.ram", RAM_SIZE, 0, NULL);
    memory_region__add_subregion(r->root, RAM_BASE, r->ram, 0);
    r->as = address_space__new("memory", r->root);
    r->m = vmm_machine__new(&cfg);
    r->m->memory = r->as;
    virtio_balloon__realize(r->m, &bal);
}

static void
rig_destroy(rig *r)
{
    vmm_machine__free(r->m);
    address_space__free(r->as);
    memory_region__del_subregion(r->root, r->ram);
    memory_region__free(r->ram);
    memory_region__free(r->root);
}

static vfio_device *
rig_device(rig *r, const char *alias, vfio_device_kind kind, int group, bool optin)
{
    vfio_device_config cfg = { .alias = alias, .host = "0000:01:00.0", .kind = kind,
                               .group = group, .balloon_allowed = optin };
    g_autoptr(GError) err = NULL;
    vfio_device *dev = vfio_device__realize(r->m, &cfg, &err);

    g_assert_no_error(err);
    return dev;
}

static soft_iommu *
rig_iommu(rig *r, vfio_device *dev)
{
    return vfio_soft__iommu(dev->group->container);
}

static guint32 *
page_word(rig *r, guint64 gpa)
{
    return (guint32 *)((guint8 *)r->ram->ram + (gpa - RAM_BASE));
}

static void
fill(rig *r, guint64 gpa, guint64 pages, guint32 pattern)
{
    for (guint64 p = 0; p < pages; p++)
        *page_word(r, gpa + p * PAGE) = pattern + p;
}

static guint32
dma_word(soft_iommu *io, guint64 iova)
{
    g_autoptr(GError) err = NULL;
    guint32 v = 0;

    g_assert_true(soft_iommu__dma_read(io, iova, &v, sizeof(v), &err));
    g_assert_no_error(err);
    return v;
}

static guint64
rss_anon_kib(void)
{
    g_autofree char *status = NULL;
    const char *line;
    guint64 kib = 0;

    g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL, NULL));
    if ((line = strstr(status, "RssAnon:")))
        sscanf(line, "RssAnon: %" G_GUINT64_FORMAT, &kib);
    return kib;
}

#define ZAP_GPA (RAM_BASE + 8 * MiB)
#define ZAP_PAGES 256

/* Inflate, deflate, CPU write: what the guest's balloon driver does. */
static void
balloon_cycle(rig *r)
{
    g_autoptr(GError) err = NULL;

    for (guint64 p = 0; p < ZAP_PAGES; p++)
        g_assert_true(virtio_balloon__inflate(r->m, ZAP_GPA + p * PAGE, &err));
    for (guint64 p = 0; p < ZAP_PAGES; p++)
        virtio_balloon__deflate(r->m, ZAP_GPA + p * PAGE);
    fill(r, ZAP_GPA, ZAP_PAGES, 0xb0000000);
}

/* seed 000: without the inhibitor the IOMMU keeps the old pages. */
static void
test_inhibitor_bypassed(void)
{
    rig r;
    vfio_device *dev;
    soft_audit audit;
    g_autoptr(GError) err = NULL;

    rig_init(&r, true);
    dev = rig_device(&r, "hostdev0", VFIO_KIND_PCI, 1, false);
    g_assert_cmpuint(r.m->discard.uncoordinated_discard_disabled, ==, 0);
    fill(&r, ZAP_GPA, ZAP_PAGES, 0xa0000000);
    balloon_cycle(&r);
    g_assert_cmpuint(r.m->balloon->discarded_pages, ==, ZAP_PAGES);
    g_assert_true(soft_iommu__audit(rig_iommu(&r, dev), &audit, &err));
    g_assert_no_error(err);
    g_test_message("bypassed: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " pages stale",
                   audit.stale, audit.pages);
    g_assert_cmpuint(audit.stale, ==, ZAP_PAGES);
    g_assert_cmpuint(audit.first_stale_iova, ==, ZAP_GPA);
    /* The CPU sees the new data, the device still the old: Badness. */
    g_assert_cmphex(*page_word(&r, ZAP_GPA), ==, 0xb0000000);
    g_assert_cmphex(dma_word(rig_iommu(&r, dev), ZAP_GPA), ==, 0xa0000000);
    rig_destroy(&r);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, 0);
}

/* seeds 000/002: the attached group disables the balloon's discard. */
static void
test_with_inhibitor(void)
{
    rig r;
    vfio_device *dev;
    soft_audit audit;
    discard_inhibitor *who;
    g_autoptr(GError) err = NULL;

    rig_init(&r, false);
    dev = rig_device(&r, "hostdev0", VFIO_KIND_PCI, 1, false);
    g_assert_cmpuint(vfio_container__mapped_pages(dev->group->container), ==, RAM_SIZE / PAGE);
    fill(&r, ZAP_GPA, ZAP_PAGES, 0xa0000000);
    balloon_cycle(&r);
    g_assert_cmpuint(r.m->balloon->discarded_pages, ==, 0);
    g_assert_cmpuint(r.m->balloon->skipped_discards, ==, ZAP_PAGES);
    g_assert_true(soft_iommu__audit(rig_iommu(&r, dev), &audit, &err));
    g_assert_cmpuint(audit.stale, ==, 0);
    g_assert_cmphex(dma_word(rig_iommu(&r, dev), ZAP_GPA), ==, 0xb0000000);
    /* The report names who inhibits. */
    g_assert_cmpuint(r.m->discard.inhibitors->len, ==, 1);
    who = g_ptr_array_index(r.m->discard.inhibitors, 0);
    g_assert_cmpstr(who->code, ==, "vfio-group");
    g_assert_cmpint(who->group, ==, 1);
    g_assert_cmpstr(g_ptr_array_index(who->devices, 0), ==, "hostdev0");
    rig_destroy(&r);
}

/* seed 002 patch 4/4: an mdev whose vendor driver pins only its working
 * set may opt in; the balloon discards outside that set safely. */
static void
test_optin_working_set(void)
{
    rig r;
    vfio_device *dev;
    soft_audit audit;
    guint64 before;
    g_autoptr(GError) err = NULL;

    rig_init(&r, false);
    dev = rig_device(&r, "ua-vgpu0", VFIO_KIND_MDEV_PCI, 30, true);
    g_assert_cmpuint(r.m->discard.uncoordinated_discard_disabled, ==, 0);
    g_assert_cmpuint(vfio_container__mapped_pages(dev->group->container), ==, 0);
    /* The vendor driver pins 4 MiB it uses (vfio_pin_pages). */
    g_assert_cmpint(vfio_backend_soft.dma_map(dev->group->container, RAM_BASE, 4 * MiB,
                                              r.ram->ram, false, &err), ==, 0);
    fill(&r, ZAP_GPA, ZAP_PAGES, 0xa0000000);
    before = rss_anon_kib();
    for (guint64 p = 0; p < ZAP_PAGES; p++)
        g_assert_true(virtio_balloon__inflate(r.m, ZAP_GPA + p * PAGE, &err));
    g_assert_cmpuint(r.m->balloon->discarded_pages, ==, ZAP_PAGES);
    g_assert_cmpuint(rss_anon_kib() + ZAP_PAGES * 4 / 2, <=, before);
    g_assert_true(soft_iommu__audit(rig_iommu(&r, dev), &audit, &err));
    g_assert_cmpuint(audit.pages, ==, 4 * MiB / PAGE);
    g_assert_cmpuint(audit.stale, ==, 0);
    g_assert_cmpint(vfio_backend_soft.dma_unmap(dev->group->container, RAM_BASE, 4 * MiB, &err), ==, 0);
    rig_destroy(&r);
}

/* virtio-mem: coordinated discard through the RamDiscardManager works
 * with VFIO, and memory really goes back to the host. */
static void
test_virtio_mem_with_vfio(void)
{
    rig r;
    vfio_device *dev;
    memory_region *vmem = memory_region__new_ram("virtiomem0", 64 * MiB, 0, NULL);
    ram_discard_manager *rdm = ram_discard_manager__new(vmem, 2 * MiB);
    soft_audit audit;
    guint64 rss0, rss1, rss2, rss3;
    g_autoptr(GError) err = NULL;

    rig_init(&r, false);
    g_assert_cmpint(discard_manager__coordinated_require(&r.m->discard, true), ==, 0);
    memory_region__add_subregion(r.root, 4096 * MiB, vmem, 0);
    dev = rig_device(&r, "hostdev0", VFIO_KIND_PCI, 1, false);
    rss0 = rss_anon_kib();
    g_assert_true(ram_discard_manager__plug(rdm, 0, 32 * MiB, &err));
    rss1 = rss_anon_kib();
    g_assert_true(ram_discard_manager__unplug(rdm, 16 * MiB, 16 * MiB, &err));
    rss2 = rss_anon_kib();
    g_assert_true(ram_discard_manager__plug(rdm, 32 * MiB, 16 * MiB, &err));
    rss3 = rss_anon_kib();
    g_assert_no_error(err);
    g_test_message("RSS KiB: %" G_GUINT64_FORMAT " -> plug 32M %" G_GUINT64_FORMAT
                   " -> unplug 16M %" G_GUINT64_FORMAT " -> plug 16M %" G_GUINT64_FORMAT,
                   rss0, rss1, rss2, rss3);
    /* Pinning populates, unplugging unpins and discards. */
    g_assert_cmpuint(rss1, >=, rss0 + 30 * 1024);
    g_assert_cmpuint(rss2 + 14 * 1024, <=, rss1);
    g_assert_cmpuint(rss3, >=, rss2 + 14 * 1024);
    g_assert_cmpuint(ram_discard_manager__plugged_bytes(rdm), ==, 32 * MiB);
    g_assert_true(soft_iommu__audit(rig_iommu(&r, dev), &audit, &err));
    g_assert_cmpuint(audit.stale, ==, 0);
    g_assert_cmpuint(audit.pages, ==, (RAM_SIZE + 32 * MiB) / PAGE);
    vmm_machine__free(r.m);
    r.m = NULL;
    memory_region__del_subregion(r.root, vmem);
    ram_discard_manager__free(rdm);
    memory_region__free(vmem);
    address_space__free(r.as);
    memory_region__del_subregion(r.root, r.ram);
    memory_region__free(r.ram);
    memory_region__free(r.root);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, 0);
}

/* Pinning fails (RLIMIT_MEMLOCK, ENOMEM): a clear error, nothing pinned,
 * the discard counters back where they were. */
static void
test_pin_failure(void)
{
    rig r;
    vfio_device_config cfg = { .alias = "hostdev0", .host = "0000:01:00.0",
                               .kind = VFIO_KIND_PCI, .group = 1 };
    g_autoptr(GError) err = NULL;

    rig_init(&r, false);
    vfio_soft__fail_next_map(ENOMEM);
    g_assert_null(vfio_device__realize(r.m, &cfg, &err));
    g_assert_nonnull(err);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, g_strerror(ENOMEM)));
    g_assert_cmpuint(r.m->discard.uncoordinated_discard_disabled, ==, 0);
    g_assert_cmpuint(r.m->discard.inhibitors->len, ==, 0);
    g_assert_cmpuint(r.m->groups->len, ==, 0);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, 0);
    rig_destroy(&r);
}

/* Free page reporting follows the same rule as inflation. */
static void
test_free_page_reporting(void)
{
    rig r;
    g_autoptr(GError) err = NULL;

    rig_init(&r, false);
    fill(&r, ZAP_GPA, 4, 1);
    g_assert_true(virtio_balloon__report_free(r.m, ZAP_GPA, &err));
    g_assert_cmpuint(r.m->balloon->reported_pages, ==, 1);
    g_assert_cmphex(*page_word(&r, ZAP_GPA), ==, 0);        /* discarded */
    rig_device(&r, "hostdev0", VFIO_KIND_PCI, 1, false);
    g_assert_true(virtio_balloon__report_free(r.m, ZAP_GPA + PAGE, &err));
    g_assert_cmpuint(r.m->balloon->skipped_reports, ==, 1);
    g_assert_cmphex(*page_word(&r, ZAP_GPA + PAGE), ==, 2); /* kept */
    rig_destroy(&r);
}

/* Shared memory is discarded with fallocate(PUNCH_HOLE): the memfd really
 * gives its blocks back. */
static void
test_shared_memory_discard(void)
{
    g_autoptr(GError) err = NULL;
    memory_region *mr = memory_region__new_ram_shared("shared", 8 * MiB, &err);
    struct stat before, after;

    g_assert_no_error(err);
    memset(mr->ram, 0x11, 8 * MiB);
    g_assert_cmpint(fstat(mr->fd, &before), ==, 0);
    g_assert_true(memory_region__discard(mr, 2 * MiB, 4 * MiB, &err));
    g_assert_cmpint(fstat(mr->fd, &after), ==, 0);
    g_assert_cmpint((before.st_blocks - after.st_blocks) * 512, ==, 4 * MiB);
    g_assert_cmphex(((guint8 *)mr->ram)[2 * MiB], ==, 0);
    g_assert_cmphex(((guint8 *)mr->ram)[6 * MiB], ==, 0x11);
    memory_region__free(mr);
}

/* Behind a vIOMMU nothing is mapped up front; VFIO follows the guest's
 * vIOMMU mappings, and DMA sees exactly what they point at. */
static void
test_viommu_notifications(void)
{
    rig r;
    viommu_config io = { .model = VIOMMU_INTEL, .alias = "iommu0", .intremap = VMM_ON,
                         .caching_mode = VMM_ON };
    vfio_device *dev;
    g_autoptr(GError) err = NULL;

    rig_init(&r, false);
    r.m->cfg.split_irqchip = true;
    r.m->iommu = viommu__realize(r.m, &io);
    g_assert_cmpuint(r.m->findings.errors->len, ==, 0);
    dev = rig_device(&r, "ua-vf0", VFIO_KIND_PCI, 20, false);
    g_assert_true(dev->group->container->space->viommu);
    g_assert_cmpuint(vfio_container__mapped_pages(dev->group->container), ==, 0);
    fill(&r, ZAP_GPA, 256, 0xc0000000);
    g_assert_true(vfio_viommu__map(r.m, "ua-vf0", 0x40000000, ZAP_GPA, MiB, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(vfio_container__mapped_pages(dev->group->container), ==, 256);
    g_assert_cmphex(dma_word(rig_iommu(&r, dev), 0x40000000 + 5 * PAGE), ==, 0xc0000005);
    /* A mapping onto something that is not RAM is refused. */
    g_assert_false(vfio_viommu__map(r.m, "ua-vf0", 0x50000000, 0xfee00000, PAGE, &err));
    g_assert_nonnull(strstr(err->message, "not guest RAM"));
    g_clear_error(&err);
    g_assert_true(vfio_viommu__unmap(r.m, "ua-vf0", 0x40000000, MiB, &err));
    g_assert_cmpuint(vfio_container__mapped_pages(dev->group->container), ==, 0);
    rig_destroy(&r);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vfio-balloon/seed000-inhibitor-bypassed-sees-stale", test_inhibitor_bypassed);
    g_test_add_func("/vfio-balloon/seed000-with-inhibitor", test_with_inhibitor);
    g_test_add_func("/vfio-balloon/seed002-optin-working-set", test_optin_working_set);
    g_test_add_func("/vfio-balloon/virtio-mem-with-vfio", test_virtio_mem_with_vfio);
    g_test_add_func("/vfio-balloon/pin-failure", test_pin_failure);
    g_test_add_func("/vfio-balloon/free-page-reporting", test_free_page_reporting);
    g_test_add_func("/vfio-balloon/shared-memory-discard", test_shared_memory_discard);
    g_test_add_func("/vfio-balloon/viommu-notifications", test_viommu_notifications);
    return g_test_run();
}

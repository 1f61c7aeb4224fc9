/*
 * test-host-profile.c: the host profile against the fake sysfs trees in
 * tests/sysfs (built by tests/sysfs/mkfixtures.sh), profile files, and
 * the real /dev/kvm.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "dmg_file.h"
#include "host_profile.h"

#define MDEV1 "4b20d080-1b54-4048-85b3-a6a62d165c01"
#define MDEV2 "c0ffee00-0000-4000-8000-000000000002"

/* Profile files are written here; removed at the end of main(). */
static char *tmpdir;


static char *
fixture(const char *tree)
{
    return g_test_build_filename(G_TEST_DIST, "sysfs", tree, NULL);
}


static dmgHostProfile *
profile_for(const char *tree)
{
    g_autofree char *root = fixture(tree);
    dmgHostProfile *profile = dmg_host_profile_new(root);

    dmg_host_profile_read_sysfs(profile);
    return profile;
}


static char *
write_profile(const char *name, const char *contents)
{
    char *path = g_build_filename(tmpdir, name, NULL);
    g_autoptr(GError) err = NULL;

    g_file_set_contents(path, contents, -1, &err);
    g_assert_no_error(err);
    return path;
}


static void
assert_group_devices(const dmgHostDevice *dev, const char *const *expect)
{
    guint n = g_strv_length((char **) expect);
    guint i;

    g_assert_nonnull(dev->group_devices);
    g_assert_cmpuint(dev->group_devices->len, ==, n);
    for (i = 0; i < n; i++)
        g_assert_cmpstr(g_ptr_array_index(dev->group_devices, i), ==, expect[i]);
}


static void
assert_caps(const dmgHostProfile *profile, const char *driver,
            bool migration, bool dirty_tracking, bool p2p)
{
    const dmgDriverCaps *caps = dmg_host_profile_driver_caps(profile, driver);

    g_assert_nonnull(caps);
    g_assert_cmpstr(caps->driver, ==, driver);
    g_assert_cmpint(caps->migration, ==, migration);
    g_assert_cmpint(caps->dirty_tracking, ==, dirty_tracking);
    g_assert_cmpint(caps->p2p, ==, p2p);
}


static void
test_defaults(void)
{
    g_autoptr(dmgHostProfile) profile = dmg_host_profile_new(NULL);

    g_assert_cmpstr(profile->sysfs_root, ==, "/sys");
    g_assert_cmpuint(profile->dma_entry_limit, ==, DMG_DMA_ENTRY_LIMIT_DEFAULT);
    g_assert_false(profile->iommu_dirty_tracking);
    g_assert_cmpint(profile->iommu_dirty_tracking_source, ==, DMG_HOST_FACT_DEFAULT);
    g_assert_cmpint(profile->kvm_sync_mmu, ==, -1);
    g_assert_cmpuint(profile->kvm_nr_memslots, ==, 0);
    g_assert_cmpuint(g_hash_table_size(profile->devices), ==, 0);

    g_assert_cmpstr(dmgHostFactSourceTypeToString(DMG_HOST_FACT_DEFAULT), ==, "default");
    g_assert_cmpstr(dmgHostFactSourceTypeToString(DMG_HOST_FACT_SYSFS), ==, "sysfs");
    g_assert_cmpstr(dmgHostFactSourceTypeToString(DMG_HOST_FACT_PROFILE), ==, "profile");
}


/* Walk @dir without following links; every link must land inside @root.
 * A wrong ../ count would silently make a device look absent. */
static void
check_links(const char *root, const char *dir, guint *nlinks)
{
    g_autoptr(GDir) d = NULL;
    g_autoptr(GError) err = NULL;
    const char *name;

    d = g_dir_open(dir, 0, &err);
    g_assert_no_error(err);

    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);

        if (g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
            g_autofree char *target = g_file_read_link(path, NULL);
            char *real = realpath(path, NULL);

            g_assert_nonnull(target);
            if (!real)
                g_error("%s -> %s: %s", path, target, g_strerror(errno));
            g_assert_false(g_path_is_absolute(target));
            g_assert_true(g_str_has_prefix(real, root));
            g_assert_cmpint(real[strlen(root)], ==, '/');
            free(real);
            (*nlinks)++;
        } else if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
            check_links(root, path, nlinks);
        }
    }
}


static void
test_fixture_links(void)
{
    const char *trees[] = { "host1", "smalllimit", "intel-dirty", "intel-mixed",
                            "amd-dirty", "amd-dirty-efr-only", "amd-nodirty" };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(trees); i++) {
        g_autofree char *dir = fixture(trees[i]);
        char *root = realpath(dir, NULL);
        guint nlinks = 0;

        g_assert_nonnull(root);
        check_links(root, root, &nlinks);
        g_assert_cmpuint(nlinks, >, 0);
        free(root);
    }
}


static void
test_pci_shared_group(void)
{
    g_autoptr(dmgHostProfile) profile = profile_for("host1");
    const char *const members[] = { "0000:01:00.0", "0000:01:00.1", NULL };
    const dmgHostDevice *gpu = dmg_host_profile_pci(profile, 0, 1, 0, 0);
    const dmgHostDevice *audio = dmg_host_profile_pci(profile, 0, 1, 0, 1);

    g_assert_cmpstr(gpu->name, ==, "0000:01:00.0");
    g_assert_true(gpu->present);
    g_assert_cmpint(gpu->iommu_group, ==, 1);
    g_assert_cmpstr(gpu->driver, ==, "vfio-pci");
    assert_group_devices(gpu, members);

    g_assert_cmpstr(audio->name, ==, "0000:01:00.1");
    g_assert_true(audio->present);
    g_assert_cmpint(audio->iommu_group, ==, 1);
    g_assert_cmpstr(audio->driver, ==, "vfio-pci");
    assert_group_devices(audio, members);
}


static void
test_pci_variant_drivers(void)
{
    g_autoptr(dmgHostProfile) profile = profile_for("host1");
    const char *const vf1[] = { "0000:3b:00.1", NULL };
    const char *const vf2[] = { "0000:3b:00.2", NULL };
    const char *const acc[] = { "0000:3c:00.1", NULL };
    const dmgHostDevice *dev;

    dev = dmg_host_profile_pci(profile, 0, 0x3b, 0, 1);
    g_assert_true(dev->present);
    g_assert_cmpint(dev->iommu_group, ==, 20);
    g_assert_cmpstr(dev->driver, ==, "mlx5_vfio_pci");
    assert_group_devices(dev, vf1);

    dev = dmg_host_profile_pci(profile, 0, 0x3b, 0, 2);
    g_assert_true(dev->present);
    g_assert_cmpint(dev->iommu_group, ==, 21);
    g_assert_cmpstr(dev->driver, ==, "mlx5_vfio_pci");
    assert_group_devices(dev, vf2);

    dev = dmg_host_profile_pci(profile, 0, 0x3c, 0, 1);
    g_assert_cmpstr(dev->name, ==, "0000:3c:00.1");
    g_assert_true(dev->present);
    g_assert_cmpint(dev->iommu_group, ==, 22);
    g_assert_cmpstr(dev->driver, ==, "hisi_acc_vfio_pci");
    assert_group_devices(dev, acc);
}


/* The mdev parent stays on its host driver, which has no caps entry. */
static void
test_pci_host_driver(void)
{
    g_autoptr(dmgHostProfile) profile = profile_for("host1");
    const dmgHostDevice *igpu = dmg_host_profile_pci(profile, 0, 0, 2, 0);
    const char *const members[] = { "0000:00:02.0", NULL };

    g_assert_true(igpu->present);
    g_assert_cmpint(igpu->iommu_group, ==, 2);
    g_assert_cmpstr(igpu->driver, ==, "i915");
    assert_group_devices(igpu, members);
    g_assert_null(dmg_host_profile_driver_caps(profile, igpu->driver));
}


static void
test_pci_missing(void)
{
    g_autoptr(dmgHostProfile) profile = profile_for("host1");
    const dmgHostDevice *dev = dmg_host_profile_pci(profile, 0, 0xaf, 0, 0);

    g_assert_cmpstr(dev->name, ==, "0000:af:00.0");
    g_assert_false(dev->present);
    g_assert_cmpint(dev->iommu_group, ==, -1);
    g_assert_null(dev->driver);
    g_assert_nonnull(dev->group_devices);
    g_assert_cmpuint(dev->group_devices->len, ==, 0);

    /* Another PCI domain is a different device, not 0000:01:00.0. */
    dev = dmg_host_profile_pci(profile, 1, 1, 0, 0);
    g_assert_cmpstr(dev->name, ==, "0001:01:00.0");
    g_assert_false(dev->present);
}


static void
test_mdev(void)
{
    g_autoptr(dmgHostProfile) profile = profile_for("host1");
    const char *const members1[] = { MDEV1, NULL };
    const char *const members2[] = { MDEV2, NULL };
    const dmgHostDevice *dev;

    dev = dmg_host_profile_mdev(profile, MDEV1);
    g_assert_cmpstr(dev->name, ==, MDEV1);
    g_assert_true(dev->present);
    g_assert_cmpint(dev->iommu_group, ==, 30);
    g_assert_cmpstr(dev->driver, ==, "vfio_mdev");
    assert_group_devices(dev, members1);

    dev = dmg_host_profile_mdev(profile, MDEV2);
    g_assert_true(dev->present);
    g_assert_cmpint(dev->iommu_group, ==, 31);
    g_assert_cmpstr(dev->driver, ==, "vfio_mdev");
    assert_group_devices(dev, members2);

    /* libvirt accepts upper-case UUIDs; sysfs names are lower case. */
    g_assert_true(dmg_host_profile_mdev(profile,
                                        "4B20D080-1B54-4048-85B3-A6A62D165C01") ==
                  dmg_host_profile_mdev(profile, MDEV1));
}


static void
test_mdev_missing(void)
{
    g_autoptr(dmgHostProfile) profile = profile_for("host1");
    const char *names[] = {
        "00000000-0000-4000-8000-000000000000",   /* valid, not on host */
        "../../../devices/pci0000:00/0000:00:02.0/" MDEV1,
        "not-a-uuid",
        "",
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(names); i++) {
        const dmgHostDevice *dev = dmg_host_profile_mdev(profile, names[i]);

        g_assert_false(dev->present);
        g_assert_cmpint(dev->iommu_group, ==, -1);
        g_assert_null(dev->driver);
        g_assert_cmpuint(dev->group_devices->len, ==, 0);
    }
}


static void
test_cache(void)
{
    g_autoptr(dmgHostProfile) profile = profile_for("host1");
    const dmgHostDevice *first = dmg_host_profile_pci(profile, 0, 1, 0, 0);
    const dmgHostDevice *missing = dmg_host_profile_pci(profile, 0, 0xaf, 0, 0);
    int i;

    for (i = 0; i < 1000; i++) {
        g_assert_true(dmg_host_profile_pci(profile, 0, 1, 0, 0) == first);
        g_assert_true(dmg_host_profile_pci(profile, 0, 0xaf, 0, 0) == missing);
    }
    g_assert_true(dmg_host_profile_mdev(profile, MDEV1) ==
                  dmg_host_profile_mdev(profile, MDEV1));
    g_assert_cmpuint(g_hash_table_size(profile->devices), ==, 3);
    g_assert_true(g_hash_table_lookup(profile->devices, "0000:01:00.0") == first);
}


/* Issue 14: an unreadable or garbled dma_entry_limit is a warning that
 * names the file, never quotes it, and keeps the default; a FIFO there
 * cannot block the read. */
static void
test_dma_entry_limit_bad(void)
{
    g_autofree char *root = g_build_filename(tmpdir, "dmalimit", NULL);
    g_autofree char *dir = g_build_filename(root, "module", "vfio_iommu_type1", "parameters", NULL);
    g_autofree char *file = g_build_filename(dir, "dma_entry_limit", NULL);
    g_autofree char *pattern = NULL;

    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    g_assert_true(g_file_set_contents(file, "SECRET-TOKEN-123\n", -1, NULL));
    pattern = g_strdup_printf("%s does not hold a decimal number of DMA mappings;*", file);
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, pattern);
    {
        g_autoptr(dmgHostProfile) p = dmg_host_profile_new(root);

        dmg_host_profile_read_sysfs(p);
        g_test_assert_expected_messages();
        g_assert_cmpuint(p->dma_entry_limit, ==, DMG_DMA_ENTRY_LIMIT_DEFAULT);
    }
    g_assert_cmpint(unlink(file), ==, 0);
    g_assert_cmpint(mkfifo(file, 0600), ==, 0);
    g_free(pattern);
    pattern = g_strdup_printf("%s is not a regular file*", file);
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, pattern);
    {
        g_autoptr(dmgHostProfile) p = dmg_host_profile_new(root);

        dmg_host_profile_read_sysfs(p);
        g_test_assert_expected_messages();
        g_assert_cmpuint(p->dma_entry_limit, ==, DMG_DMA_ENTRY_LIMIT_DEFAULT);
    }
    unlink(file);
}

/* virHostMemGetTHPSize(): the host's THP size, which libvirt validates a
 * virtio-mem block against (512 MiB on a 64 KiB-page arm64 host). */
static void
test_thp_size(void)
{
    g_autofree char *root = g_build_filename(tmpdir, "thp", NULL);
    g_autofree char *dir = g_build_filename(root, "kernel", "mm", "transparent_hugepage", NULL);
    g_autofree char *file = g_build_filename(dir, "hpage_pmd_size", NULL);
    g_autoptr(dmgHostProfile) none = profile_for("host1");
    g_autoptr(dmgHostProfile) big = NULL;

    g_assert_cmpuint(none->thp_size, ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    g_assert_true(g_file_set_contents(file, "536870912\n", -1, NULL));
    big = dmg_host_profile_new(root);
    dmg_host_profile_read_sysfs(big);
    g_assert_cmpuint(big->thp_size, ==, 536870912);
}

static void
test_dma_entry_limit(void)
{
    g_autoptr(dmgHostProfile) host1 = profile_for("host1");
    g_autoptr(dmgHostProfile) small = profile_for("smalllimit");
    g_autoptr(dmgHostProfile) none = profile_for("no-such-tree");

    g_assert_cmpuint(host1->dma_entry_limit, ==, 65535);
    g_assert_cmpuint(small->dma_entry_limit, ==, 1000);
    g_assert_cmpuint(none->dma_entry_limit, ==, DMG_DMA_ENTRY_LIMIT_DEFAULT);

    /* smalllimit holds the GPU pair and nothing else. */
    g_assert_true(dmg_host_profile_pci(small, 0, 1, 0, 0)->present);
    g_assert_true(dmg_host_profile_pci(small, 0, 1, 0, 1)->present);
    g_assert_cmpint(dmg_host_profile_pci(small, 0, 1, 0, 1)->iommu_group, ==, 1);
    g_assert_false(dmg_host_profile_pci(small, 0, 0x3b, 0, 1)->present);
    g_assert_false(dmg_host_profile_mdev(small, MDEV1)->present);
}


static void
test_driver_caps(void)
{
    g_autoptr(dmgHostProfile) profile = dmg_host_profile_new(NULL);

    assert_caps(profile, "mlx5_vfio_pci", true, true, true);
    assert_caps(profile, "pds_vfio_pci", true, true, true);
    assert_caps(profile, "hisi_acc_vfio_pci", true, false, true);
    assert_caps(profile, "qat_vfio_pci", true, false, true);
    assert_caps(profile, "vfio-pci", false, false, false);
    assert_caps(profile, "mdev", false, false, false);
    g_assert_null(dmg_host_profile_driver_caps(profile, "vfio_pci"));
    g_assert_null(dmg_host_profile_driver_caps(profile, "nvgrace_gpu_vfio_pci"));
    g_assert_null(dmg_host_profile_driver_caps(profile, NULL));
}


static void
test_file_valid(void)
{
    g_autoptr(dmgHostProfile) profile = profile_for("host1");
    g_autoptr(GError) err = NULL;
    g_autofree char *path = NULL;
    const dmgDriverCaps *hisi = dmg_host_profile_driver_caps(profile,
                                                             "hisi_acc_vfio_pci");

    path = write_profile("valid.conf",
                         "# a host with IOMMU dirty tracking\n"
                         "[host]\n"
                         "iommu-dirty-tracking = true\n"
                         "dma-entry-limit=200000\n"
                         "kvm-sync-mmu=false\n"
                         "kvm-nr-memslots=509\n"
                         "\n"
                         "[driver hisi_acc_vfio_pci]\n"
                         "dirty-tracking=true\n"
                         "\n"
                         "[driver vfio-pci]\n"
                         "p2p=true\n"
                         "\n"
                         "[driver nvgrace_gpu_vfio_pci]\n"
                         "migration=true\n");

    g_assert_true(dmg_host_profile_load_file(profile, path, &err));
    g_assert_no_error(err);

    g_assert_true(profile->iommu_dirty_tracking);
    g_assert_cmpint(profile->iommu_dirty_tracking_source, ==, DMG_HOST_FACT_PROFILE);
    g_assert_cmpuint(profile->dma_entry_limit, ==, 200000);
    g_assert_cmpint(profile->kvm_sync_mmu, ==, 0);
    g_assert_cmpuint(profile->kvm_nr_memslots, ==, 509);

    /* Keys the file does not set keep the table's values. */
    assert_caps(profile, "hisi_acc_vfio_pci", true, true, true);
    assert_caps(profile, "vfio-pci", false, false, true);
    assert_caps(profile, "nvgrace_gpu_vfio_pci", true, false, false);
    assert_caps(profile, "mlx5_vfio_pci", true, true, true);
    /* Updated in place: earlier lookups see the override. */
    g_assert_true(hisi == dmg_host_profile_driver_caps(profile,
                                                       "hisi_acc_vfio_pci"));
    g_assert_true(hisi->dirty_tracking);
}


/* Only the keys a file names change; an empty file changes nothing. */
static void
test_file_partial(void)
{
    g_autoptr(dmgHostProfile) profile = profile_for("smalllimit");
    g_autoptr(GError) err = NULL;
    g_autofree char *empty = write_profile("empty.conf", "");
    g_autofree char *one = write_profile("one.conf", "[host]\nkvm-sync-mmu=true\n");

    g_assert_true(dmg_host_profile_load_file(profile, empty, &err));
    g_assert_no_error(err);
    g_assert_true(dmg_host_profile_load_file(profile, one, &err));
    g_assert_no_error(err);

    g_assert_cmpint(profile->kvm_sync_mmu, ==, 1);
    g_assert_cmpuint(profile->dma_entry_limit, ==, 1000);
    g_assert_false(profile->iommu_dirty_tracking);
    g_assert_cmpint(profile->iommu_dirty_tracking_source, ==, DMG_HOST_FACT_DEFAULT);
    g_assert_cmpuint(profile->kvm_nr_memslots, ==, 0);
}


/* Load @contents, expect failure with a message naming every @needle,
 * and check that nothing in the profile changed. */
static void
check_bad_file(const char *name, const char *contents, GQuark domain,
               int code, const char *const *needles)
{
    g_autoptr(dmgHostProfile) profile = profile_for("host1");
    g_autoptr(GError) err = NULL;
    g_autofree char *path = write_profile(name, contents);
    size_t i;

    g_assert_false(dmg_host_profile_load_file(profile, path, &err));
    g_assert_error(err, domain, code);
    g_test_message("%s", err->message);
    g_assert_true(g_str_has_prefix(err->message, path));
    for (i = 0; needles[i]; i++) {
        if (!strstr(err->message, needles[i]))
            g_error("'%s' not in '%s'", needles[i], err->message);
    }

    g_assert_cmpuint(profile->dma_entry_limit, ==, 65535);
    g_assert_false(profile->iommu_dirty_tracking);
    g_assert_cmpint(profile->iommu_dirty_tracking_source, ==, DMG_HOST_FACT_DEFAULT);
    g_assert_cmpint(profile->kvm_sync_mmu, ==, -1);
    assert_caps(profile, "mlx5_vfio_pci", true, true, true);
    g_assert_null(dmg_host_profile_driver_caps(profile, "new_vfio_pci"));
}


static void
test_file_bad_bool(void)
{
    g_autoptr(dmgHostProfile) profile = dmg_host_profile_new(NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *path = NULL;
    g_autofree char *expect = NULL;
    const char *const driver[] = { "[driver mlx5_vfio_pci]", "dirty-tracking",
                                   "true or false", NULL };
    const char *const host[] = { "[host]", "iommu-dirty-tracking", NULL };

    /* The example from the documentation, word for word. */
    path = write_profile("bool.conf",
                         "[driver mlx5_vfio_pci]\ndirty-tracking=maybe\n");
    g_assert_false(dmg_host_profile_load_file(profile, path, &err));
    expect = g_strdup_printf("%s: [driver mlx5_vfio_pci] dirty-tracking "
                             "is not a boolean; use true or false", path);
    g_assert_cmpstr(err->message, ==, expect);
    /* The file's contents never reach a message (issue 14). */
    g_assert_null(strstr(err->message, "maybe"));

    /* Earlier valid settings must not be applied either. */
    check_bad_file("bool2.conf",
                   "[host]\ndma-entry-limit=5\n"
                   "[driver new_vfio_pci]\nmigration=true\n"
                   "[driver mlx5_vfio_pci]\nmigration=false\ndirty-tracking=maybe\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, driver);
    check_bad_file("bool3.conf", "[host]\niommu-dirty-tracking=1\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, host);
}


static void
test_file_bad_number(void)
{
    const char *const words[] = { "dma-entry-limit", "decimal number", NULL };
    const char *const negative[] = { "dma-entry-limit", "decimal number", NULL };
    const char *const huge[] = { "kvm-nr-memslots", "4294967295", NULL };
    const char *const sync[] = { "kvm-sync-mmu", "true or false", NULL };

    check_bad_file("num1.conf", "[host]\ndma-entry-limit=lots\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, words);
    check_bad_file("num2.conf", "[host]\ndma-entry-limit=-1\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, negative);
    check_bad_file("num3.conf", "[host]\nkvm-nr-memslots=4294967296\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, huge);
    check_bad_file("num4.conf", "[host]\nkvm-sync-mmu=yes\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE, sync);
}


static void
test_file_unknown_key(void)
{
    const char *const host[] = { "[host]", "'dma-entry-limt'", NULL };
    const char *const driver[] = { "[driver mlx5_vfio_pci]", "'dirty_tracking'",
                                   NULL };

    check_bad_file("key1.conf", "[host]\ndma-entry-limt=10\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, host);
    check_bad_file("key2.conf",
                   "[driver mlx5_vfio_pci]\ndirty_tracking=false\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, driver);
}


static void
test_file_unknown_group(void)
{
    const char *const hots[] = { "[hots]", NULL };
    const char *const bare[] = { "[driver]", NULL };
    const char *const empty[] = { "[driver ]", NULL };
    const char *const spaces[] = { "[driver  mlx5_vfio_pci]", NULL };

    check_bad_file("group1.conf", "[hots]\ndma-entry-limit=10\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, hots);
    check_bad_file("group2.conf", "[driver]\nmigration=true\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, bare);
    check_bad_file("group3.conf", "[driver ]\nmigration=true\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, empty);
    check_bad_file("group4.conf", "[driver  mlx5_vfio_pci]\nmigration=false\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, spaces);
}


static void
test_file_unreadable(void)
{
    const char *const none[] = { NULL };
    g_autoptr(dmgHostProfile) profile = dmg_host_profile_new(NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *path = g_build_filename(tmpdir, "absent.conf", NULL);

    check_bad_file("syntax.conf", "dma-entry-limit=10\n",
                   G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND, none);

    g_assert_false(dmg_host_profile_load_file(profile, path, &err));
    g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_assert_true(g_str_has_prefix(err->message, path));
}


/* Issue 14: a FIFO would block the reader forever, /dev/zero would grow
 * it without end, a huge file would be read whole.  The one reader
 * (dmg_file.c) refuses all three before reading, and says which file
 * and which limit, not what the file holds. */
static void
test_file_not_regular(void)
{
    g_autoptr(dmgHostProfile) profile = dmg_host_profile_new(NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *fifo = g_build_filename(tmpdir, "fifo.conf", NULL);
    g_autofree char *big = g_build_filename(tmpdir, "big.conf", NULL);
    g_autofree char *text = NULL;

    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_false(dmg_host_profile_load_file(profile, fifo, &err));
    g_assert_nonnull(strstr(err->message, "not a regular file"));
    g_clear_error(&err);
    g_assert_false(dmg_host_profile_load_file(profile, "/dev/zero", &err));
    g_assert_nonnull(strstr(err->message, "not a regular file"));
    g_clear_error(&err);
    /* One byte over the limit, the rest a valid comment. */
    text = g_malloc(DMG_FILE_MAX_PROFILE + 2);
    memset(text, '#', DMG_FILE_MAX_PROFILE + 1);
    text[DMG_FILE_MAX_PROFILE + 1] = '\0';
    g_assert_true(g_file_set_contents(big, text, -1, NULL));
    g_assert_false(dmg_host_profile_load_file(profile, big, &err));
    g_assert_nonnull(strstr(err->message, "larger than 1 MiB"));
    g_assert_null(strstr(err->message, "###"));
    unlink(fifo);
    unlink(big);
}


/* ---- IOMMU dirty tracking ---------------------------------------------- */

/* The register bits host_profile.c reads: VT-d ECAP SMTS (43), SLADS
 * (45) and SMPWC (48); AMD EFR HDSup (52). */
#define ECAP_SMTS   (G_GUINT64_CONSTANT(1) << 43)
#define ECAP_SLADS  (G_GUINT64_CONSTANT(1) << 45)
#define ECAP_SMPWC  (G_GUINT64_CONSTANT(1) << 48)
#define ECAP_DIRTY  (ECAP_SMTS | ECAP_SLADS | ECAP_SMPWC | 0xf050da)
#define EFR_HDSUP   (G_GUINT64_CONSTANT(1) << 52)

static void
assert_iommu_dirty(const dmgHostProfile *profile, bool dirty,
                   dmgHostFactSource source)
{
    g_assert_cmpint(profile->iommu_dirty_tracking, ==, dirty);
    g_assert_cmpstr(dmgHostFactSourceTypeToString(profile->iommu_dirty_tracking_source),
                    ==, dmgHostFactSourceTypeToString(source));
}


/* Every committed tree: all units must have the bit. */
static void
test_iommu_dirty_fixtures(void)
{
    static const struct {
        const char *tree;
        bool dirty;
        dmgHostFactSource source;
    } cases[] = {
        { "intel-dirty",        true,  DMG_HOST_FACT_SYSFS },
        { "intel-mixed",        false, DMG_HOST_FACT_SYSFS },
        { "amd-dirty",          true,  DMG_HOST_FACT_SYSFS },
        { "amd-dirty-efr-only", true,  DMG_HOST_FACT_SYSFS },
        { "amd-nodirty",        false, DMG_HOST_FACT_SYSFS },
        /* No class/iommu: nothing known, the default stays. */
        { "host1",              false, DMG_HOST_FACT_DEFAULT },
        { "smalllimit",         false, DMG_HOST_FACT_DEFAULT },
        { "no-such-tree",       false, DMG_HOST_FACT_DEFAULT },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(dmgHostProfile) profile = profile_for(cases[i].tree);

        g_test_message("%s", cases[i].tree);
        assert_iommu_dirty(profile, cases[i].dirty, cases[i].source);
    }
}


/* The key file wins over sysfs in either direction, whether it is loaded
 * after sysfs is read (as the tools do) or before. */
static void
test_iommu_dirty_override(void)
{
    g_autofree char *off = write_profile("dirty-off.conf",
                                         "[host]\niommu-dirty-tracking=false\n");
    g_autofree char *on = write_profile("dirty-on.conf",
                                        "[host]\niommu-dirty-tracking=true\n");
    g_autofree char *other = write_profile("dirty-none.conf",
                                           "[host]\ndma-entry-limit=100\n");
    g_autoptr(dmgHostProfile) dirty = profile_for("intel-dirty");
    g_autoptr(dmgHostProfile) mixed = profile_for("intel-mixed");
    g_autoptr(dmgHostProfile) none = profile_for("host1");
    g_autoptr(dmgHostProfile) kept = profile_for("amd-dirty");
    g_autofree char *root = fixture("intel-dirty");
    g_autoptr(dmgHostProfile) before = dmg_host_profile_new(root);
    g_autoptr(GError) err = NULL;

    g_assert_true(dmg_host_profile_load_file(dirty, off, &err));
    assert_iommu_dirty(dirty, false, DMG_HOST_FACT_PROFILE);
    g_assert_true(dmg_host_profile_load_file(mixed, on, &err));
    assert_iommu_dirty(mixed, true, DMG_HOST_FACT_PROFILE);
    g_assert_true(dmg_host_profile_load_file(none, on, &err));
    assert_iommu_dirty(none, true, DMG_HOST_FACT_PROFILE);
    /* A file that does not name the key leaves what sysfs said. */
    g_assert_true(dmg_host_profile_load_file(kept, other, &err));
    assert_iommu_dirty(kept, true, DMG_HOST_FACT_SYSFS);

    g_assert_true(dmg_host_profile_load_file(before, off, &err));
    dmg_host_profile_read_sysfs(before);
    assert_iommu_dirty(before, false, DMG_HOST_FACT_PROFILE);
    g_assert_no_error(err);
}


/* ---- trees built at run time: what cannot be committed (a FIFO), and
 * one register value per case. */

static guint tree_serial;

static void
remove_tree(const char *path)
{
    g_autoptr(GDir) dir = NULL;
    const char *name;

    if (g_file_test(path, G_FILE_TEST_IS_SYMLINK) ||
        !g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_remove(path);
        return;
    }
    dir = g_dir_open(path, 0, NULL);
    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *child = g_build_filename(path, name, NULL);
        remove_tree(child);
    }
    g_rmdir(path);
}


/* A fresh sysfs root under tmpdir. */
static char *
new_tree(void)
{
    g_autofree char *name = g_strdup_printf("tree%u", tree_serial++);
    char *root = g_build_filename(tmpdir, name, NULL);

    g_assert_cmpint(g_mkdir_with_parents(root, 0755), ==, 0);
    return root;
}


/* The register file of unit @unit ("dmarN" is VT-d, anything else AMD);
 * its directories are created. */
static char *
unit_register(const char *root, const char *unit)
{
    bool intel = g_str_has_prefix(unit, "dmar");
    g_autofree char *dir = g_build_filename(root, "class", "iommu", unit,
                                            intel ? "intel-iommu" : "amd-iommu",
                                            NULL);

    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    return g_build_filename(dir, intel ? "ecap" : "features", NULL);
}


/* Write @len bytes of @contents (-1: a string) as unit @unit's register. */
static char *
add_unit(const char *root, const char *unit, const char *contents, gssize len)
{
    char *path = unit_register(root, unit);
    g_autoptr(GError) err = NULL;

    g_file_set_contents(path, contents, len, &err);
    g_assert_no_error(err);
    return path;
}


static void
add_unit_value(const char *root, const char *unit, guint64 value)
{
    g_autofree char *text = g_strdup_printf("%" G_GINT64_MODIFIER "x\n", value);
    g_autofree char *path = add_unit(root, unit, text, -1);
}


static dmgHostProfile *
read_tree(const char *root)
{
    dmgHostProfile *profile = dmg_host_profile_new(root);

    dmg_host_profile_read_sysfs(profile);
    return profile;
}


/* The three VT-d bits are all needed, as in the kernel's ssads_supported():
 * scalable mode, second-stage A/D, coherent page walks. */
static void
test_iommu_dirty_intel_bits(void)
{
    static const guint64 ecaps[] = {
        ECAP_DIRTY & ~ECAP_SMTS,
        ECAP_DIRTY & ~ECAP_SLADS,
        ECAP_DIRTY & ~ECAP_SMPWC,
        0xf050da,
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(ecaps); i++) {
        g_autofree char *root = new_tree();
        g_autoptr(dmgHostProfile) profile = NULL;

        add_unit_value(root, "dmar0", ecaps[i]);
        profile = read_tree(root);
        assert_iommu_dirty(profile, false, DMG_HOST_FACT_SYSFS);
        remove_tree(root);
    }

    {
        g_autofree char *root = new_tree();
        g_autoptr(dmgHostProfile) profile = NULL;

        /* Upper-case hex digits are hex too; every bit set is dirty. */
        g_free(add_unit(root, "dmar0", "1280000F050DA\n", -1));
        add_unit_value(root, "dmar1", G_MAXUINT64);
        profile = read_tree(root);
        assert_iommu_dirty(profile, true, DMG_HOST_FACT_SYSFS);
        remove_tree(root);
    }
}


/* "EFR:EFR2": HDSup is read from EFR, the first value, only. */
static void
test_iommu_dirty_amd_format(void)
{
    g_autofree char *efr2 = g_strdup_printf("58f77ef22294ade:%" G_GINT64_MODIFIER "x\n",
                                            EFR_HDSUP);
    g_autofree char *efr = g_strdup_printf("%" G_GINT64_MODIFIER "x:0\n", EFR_HDSUP);
    g_autofree char *root = new_tree();
    g_autoptr(dmgHostProfile) no = NULL;
    g_autoptr(dmgHostProfile) yes = NULL;

    g_free(add_unit(root, "ivhd0", efr2, -1));
    no = read_tree(root);
    assert_iommu_dirty(no, false, DMG_HOST_FACT_SYSFS);
    remove_tree(root);

    g_free(add_unit(root, "ivhd0", efr, -1));
    yes = read_tree(root);
    assert_iommu_dirty(yes, true, DMG_HOST_FACT_SYSFS);
    remove_tree(root);
}


/* A unit of a kind dmaguard cannot read (ARM SMMU, virtio-iommu) leaves
 * the answer unknown, unless another unit already settles it as "no". */
static void
test_iommu_dirty_unknown_unit(void)
{
    g_autofree char *root = new_tree();
    g_autofree char *smmu = g_build_filename(root, "class", "iommu",
                                             "smmu3.0x0000000009050000", NULL);
    g_autofree char *empty = new_tree();
    g_autofree char *classdir = g_build_filename(empty, "class", "iommu", NULL);
    g_autoptr(dmgHostProfile) unknown = NULL;
    g_autoptr(dmgHostProfile) lacking = NULL;
    g_autoptr(dmgHostProfile) nounits = NULL;

    g_assert_cmpint(g_mkdir_with_parents(smmu, 0755), ==, 0);
    add_unit_value(root, "dmar0", ECAP_DIRTY);
    unknown = read_tree(root);
    assert_iommu_dirty(unknown, false, DMG_HOST_FACT_DEFAULT);

    add_unit_value(root, "dmar1", 0xf050da);
    lacking = read_tree(root);
    assert_iommu_dirty(lacking, false, DMG_HOST_FACT_SYSFS);
    remove_tree(root);

    /* An empty class/iommu: no unit to ask. */
    g_assert_cmpint(g_mkdir_with_parents(classdir, 0755), ==, 0);
    nounits = read_tree(empty);
    assert_iommu_dirty(nounits, false, DMG_HOST_FACT_DEFAULT);
    remove_tree(empty);
}


/* Read @root, which has one bad unit @bad (whose register is @path) next
 * to a good one, expecting exactly "@path: @what; IOMMU dirty tracking is
 * assumed unsupported": the path, never the contents. */
static void
check_bad_register(const char *root, const char *path, const char *what)
{
    g_autofree char *msg = g_strdup_printf("%s: %s; IOMMU dirty tracking is assumed unsupported",
                                           path, what);
    g_autoptr(dmgHostProfile) profile = NULL;
    gint64 start = g_get_monotonic_time();

    g_test_message("%s", msg);
    add_unit_value(root, "dmar9", ECAP_DIRTY);
    g_test_expect_message(NULL, G_LOG_LEVEL_WARNING, msg);
    profile = read_tree(root);
    g_test_assert_expected_messages();
    assert_iommu_dirty(profile, false, DMG_HOST_FACT_DEFAULT);
    /* Bounded: no hang on a FIFO, no reading a huge file through. */
    g_assert_cmpint(g_get_monotonic_time() - start, <, 10 * G_USEC_PER_SEC);
}


static void
test_iommu_dirty_garbage(void)
{
    static const struct {
        const char *contents;
        gssize len;
    } cases[] = {
        { "", 0 },
        { "\n", -1 },
        { "0x1280000f050da\n", -1 },        /* the kernel prints no prefix */
        { " 1280000f050da\n", -1 },
        { "1280000f050da \n", -1 },
        { "1280000f050da\n\n", -1 },
        { "-1\n", -1 },
        { "SECRET-not-hex\n", -1 },
        { "0001280000f050da\n", -1 },       /* 16 digits: fine... */
        { "00001280000f050da\n", -1 },      /* ...17 are not a u64 */
        { "1280000f050da\0garbage\n", 22 },
        { "1280000f050da:\n", -1 },
        { ":0\n", -1 },
        { "1280000f050da:0:0\n", -1 },
        { "\xff\xfe\n", -1 },
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *root = new_tree();
        g_autofree char *path = add_unit(root, "dmar0", cases[i].contents, cases[i].len);

        if (i == 8) {
            /* The 16-digit value is valid and has SLADS, SMTS, SMPWC. */
            g_autoptr(dmgHostProfile) profile = read_tree(root);

            assert_iommu_dirty(profile, true, DMG_HOST_FACT_SYSFS);
        } else {
            check_bad_register(root, path, "not a hexadecimal register value");
        }
        remove_tree(root);
    }
}


/* 64 bytes is the most a register file may hold (it still must parse);
 * 65 bytes, and a file as large as the filesystem allows, are refused
 * after reading 65 bytes. */
static void
test_iommu_dirty_oversized(void)
{
    g_autofree char *root = new_tree();
    g_autofree char *big = g_strnfill(64, '0');
    g_autofree char *path = add_unit(root, "dmar0", big, 64);
    g_autofree char *bigger = g_strnfill(65, '0');
    int fd;

    check_bad_register(root, path, "not a hexadecimal register value");
    g_free(add_unit(root, "dmar0", bigger, 65));
    check_bad_register(root, path, "longer than 64 bytes, so not a register value");

    /* Sparse: reading it whole would take minutes and gigabytes. */
    fd = g_open(path, O_WRONLY | O_TRUNC | O_CLOEXEC, 0);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t) 1 << 36), ==, 0);
    g_close(fd, NULL);
    check_bad_register(root, path, "longer than 64 bytes, so not a register value");
    remove_tree(root);
}


/* A FIFO with no writer, and a device that never ends: refused without a
 * read, so nothing blocks. */
static void
test_iommu_dirty_not_regular(void)
{
    g_autofree char *root = new_tree();
    g_autofree char *path = unit_register(root, "dmar0");

    g_assert_cmpint(mkfifo(path, 0644), ==, 0);
    check_bad_register(root, path, "not a regular file");
    g_remove(path);

    g_assert_cmpint(symlink("/dev/zero", path), ==, 0);
    check_bad_register(root, path, "not a regular file");
    g_remove(path);

    g_assert_cmpint(g_mkdir(path, 0755), ==, 0);
    check_bad_register(root, path, "not a regular file");
    remove_tree(root);
}


/* A unit whose register file is missing cannot be read. */
static void
test_iommu_dirty_missing_file(void)
{
    g_autofree char *root = new_tree();
    g_autofree char *path = unit_register(root, "ivhd0");

    check_bad_register(root, path, g_strerror(ENOENT));
    remove_tree(root);
}


static void
test_kvm(void)
{
    g_autoptr(dmgHostProfile) profile = dmg_host_profile_new(NULL);
    int fd = g_open("/dev/kvm", O_RDWR | O_CLOEXEC, 0);

    if (fd < 0) {
        g_test_skip("/dev/kvm cannot be opened");
        return;
    }
    g_close(fd, NULL);

    dmg_host_profile_probe_kvm(profile, NULL);
    /* Every KVM since 2.6.27 has MMU notifiers, and reports its slots. */
    g_assert_cmpint(profile->kvm_sync_mmu, ==, 1);
    g_assert_cmpuint(profile->kvm_nr_memslots, >, 0);

    profile->kvm_sync_mmu = -1;
    profile->kvm_nr_memslots = 0;
    dmg_host_profile_probe_kvm(profile, "/dev/kvm");
    g_assert_cmpint(profile->kvm_sync_mmu, ==, 1);
    g_assert_cmpuint(profile->kvm_nr_memslots, >, 0);
}


static void
test_kvm_absent(void)
{
    g_autoptr(dmgHostProfile) profile = dmg_host_profile_new(NULL);
    g_autofree char *path = g_build_filename(tmpdir, "no-kvm", NULL);

    dmg_host_profile_probe_kvm(profile, path);
    g_assert_cmpint(profile->kvm_sync_mmu, ==, -1);
    g_assert_cmpuint(profile->kvm_nr_memslots, ==, 0);

    /* Opens, but the ioctl fails: still unknown, not "no". */
    dmg_host_profile_probe_kvm(profile, "/dev/null");
    g_assert_cmpint(profile->kvm_sync_mmu, ==, -1);
    g_assert_cmpuint(profile->kvm_nr_memslots, ==, 0);
}


static void
remove_tmpdir(void)
{
    remove_tree(tmpdir);
    g_clear_pointer(&tmpdir, g_free);
}


int
main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);

    tmpdir = g_dir_make_tmp("dmg-test-host-profile-XXXXXX", &err);
    g_assert_no_error(err);

    g_test_add_func("/host-profile/defaults", test_defaults);
    g_test_add_func("/host-profile/fixtures/links-resolve", test_fixture_links);
    g_test_add_func("/host-profile/pci/shared-group", test_pci_shared_group);
    g_test_add_func("/host-profile/pci/variant-drivers", test_pci_variant_drivers);
    g_test_add_func("/host-profile/pci/host-driver", test_pci_host_driver);
    g_test_add_func("/host-profile/pci/missing", test_pci_missing);
    g_test_add_func("/host-profile/mdev/present", test_mdev);
    g_test_add_func("/host-profile/mdev/missing", test_mdev_missing);
    g_test_add_func("/host-profile/cache", test_cache);
    g_test_add_func("/host-profile/dma-entry-limit", test_dma_entry_limit);
    g_test_add_func("/host-profile/thp-size", test_thp_size);
    g_test_add_func("/host-profile/dma-entry-limit-bad", test_dma_entry_limit_bad);
    g_test_add_func("/host-profile/driver-caps", test_driver_caps);
    g_test_add_func("/host-profile/file/valid", test_file_valid);
    g_test_add_func("/host-profile/file/partial", test_file_partial);
    g_test_add_func("/host-profile/file/bad-bool", test_file_bad_bool);
    g_test_add_func("/host-profile/file/bad-number", test_file_bad_number);
    g_test_add_func("/host-profile/file/unknown-key", test_file_unknown_key);
    g_test_add_func("/host-profile/file/unknown-group", test_file_unknown_group);
    g_test_add_func("/host-profile/file/unreadable", test_file_unreadable);
    g_test_add_func("/host-profile/file/not-regular", test_file_not_regular);
    g_test_add_func("/host-profile/iommu-dirty/fixtures", test_iommu_dirty_fixtures);
    g_test_add_func("/host-profile/iommu-dirty/override", test_iommu_dirty_override);
    g_test_add_func("/host-profile/iommu-dirty/intel-bits", test_iommu_dirty_intel_bits);
    g_test_add_func("/host-profile/iommu-dirty/amd-format", test_iommu_dirty_amd_format);
    g_test_add_func("/host-profile/iommu-dirty/unknown-unit", test_iommu_dirty_unknown_unit);
    g_test_add_func("/host-profile/iommu-dirty/garbage", test_iommu_dirty_garbage);
    g_test_add_func("/host-profile/iommu-dirty/oversized", test_iommu_dirty_oversized);
    g_test_add_func("/host-profile/iommu-dirty/not-regular", test_iommu_dirty_not_regular);
    g_test_add_func("/host-profile/iommu-dirty/missing-file", test_iommu_dirty_missing_file);
    g_test_add_func("/host-profile/kvm/dev-kvm", test_kvm);
    g_test_add_func("/host-profile/kvm/absent", test_kvm_absent);

    ret = g_test_run();
    remove_tmpdir();
    return ret;
}

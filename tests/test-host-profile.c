/*
 * test-host-profile.c: the host profile against the fake sysfs trees in
 * tests/sysfs (built by tests/sysfs/mkfixtures.sh), profile files, and
 * the real /dev/kvm.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

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
    g_assert_cmpint(profile->kvm_sync_mmu, ==, -1);
    g_assert_cmpuint(profile->kvm_nr_memslots, ==, 0);
    g_assert_cmpuint(g_hash_table_size(profile->devices), ==, 0);
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
    const char *trees[] = { "host1", "smalllimit" };
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
                                   "'maybe'", NULL };
    const char *const host[] = { "[host]", "iommu-dirty-tracking", "'1'", NULL };

    /* The example from the documentation, word for word. */
    path = write_profile("bool.conf",
                         "[driver mlx5_vfio_pci]\ndirty-tracking=maybe\n");
    g_assert_false(dmg_host_profile_load_file(profile, path, &err));
    expect = g_strdup_printf("%s: [driver mlx5_vfio_pci] dirty-tracking: "
                             "'maybe' is not a boolean (use true or false)", path);
    g_assert_cmpstr(err->message, ==, expect);

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
    const char *const words[] = { "dma-entry-limit", "'lots'", NULL };
    const char *const negative[] = { "dma-entry-limit", "'-1'", NULL };
    const char *const huge[] = { "kvm-nr-memslots", "'4294967296'", NULL };
    const char *const sync[] = { "kvm-sync-mmu", "'yes'", NULL };

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
    g_autoptr(GDir) dir = g_dir_open(tmpdir, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *path = g_build_filename(tmpdir, name, NULL);
        g_remove(path);
    }
    g_rmdir(tmpdir);
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
    g_test_add_func("/host-profile/driver-caps", test_driver_caps);
    g_test_add_func("/host-profile/file/valid", test_file_valid);
    g_test_add_func("/host-profile/file/partial", test_file_partial);
    g_test_add_func("/host-profile/file/bad-bool", test_file_bad_bool);
    g_test_add_func("/host-profile/file/bad-number", test_file_bad_number);
    g_test_add_func("/host-profile/file/unknown-key", test_file_unknown_key);
    g_test_add_func("/host-profile/file/unknown-group", test_file_unknown_group);
    g_test_add_func("/host-profile/file/unreadable", test_file_unreadable);
    g_test_add_func("/host-profile/kvm/dev-kvm", test_kvm);
    g_test_add_func("/host-profile/kvm/absent", test_kvm_absent);

    ret = g_test_run();
    remove_tmpdir();
    return ret;
}

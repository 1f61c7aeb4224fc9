/*
 * test-host-nodedev.c: host devices from libvirt node devices, through
 * libvirt's real test driver (examples/dmaguard-node.xml,
 * tests/nodedev/disagree.xml), and the node device parser against
 * hand-written and hostile XML.
 */
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "test-paths.h"
#include "host_nodedev.h"
#include "host_profile.h"
#include "libvirt_source.h"

#define MDEV1 "4b20d080-1b54-4048-85b3-a6a62d165c01"

static char *tmpdir;

static void
quiet(void *opaque, virErrorPtr err)
{
}

/* The node devices of the test driver loaded with @file (in the source). */
static dmgHostProfile *
profile_from_node_file(const char *dir, const char *file, const char *sysfs_root)
{
    g_autofree char *path = source_path(dir, file, NULL);
    g_autofree char *abs = g_canonicalize_filename(path, NULL);
    g_autofree char *uri = g_strdup_printf("test://%s", abs);
    g_autoptr(GError) err = NULL;
    dmgHostProfile *profile = dmg_host_profile_new(sysfs_root);
    virConnectPtr conn;

    virSetErrorFunc(NULL, quiet);
    conn = virConnectOpenReadOnly(uri);
    g_assert_nonnull(conn);
    g_assert_true(dmg_host_profile_read_nodedev(profile, conn, uri, &err));
    g_assert_no_error(err);
    virConnectClose(conn);
    g_assert_cmpint(profile->devices_source, ==, DMG_HOST_DEVICES_NODEDEV);
    g_assert_cmpstr(profile->nodedev_uri, ==, uri);
    return profile;
}

static void
assert_same_device(const dmgHostDevice *a, const dmgHostDevice *b)
{
    g_assert_cmpstr(a->name, ==, b->name);
    g_assert_cmpint(a->present, ==, b->present);
    g_assert_cmpint(a->iommu_group, ==, b->iommu_group);
    g_assert_cmpstr(a->driver, ==, b->driver);
    g_assert_cmpstr(a->mdev_type, ==, b->mdev_type);
    g_assert_cmpstr(a->parent, ==, b->parent);
    g_assert_cmpuint(a->group_devices->len, ==, b->group_devices->len);
    for (guint i = 0; i < a->group_devices->len; i++)
        g_assert_cmpstr(g_ptr_array_index(a->group_devices, i), ==,
                        g_ptr_array_index(b->group_devices, i));
}

static const dmgHostDevice *
lookup(dmgHostProfile *p, const char *name)
{
    unsigned d, b, s, f;

    if (sscanf(name, "%x:%x:%x.%x", &d, &b, &s, &f) == 4)
        return dmg_host_profile_pci(p, d, b, s, f);
    return dmg_host_profile_mdev(p, name);
}

/* The example node's node devices, with dmaguard-node.conf for the
 * drivers the test driver drops, say what the example host's sysfs tree
 * says, device by device: present, group, members, driver, mdev type and
 * parent.  And they list no device the tree lacks. */
static void
test_example_matches_sysfs(void)
{
    g_autofree char *conf = source_path("examples", "dmaguard-node.conf", NULL);
    g_autofree char *tree = source_path("examples", "host-sysfs", NULL);
    g_autoptr(dmgHostProfile) nd = profile_from_node_file("examples", "dmaguard-node.xml", NULL);
    g_autoptr(dmgHostProfile) fs = dmg_host_profile_new(tree);
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *buses[] = { "pci", "mdev" };
    GHashTableIter iter;
    gpointer key;

    g_assert_true(dmg_host_profile_load_file(nd, conf, &err));
    g_assert_no_error(err);
    for (guint i = 0; i < G_N_ELEMENTS(buses); i++) {
        g_autofree char *dir = g_build_filename(tree, "bus", buses[i], "devices", NULL);
        g_autoptr(GDir) d = g_dir_open(dir, 0, &err);
        const char *e;

        g_assert_no_error(err);
        while ((e = g_dir_read_name(d)))
            g_ptr_array_add(names, g_strdup(e));
    }
    g_assert_cmpuint(names->len, ==, 8);
    g_assert_cmpuint(g_hash_table_size(nd->devices), ==, names->len);
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        const dmgHostDevice *a = lookup(nd, name);
        const dmgHostDevice *b = lookup(fs, name);

        g_test_message("%s: group %d driver %s", name, a->iommu_group, a->driver);
        g_assert_true(a->present);
        assert_same_device(a, b);
    }
    /* Every node device is one of the tree's. */
    g_hash_table_iter_init(&iter, nd->devices);
    while (g_hash_table_iter_next(&iter, &key, NULL))
        g_assert_true(g_ptr_array_find_with_equal_func(names, key, g_str_equal, NULL));

    /* The GPU pair shares group 1; the mdev has its type and parent. */
    g_assert_cmpint(lookup(nd, "0000:01:00.1")->iommu_group, ==, 1);
    g_assert_cmpuint(lookup(nd, "0000:01:00.1")->group_devices->len, ==, 2);
    g_assert_cmpstr(lookup(nd, MDEV1)->mdev_type, ==, "i915-GVTg_V5_4");
    g_assert_cmpstr(lookup(nd, MDEV1)->parent, ==, "0000:00:02.0");
    g_assert_cmpstr(lookup(nd, "0000:3b:00.1")->driver, ==, "mlx5_vfio_pci");
}

/* Node devices that disagree with tests/sysfs/host1: their facts count,
 * and a device they lack is not looked for in the sysfs root. */
static void
test_disagree(void)
{
    g_autofree char *host1 = source_path("tests", "sysfs", "host1", NULL);
    g_autoptr(dmgHostProfile) p = profile_from_node_file("tests", "nodedev/disagree.xml", host1);
    const dmgHostDevice *gpu = lookup(p, "0000:01:00.0");
    const dmgHostDevice *audio = lookup(p, "0000:01:00.1");
    const dmgHostDevice *hisi = lookup(p, "0000:3c:00.1");
    const dmgHostDevice *mdev = lookup(p, "4B20D080-1B54-4048-85B3-A6A62D165C01");

    g_assert_true(gpu->present);
    g_assert_cmpint(gpu->iommu_group, ==, 1);
    g_assert_cmpuint(gpu->group_devices->len, ==, 1);
    g_assert_cmpint(audio->iommu_group, ==, 7);
    g_assert_null(audio->driver);        /* the test driver keeps none */
    g_assert_false(hisi->present);       /* host1 has it: not asked */
    g_assert_cmpint(hisi->iommu_group, ==, -1);
    /* No <uuid>: from the name mdev_UUID_PARENT. */
    g_assert_true(mdev->present);
    g_assert_cmpstr(mdev->name, ==, MDEV1);
    g_assert_cmpint(mdev->iommu_group, ==, 40);
    g_assert_cmpstr(mdev->parent, ==, "0000:00:02.0");
    g_assert_cmpuint(mdev->group_devices->len, ==, 1);
}

/* ---- the parser, without libvirt ---------------------------------------- */

/* NAME, XML pairs up to a NULL name, as node device documents. */
static GPtrArray *
nodedev_list(va_list ap)
{
    GPtrArray *xmls = g_ptr_array_new_with_free_func((GDestroyNotify)dmg_nodedev_xml_free);
    const char *name;

    while ((name = va_arg(ap, const char *))) {
        dmgNodedevXML *d = g_new0(dmgNodedevXML, 1);

        d->name = g_strdup(name);
        d->xml = g_strdup(va_arg(ap, const char *));
        g_ptr_array_add(xmls, d);
    }
    return xmls;
}

static gboolean
parse(dmgHostProfile *p, GError **err, ...)
{
    g_autoptr(GPtrArray) xmls = NULL;
    va_list ap;

    va_start(ap, err);
    xmls = nodedev_list(ap);
    va_end(ap);
    return dmg_host_profile_from_nodedev_xml(p, "test:///t", xmls, err);
}

#define PCI(NAME, BUS, FN, GROUP, MEMBERS, EXTRA) \
    "<device><name>" NAME "</name><parent>computer</parent>" EXTRA \
    "<capability type='pci'><domain>0</domain><bus>" BUS "</bus><slot>0</slot>" \
    "<function>" FN "</function><product id='0x1'/><vendor id='0x2'/>" \
    "<iommuGroup number='" GROUP "'>" MEMBERS "</iommuGroup></capability></device>"

static void
assert_refused(const char *why, const char *needle, const char *secret, ...)
{
    g_autoptr(dmgHostProfile) p = dmg_host_profile_new("/nonexistent");
    g_autoptr(GPtrArray) xmls = NULL;
    g_autoptr(GError) err = NULL;
    va_list ap;

    va_start(ap, secret);
    xmls = nodedev_list(ap);
    va_end(ap);
    g_test_message("%s", why);
    g_assert_false(dmg_host_profile_from_nodedev_xml(p, "test:///t", xmls, &err));
    g_assert_nonnull(err);
    g_test_message("  -> %s", err->message);
    g_assert_nonnull(strstr(err->message, needle));
    /* Nothing of the document beyond a device name is quoted. */
    if (secret)
        g_assert_null(strstr(err->message, secret));
    /* A failed read leaves the profile as it was. */
    g_assert_cmpint(p->devices_source, ==, DMG_HOST_DEVICES_SYSFS);
    g_assert_cmpuint(g_hash_table_size(p->devices), ==, 0);
}

static void
test_parse_groups(void)
{
    g_autoptr(dmgHostProfile) p = dmg_host_profile_new("/nonexistent");
    g_autoptr(GError) err = NULL;
    const dmgHostDevice *a, *b, *c;

    /* a lists only itself, b lists a and itself (C-style attributes, as
     * virXMLPropUInt reads them); c is in no group; the system device is
     * skipped; an old-style mdev name (no parent) gives its UUID. */
    g_assert_true(parse(p, &err,
        "computer", "<device><name>computer</name><capability type='system'/></device>",
        "pci_0000_05_00_0", PCI("pci_0000_05_00_0", "5", "0", "9",
                                "<address domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>",
                                "<driver><name>vfio-pci</name></driver>"),
        "pci_0000_05_00_1", PCI("pci_0000_05_00_1", "5", "1", "9",
                                "<address domain='0' bus='5' slot='0' function='1'/>"
                                "<address domain='0x0' bus='0x5' slot='0x0' function='0x0'/>", ""),
        "pci_0000_06_00_0", "<device><name>pci_0000_06_00_0</name><capability type='pci'>"
                            "<domain>0</domain><bus>6</bus><slot>0</slot><function>0</function>"
                            "</capability></device>",
        "mdev_" "4b20d080_1b54_4048_85b3_a6a62d165c01",
        "<device><name>x</name><parent>pci_0000_05_00_0</parent><capability type='mdev'>"
        "<type id='nvidia-35'/><iommuGroup number='9'/></capability></device>",
        NULL));
    g_assert_no_error(err);
    a = dmg_host_profile_pci(p, 0, 5, 0, 0);
    b = dmg_host_profile_pci(p, 0, 5, 0, 1);
    c = dmg_host_profile_pci(p, 0, 6, 0, 0);
    g_assert_cmpstr(a->driver, ==, "vfio-pci");
    g_assert_null(b->driver);
    g_assert_cmpuint(a->group_devices->len, ==, 3);
    g_assert_cmpstr(g_ptr_array_index(a->group_devices, 0), ==, "0000:05:00.0");
    g_assert_cmpstr(g_ptr_array_index(a->group_devices, 1), ==, "0000:05:00.1");
    g_assert_cmpstr(g_ptr_array_index(a->group_devices, 2), ==, MDEV1);
    g_assert_cmpuint(b->group_devices->len, ==, 3);
    g_assert_true(c->present);
    g_assert_cmpint(c->iommu_group, ==, -1);
    g_assert_cmpuint(c->group_devices->len, ==, 0);
    g_assert_cmpstr(dmg_host_profile_mdev(p, MDEV1)->parent, ==, "0000:05:00.0");
    g_assert_cmpstr(dmg_host_profile_mdev(p, MDEV1)->mdev_type, ==, "nvidia-35");
    g_assert_false(dmg_host_profile_pci(p, 0, 7, 0, 0)->present);
    g_assert_cmpuint(g_hash_table_size(p->devices), ==, 5);
}

/* A [device NAME] driver= of a profile file wins over the node device,
 * whether the file is loaded before or after the node devices. */
static void
test_device_driver_override(void)
{
    g_autofree char *path = g_build_filename(tmpdir, "drivers.conf", NULL);
    g_autoptr(GError) err = NULL;
    const char *xml = PCI("pci_0000_05_00_0", "5", "0", "9", "",
                          "<driver><name>vfio-pci</name></driver>");

    g_assert_true(g_file_set_contents(path,
        "[device 0000:05:00.0]\ndriver=mlx5_vfio_pci\n"
        "[device 4B20D080-1B54-4048-85B3-A6A62D165C01]\ndriver=nvidia\n", -1, NULL));
    for (int order = 0; order < 2; order++) {
        g_autoptr(dmgHostProfile) p = dmg_host_profile_new("/nonexistent");

        if (order == 0)
            g_assert_true(dmg_host_profile_load_file(p, path, &err));
        g_assert_true(parse(p, &err, "pci_0000_05_00_0", xml, NULL));
        if (order == 1)
            g_assert_true(dmg_host_profile_load_file(p, path, &err));
        g_assert_no_error(err);
        g_assert_cmpstr(dmg_host_profile_pci(p, 0, 5, 0, 0)->driver, ==, "mlx5_vfio_pci");
        /* Not on this host: the override does not make it present. */
        g_assert_false(dmg_host_profile_mdev(p, MDEV1)->present);
        g_assert_null(dmg_host_profile_mdev(p, MDEV1)->driver);
    }
}

static void
test_device_group_refused(void)
{
    static const struct {
        const char *contents;
        const char *needle;
    } cases[] = {
        { "[device 0000:3b:00]\ndriver=vfio-pci\n", "names neither" },
        { "[device 0000:3b:20.1]\ndriver=vfio-pci\n", "names neither" },
        { "[device 0000:3b:00.8]\ndriver=vfio-pci\n", "names neither" },
        { "[device ../../etc]\ndriver=vfio-pci\n", "names neither" },
        { "[device 0000:3b:00.1]\n", "no driver key" },
        { "[device 0000:3b:00.1]\ndriver=vfio-pci\nmigration=true\n", "unknown key" },
        { "[device 0000:3b:00.1]\ndriver=a/b\n", "not a driver name" },
        { "[device 0000:3b:00.1]\ndriver=\n", "not a driver name" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_build_filename(tmpdir, "bad.conf", NULL);
        g_autoptr(dmgHostProfile) p = dmg_host_profile_new("/nonexistent");
        g_autoptr(GError) err = NULL;

        g_assert_true(g_file_set_contents(path, cases[i].contents, -1, NULL));
        g_assert_false(dmg_host_profile_load_file(p, path, &err));
        g_test_message("%s -> %s", cases[i].contents, err->message);
        g_assert_nonnull(strstr(err->message, cases[i].needle));
        g_assert_cmpuint(g_hash_table_size(p->device_drivers), ==, 0);
    }
}

static void
test_parse_refused(void)
{
    g_autofree char *big = NULL;
    GString *s;

    assert_refused("a DOCTYPE", "DOCTYPE", "SECRETVALUE", "pci_x",
                   "<!DOCTYPE device [<!ENTITY e 'SECRETVALUE'>]><device><name>&e;</name></device>",
                   NULL);
    assert_refused("an external entity", "DOCTYPE", "passwd", "pci_x",
                   "<!DOCTYPE device [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><device>&e;</device>",
                   NULL);
    assert_refused("truncated", "malformed XML", "SECRETVALUE", "pci_x",
                   "<device><name>SECRETVALUE</name><capability type='pci'>", NULL);
    assert_refused("not a device", "not a <device>", NULL, "pci_x", "<domain/>", NULL);
    assert_refused("slot out of range", "not a PCI device", "SECRETVALUE", "pci_x",
                   "<device><name>SECRETVALUE</name><capability type='pci'><domain>0</domain>"
                   "<bus>1</bus><slot>32</slot><function>0</function></capability></device>",
                   NULL);
    assert_refused("function 8", "not a PCI device", NULL, "pci_x",
                   PCI("p", "1", "8", "1", "", ""), NULL);
    assert_refused("a hex bus element (libvirt prints decimal)", "not a PCI device", NULL,
                   "pci_x", PCI("p", "0x3b", "0", "1", "", ""), NULL);
    assert_refused("a bad group member", "not a PCI device", NULL, "pci_x",
                   PCI("p", "1", "0", "1", "<address domain='0' bus='0x100' slot='0' function='0'/>", ""),
                   NULL);
    assert_refused("a negative group", "not a PCI device", NULL, "pci_x",
                   PCI("p", "1", "0", "-1", "", ""), NULL);
    assert_refused("a driver that is no driver name", "does not name a driver", "SECRET",
                   "pci_x", PCI("p", "1", "0", "1", "", "<driver><name>SECRET/../x</name></driver>"),
                   NULL);
    assert_refused("an mdev without a UUID", "not an mdev", NULL, "mdev_foo",
                   "<device><capability type='mdev'><type id='t'/></capability></device>", NULL);
    assert_refused("an mdev with a bad UUID", "not an mdev", "SECRETVALUE", "mdev_x",
                   "<device><capability type='mdev'><uuid>SECRETVALUE</uuid></capability></device>",
                   NULL);
    assert_refused("two node devices, one PCI device", "both describe host device 0000:01:00.0", NULL,
                   "pci_a", PCI("a", "1", "0", "1", "", ""),
                   "pci_b", PCI("b", "1", "0", "2", "", ""), NULL);
    assert_refused("a hostile name is not printed as is", "node device pci_?x", "\x1b", "pci_\x1bx",
                   "<device", NULL);

    s = g_string_new("<device><name>");
    while (s->len <= DMG_NODEDEV_XML_MAX)
        g_string_append(s, "aaaaaaaaaaaaaaaa");
    g_string_append(s, "</name></device>");
    big = g_string_free(s, FALSE);
    assert_refused("oversized", "longer than", "aaaa", "pci_big", big, NULL);
}

/* Where the QEMU version comes from: a URI with a server part is another
 * host, whose binaries are never probed here. */
static void
test_uri_remote(void)
{
    static const char *const remote[] = {
        "qemu+ssh://hostb/system", "qemu+tcp://hostb/system",
        "qemu+ssh://root@hostb:2222/system?keyfile=/k", "qemu://hostb/system",
    };
    static const char *const local[] = {
        "qemu:///system", "qemu+unix:///system?socket=/run/x", "test:///default",
        "test:///usr/share/dmaguard/dmaguard-node.xml", "qemu+ssh:///system", "",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(remote); i++)
        g_assert_true(dmg_libvirt_uri_is_remote(NULL, remote[i]));
    for (gsize i = 0; i < G_N_ELEMENTS(local); i++)
        g_assert_false(dmg_libvirt_uri_is_remote(NULL, local[i]));
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("dmg-test-host-nodedev-XXXXXX", &err);
    g_assert_no_error(err);

    g_test_add_func("/host-nodedev/example-matches-sysfs", test_example_matches_sysfs);
    g_test_add_func("/host-nodedev/disagree", test_disagree);
    g_test_add_func("/host-nodedev/parse/groups", test_parse_groups);
    g_test_add_func("/host-nodedev/parse/refused", test_parse_refused);
    g_test_add_func("/host-nodedev/profile/device-driver", test_device_driver_override);
    g_test_add_func("/host-nodedev/profile/device-refused", test_device_group_refused);
    g_test_add_func("/host-nodedev/uri/remote", test_uri_remote);

    ret = g_test_run();
    {
        g_autofree char *a = g_build_filename(tmpdir, "drivers.conf", NULL);
        g_autofree char *b = g_build_filename(tmpdir, "bad.conf", NULL);

        g_unlink(a);
        g_unlink(b);
        g_rmdir(tmpdir);
    }
    g_free(tmpdir);
    return ret;
}

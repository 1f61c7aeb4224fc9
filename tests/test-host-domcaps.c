/*
 * test-host-domcaps.c: host facts from libvirt's domain capabilities
 * (host_domcaps.c) and the start check they feed (libvirt_hostdev.c),
 * through libvirt's real test driver (examples/dmaguard-node.xml), which
 * has no domain capabilities, and the parser on real
 * `virsh domcapabilities` output (tests/domcaps/) and hostile XML.  The
 * answer of a real QEMU driver is tested in tests/libvirt-daemon.sh.
 */
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "test-paths.h"
#include "check.h"
#include "domain_conf.h"
#include "host_domcaps.h"
#include "host_profile.h"
#include "qemu_profile.h"

static char *
example_uri(void)
{
    g_autofree char *path = source_path("examples", "dmaguard-node.xml", NULL);
    g_autofree char *abs = g_canonicalize_filename(path, NULL);

    return g_strdup_printf("test://%s", abs);
}

static void
quiet(void *opaque, virErrorPtr err)
{
}

/* A connection to the example node, as virt-dmaguard reads it but for
 * dmg_libvirt_open()'s event loop thread, which would live until the
 * process exits (valgrind counts its stack "possibly lost"); main()
 * silences libvirt's error printing as dmg_libvirt_open() does. */
static virConnectPtr
open_example(gboolean readwrite)
{
    g_autofree char *uri = example_uri();
    virConnectPtr conn = readwrite ? virConnectOpen(uri) : virConnectOpenReadOnly(uri);

    g_assert_nonnull(conn);
    return conn;
}

static dmgDomainDef *
parse_domain(const char *xml)
{
    g_autoptr(GError) err = NULL;
    dmgDomainDef *def = dmg_domain_def_parse_string(xml, strlen(xml), "test", &err);

    g_assert_no_error(err);
    g_assert_nonnull(def);
    return def;
}

/* A domain with the three kinds of PCI device libvirt's check sees. */
#define HOSTDEV_DOMAIN(DRIVER)                                                   \
    "<domain type='kvm'><name>hd</name><memory unit='MiB'>256</memory>"         \
    "<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>"              \
    "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>"                  \
    "<interface type='hostdev' managed='yes'>" DRIVER                            \
    "<source><address type='pci' domain='0' bus='0x3b' slot='0' function='1'/></source>" \
    "<alias name='ua-net0'/></interface>"                                        \
    "<hostdev mode='subsystem' type='pci' managed='yes'>" DRIVER                 \
    "<source><address domain='0' bus='1' slot='0' function='0'/></source>"       \
    "<alias name='ua-gpu0'/></hostdev>"                                          \
    "<hostdev mode='subsystem' type='mdev' model='vfio-pci'>"                    \
    "<source><address uuid='4b20d080-1b54-4048-85b3-a6a62d165c01'/></source>"   \
    "<alias name='ua-mdev0'/></hostdev>"                                         \
    "</devices></domain>"

/* The verdict of @xml for QEMU 7.2 (no emulator probed). */
static JsonNode *
verdict_of(const char *xml, dmgHostProfile *host)
{
    g_autoptr(dmgQemuProfile) qemu = dmg_qemu_profile_new();
    g_autoptr(GError) err = NULL;
    JsonNode *v;

    g_assert_true(dmg_qemu_profile_set_version(qemu, "7.2", &err));
    v = dmg_check_xml(xml, strlen(xml), "test", host, qemu, &err);
    g_assert_no_error(err);
    g_assert_nonnull(v);
    return v;
}

/* The devices of the findings with @code in @list ("errors", "warnings"). */
static char *
devices_with(JsonNode *v, const char *list, const char *code)
{
    JsonArray *arr = json_object_get_array_member(json_node_get_object(v), list);
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *f = json_array_get_object_element(arr, i);

        if (g_str_equal(json_object_get_string_member(f, "code"), code))
            g_string_append_printf(s, "%s%s", s->len ? "," : "",
                                   json_object_get_null_member(f, "device")
                                   ? "-" : json_object_get_string_member(f, "device"));
    }
    return g_string_free(s, FALSE);
}

static char *
load_fixture(const char *name, gsize *len)
{
    g_autofree char *path = source_path("tests", "domcaps", name, NULL);
    g_autoptr(GError) err = NULL;
    char *xml = NULL;

    g_assert_true(g_file_get_contents(path, &xml, len, &err));
    g_assert_no_error(err);
    return xml;
}

/* ---- libvirt's test driver ---------------------------------------------- */

/* The test driver has no domain capabilities (VIR_ERR_NO_SUPPORT), and a
 * read-only connection is refused them (VIR_ERR_OPERATION_DENIED): the
 * fact is unknown, asked once per tuple, and the check says nothing. */
static void
test_driver_unknown(gconstpointer readwrite)
{
    virConnectPtr conn = open_example(GPOINTER_TO_INT(readwrite));
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new("/nonexistent");
    g_autoptr(dmgDomainDef) def = parse_domain(HOSTDEV_DOMAIN(""));
    g_autoptr(JsonNode) v = NULL;
    g_autofree char *errs = NULL;

    dmg_host_profile_use_domcaps(host, conn);
    /* The profile holds its own reference. */
    virConnectClose(conn);
    g_assert_null(dmg_host_domcaps_lookup(host, def));
    g_assert_null(dmg_host_domcaps_problem(host, def));
    g_assert_null(dmg_host_domcaps_lookup(host, def));
    g_assert_cmpuint(g_hash_table_size(host->domcaps), ==, 1);

    v = verdict_of(HOSTDEV_DOMAIN(""), host);
    g_assert_cmpuint(g_hash_table_size(host->domcaps), ==, 1);
    g_assert_true(json_object_get_null_member(json_node_get_object(v), "host_pci_passthrough"));
    errs = devices_with(v, "errors", "libvirt-host-no-vfio");
    g_assert_cmpstr(errs, ==, "");
    g_free(errs);
    errs = devices_with(v, "warnings", "domain-caps-unreadable");
    g_assert_cmpstr(errs, ==, "");
}

/* Another tuple is asked on its own; without a connection nothing is. */
static void
test_driver_tuples(void)
{
    virConnectPtr conn = open_example(TRUE);
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new("/nonexistent");
    g_autoptr(dmgDomainDef) a = parse_domain(HOSTDEV_DOMAIN(""));
    g_autoptr(dmgDomainDef) b = parse_domain(
        "<domain type='qemu'><name>b</name><memory unit='MiB'>64</memory>"
        "<os><type>hvm</type></os></domain>");
    g_autoptr(dmgHostProfile) none = dmg_host_profile_new("/nonexistent");

    dmg_host_profile_use_domcaps(host, conn);
    virConnectClose(conn);
    g_assert_null(dmg_host_domcaps_lookup(host, a));
    g_assert_null(dmg_host_domcaps_lookup(host, b));
    g_assert_null(dmg_host_domcaps_lookup(host, a));
    g_assert_cmpuint(g_hash_table_size(host->domcaps), ==, 2);
    /* A new connection forgets the answers. */
    conn = open_example(TRUE);
    dmg_host_profile_use_domcaps(host, conn);
    virConnectClose(conn);
    g_assert_cmpuint(g_hash_table_size(host->domcaps), ==, 0);

    g_assert_null(dmg_host_domcaps_lookup(none, a));
    g_assert_null(none->domcaps);
}

/* What @fn(@data) writes to standard error (fd 2). */
static char *
stderr_of(void (*fn)(gpointer), gpointer data)
{
    g_autofree char *path = NULL;
    g_autoptr(GError) err = NULL;
    char *out = NULL;
    int fd = g_file_open_tmp("dmg-test-stderr-XXXXXX", &path, &err);
    int saved;

    g_assert_no_error(err);
    fflush(stderr);
    saved = dup(2);
    g_assert_cmpint(dup2(fd, 2), ==, 2);
    fn(data);
    fflush(stderr);
    g_assert_cmpint(dup2(saved, 2), ==, 2);
    close(saved);
    close(fd);
    g_assert_true(g_file_get_contents(path, &out, NULL, &err));
    g_unlink(path);
    return out;
}

/* Ask a read-only and a read-write connection, each refusing. */
static void
lookup_refused(gpointer data)
{
    const dmgDomainDef *def = data;

    for (int rw = 0; rw < 2; rw++) {
        virConnectPtr conn = open_example(rw);
        g_autoptr(dmgHostProfile) host = dmg_host_profile_new("/nonexistent");

        dmg_host_profile_use_domcaps(host, conn);
        virConnectClose(conn);
        g_assert_null(dmg_host_domcaps_lookup(host, def));
    }
}

/* libvirt's refusal is not printed: with libvirt's printing silenced as
 * dmg_libvirt_open() silences it, the lookup leaves stderr empty; and
 * it would show, were libvirt's default handler in place. */
static void
test_driver_quiet(void)
{
    g_autoptr(dmgDomainDef) def = parse_domain(HOSTDEV_DOMAIN(""));
    g_autofree char *silenced = stderr_of(lookup_refused, def);
    g_autofree char *loud = NULL;

    g_assert_cmpstr(silenced, ==, "");
    virSetErrorFunc(NULL, NULL);
    loud = stderr_of(lookup_refused, def);
    virSetErrorFunc(NULL, quiet);
    g_assert_nonnull(strstr(loud, "read only access prevents virConnectGetDomainCapabilities"));
}

/* ---- the rule without domain capabilities ------------------------------- */

/* --xml, the hook: no connection, so nothing about the host's VFIO; the
 * legacy kvm backend is refused whatever the host. */
static void
test_rule_kvm_backend(void)
{
    g_autofree char *host1 = source_path("tests", "sysfs", "host1", NULL);
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new(host1);
    g_autoptr(JsonNode) kvm = verdict_of(HOSTDEV_DOMAIN("<driver name='kvm'/>"), host);
    g_autoptr(JsonNode) vfio = verdict_of(HOSTDEV_DOMAIN("<driver name='vfio'/>"), host);
    g_autofree char *kvm_errs = devices_with(kvm, "errors", "libvirt-hostdev-backend-kvm");
    g_autofree char *kvm_novfio = devices_with(kvm, "errors", "libvirt-host-no-vfio");
    g_autofree char *vfio_errs = devices_with(vfio, "errors", "libvirt-hostdev-backend-kvm");
    JsonArray *errors = json_object_get_array_member(json_node_get_object(kvm), "errors");
    const char *msg = NULL;

    g_assert_cmpstr(kvm_errs, ==, "ua-net0,ua-gpu0");
    g_assert_cmpstr(kvm_novfio, ==, "");
    g_assert_cmpstr(vfio_errs, ==, "");
    g_assert_true(json_object_get_null_member(json_node_get_object(kvm), "host_pci_passthrough"));
    for (guint i = 0; i < json_array_get_length(errors); i++) {
        JsonObject *f = json_array_get_object_element(errors, i);

        if (g_str_equal(json_object_get_string_member(f, "code"), "libvirt-hostdev-backend-kvm"))
            msg = json_object_get_string_member(f, "message");
    }
    g_assert_nonnull(msg);
    g_assert_nonnull(strstr(msg, "\"unsupported configuration: host doesn't support legacy PCI passthrough\""));
}

/* ---- the parser ---------------------------------------------------------- */

/* `virsh domcapabilities` of libvirt 9.0 and QEMU 7.2 on a host without
 * IOMMU or /dev/vfio (captured from tests/libvirt-daemon.sh's daemon). */
static void
test_parse_no_vfio(void)
{
    gsize len;
    g_autofree char *xml = load_fixture("qemu-7.2-pc-no-vfio.xml", &len);
    dmgDomainCaps caps = { true, true };
    gboolean known = FALSE;
    g_autoptr(GError) err = NULL;

    g_assert_nonnull(strstr(xml, "<enum name='pciBackend'/>"));
    g_assert_true(dmg_domcaps_parse(xml, len, &caps, &known, &err));
    g_assert_no_error(err);
    g_assert_true(known);
    g_assert_false(caps.pci_backend_default);
    g_assert_false(caps.pci_backend_vfio);
}

/* libvirt's own test data for QEMU 7.2 on a host with VFIO
 * (tests/domaincapsdata/qemu_7.2.0-q35.x86_64.xml). */
static void
test_parse_vfio(void)
{
    gsize len;
    g_autofree char *xml = load_fixture("qemu_7.2.0-q35.x86_64.xml", &len);
    dmgDomainCaps caps = { 0 };
    gboolean known = FALSE;
    g_autoptr(GError) err = NULL;

    g_assert_true(dmg_domcaps_parse(xml, len, &caps, &known, &err));
    g_assert_no_error(err);
    g_assert_true(known);
    g_assert_true(caps.pci_backend_default);
    g_assert_true(caps.pci_backend_vfio);
}

static void
assert_refused(const char *xml, gsize len, const char *why, const char *secret)
{
    dmgDomainCaps caps;
    gboolean known = TRUE;
    g_autoptr(GError) err = NULL;

    g_assert_false(dmg_domcaps_parse(xml, len, &caps, &known, &err));
    g_assert_nonnull(err);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, why));
    if (secret)
        g_assert_null(strstr(err->message, secret));
    g_assert_false(known);
}

static void
test_parse_refused(void)
{
    static const char doctype[] =
        "<!DOCTYPE domainCapabilities [<!ENTITY x 'vfio'>]>"
        "<domainCapabilities><devices><hostdev><enum name='pciBackend'>"
        "<value>&x;</value></enum></hostdev></devices></domainCapabilities>";
    static const char broken[] =
        "<domainCapabilities>\n<devices>\n<hostdev SECRETVALUE>\n</domainCapabilities>";
    static const char other[] = "<capabilities><host/></capabilities>";
    static const char nohostdev[] =
        "<domainCapabilities><devices><hostdev supported='no'/></devices></domainCapabilities>";
    static const char odd[] =
        "<domainCapabilities><devices><hostdev><enum name='pciBackend'>"
        "<value> vfio </value><value>kvm</value><x:value xmlns:x='urn:x'>default</x:value>"
        "</enum></hostdev></devices></domainCapabilities>";
    g_autoptr(GString) big = g_string_new("<domainCapabilities><!-- ");
    dmgDomainCaps caps;
    gboolean known;
    g_autoptr(GError) err = NULL;

    assert_refused(doctype, strlen(doctype), "<!DOCTYPE>", NULL);
    assert_refused(broken, strlen(broken), "not well-formed XML (line 3)", "SECRETVALUE");
    assert_refused(other, strlen(other), "not a <domainCapabilities>", NULL);
    assert_refused("", 0, "not well-formed", NULL);
    while (big->len <= DMG_DOMCAPS_XML_MAX)
        g_string_append(big, "SECRETVALUE SECRETVALUE ");
    g_string_append(big, "--></domainCapabilities>");
    assert_refused(big->str, big->len, "longer than 1048576 bytes", "SECRETVALUE");

    /* No pciBackend: libvirt did not say, and that is not an error. */
    g_assert_true(dmg_domcaps_parse(nohostdev, strlen(nohostdev), &caps, &known, &err));
    g_assert_no_error(err);
    g_assert_false(known);
    /* Values are trimmed; unknown ones and other namespaces do not count. */
    g_assert_true(dmg_domcaps_parse(odd, strlen(odd), &caps, &known, &err));
    g_assert_true(known);
    g_assert_true(caps.pci_backend_vfio);
    g_assert_false(caps.pci_backend_default);
}

/* ---- one thread per profile ---------------------------------------------- */

#define THREADS 6
#define ROUNDS 20

static gpointer
thread_main(gpointer data)
{
    const char *const *fixtures = data;
    virConnectPtr conn = open_example(TRUE);
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new("/nonexistent");
    g_autoptr(dmgDomainDef) def = parse_domain(HOSTDEV_DOMAIN(""));

    dmg_host_profile_use_domcaps(host, conn);
    virConnectClose(conn);
    for (guint r = 0; r < ROUNDS; r++) {
        for (guint f = 0; f < 2; f++) {
            gsize len;
            g_autofree char *xml = load_fixture(fixtures[f], &len);
            dmgDomainCaps caps;
            gboolean known = FALSE;
            g_autoptr(GError) err = NULL;

            g_assert_true(dmg_domcaps_parse(xml, len, &caps, &known, &err));
            g_assert_true(known);
            g_assert_cmpint(caps.pci_backend_vfio, ==, f == 1);
        }
        g_assert_null(dmg_host_domcaps_lookup(host, def));
        g_assert_cmpuint(g_hash_table_size(host->domcaps), ==, 1);
    }
    return NULL;
}

/* Profiles in different threads at once: nothing shared. */
static void
test_threads(void)
{
    static const char *const fixtures[] = {
        "qemu-7.2-pc-no-vfio.xml", "qemu_7.2.0-q35.x86_64.xml",
    };
    GThread *t[THREADS];

    /* libvirt's one-time initialization (virInitialize) in this thread. */
    virConnectClose(open_example(TRUE));
    for (guint i = 0; i < THREADS; i++)
        t[i] = g_thread_new("domcaps", thread_main, (gpointer)fixtures);
    for (guint i = 0; i < THREADS; i++)
        g_thread_join(t[i]);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* As dmg_libvirt_open() does: libvirt's errors are not printed. */
    virSetErrorFunc(NULL, quiet);

    g_test_add_data_func("/host-domcaps/test-driver/read-write", GINT_TO_POINTER(TRUE),
                         test_driver_unknown);
    g_test_add_data_func("/host-domcaps/test-driver/read-only", GINT_TO_POINTER(FALSE),
                         test_driver_unknown);
    g_test_add_func("/host-domcaps/test-driver/tuples", test_driver_tuples);
    g_test_add_func("/host-domcaps/test-driver/quiet", test_driver_quiet);
    g_test_add_func("/host-domcaps/rule/kvm-backend", test_rule_kvm_backend);
    g_test_add_func("/host-domcaps/parse/no-vfio", test_parse_no_vfio);
    g_test_add_func("/host-domcaps/parse/vfio", test_parse_vfio);
    g_test_add_func("/host-domcaps/parse/refused", test_parse_refused);
    g_test_add_func("/host-domcaps/threads", test_threads);
    return g_test_run();
}

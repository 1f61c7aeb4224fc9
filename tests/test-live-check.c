/*
 * test-live-check.c: reading QEMU's query-migrate answer as libvirt 9.0
 * reads it (qemuMonitorJSONGetMigrationBlockers()), and comparing it with
 * the predicted qemu-layer blockers.  The replies are QEMU's reply
 * shapes; the daemon test (libvirt-daemon.sh) asks a real QEMU.
 */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "check.h"
#include "host_profile.h"
#include "live_check.h"
#include "qemu_profile.h"

#define NO_VFIO_MIGRATION "VFIO device doesn't support migration"
#define IVSHMEM "Migration is disabled when using feature 'peer mode' in device 'ivshmem'"

static JsonNode *
verdict_for(const char *name, const char *qemu_version, const char *libvirt_version)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "domains", name, NULL);
    g_autofree char *root = g_test_build_filename(G_TEST_DIST, "sysfs", "host1", NULL);
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new(root);
    g_autoptr(dmgQemuProfile) qemu = dmg_qemu_profile_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *xml = NULL;
    gsize len;
    JsonNode *v;

    dmg_host_profile_read_sysfs(host);
    host->kvm_sync_mmu = 1;
    g_assert_true(dmg_libvirt_profile_set_version(&host->libvirt, libvirt_version, NULL));
    g_assert_true(dmg_qemu_profile_set_version(qemu, qemu_version, NULL));
    g_assert_true(g_file_get_contents(path, &xml, &len, NULL));
    v = dmg_check_xml(xml, len, name, host, qemu, &err);
    g_assert_no_error(err);
    return v;
}

static JsonObject *
live_of(JsonNode *v)
{
    JsonObject *mig = json_object_get_object_member(json_node_get_object(v), "migration");

    return json_object_get_object_member(mig, "live");
}

static JsonObject *
differ_warning(JsonNode *v)
{
    JsonArray *w = json_object_get_array_member(json_node_get_object(v), "warnings");
    JsonObject *found = NULL;

    for (guint i = 0; i < json_array_get_length(w); i++) {
        JsonObject *o = json_array_get_object_element(w, i);

        if (g_str_equal(json_object_get_string_member(o, "code"), "live-blockers-differ")) {
            g_assert_null(found);
            found = o;
        }
    }
    return found;
}

static void
test_parse_blockers(void)
{
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) two = dmg_live_parse_blockers("{\"return\": {\"status\": \"setup\", \"blocked-reasons\": [\"" IVSHMEM "\", \"non-migratable device: 0000:00:04.0/vfio\"]}, \"id\": \"libvirt-12\"}", &err);
    g_auto(GStrv) none = NULL;
    g_auto(GStrv) cut = NULL;
    g_auto(GStrv) odd = NULL;

    g_assert_no_error(err);
    g_assert_cmpuint(g_strv_length(two), ==, 2);
    g_assert_cmpstr(two[0], ==, IVSHMEM);
    g_assert_cmpstr(two[1], ==, "non-migratable device: 0000:00:04.0/vfio");
    /* QEMU leaves the member out when nothing blocks. */
    none = dmg_live_parse_blockers("{\"return\": {}, \"id\": \"libvirt-13\"}", &err);
    g_assert_no_error(err);
    g_assert_cmpuint(g_strv_length(none), ==, 0);
    /* libvirt keeps the reasons before a non-string. */
    cut = dmg_live_parse_blockers("{\"return\": {\"blocked-reasons\": [\"a\", 1, \"b\"]}}", &err);
    g_assert_no_error(err);
    g_assert_cmpuint(g_strv_length(cut), ==, 1);
    g_assert_cmpstr(cut[0], ==, "a");
    /* virJSONValueObjectGetArray() finds no array: nothing blocks. */
    odd = dmg_live_parse_blockers("{\"return\": {\"blocked-reasons\": \"a\"}}", &err);
    g_assert_no_error(err);
    g_assert_cmpuint(g_strv_length(odd), ==, 0);
}

static void
test_parse_errors(void)
{
    static const struct {
        const char *reply;
        const char *message;
    } cases[] = {
        { "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command query-migrate has not been found\"}}",
          "unable to execute QEMU command 'query-migrate': The command query-migrate has not been found" },
        { "{\"error\": {}}", "unable to execute QEMU command 'query-migrate': unknown QEMU command error" },
        { "{\"id\": \"libvirt-1\"}", "unable to execute QEMU command 'query-migrate'" },
        { "{\"return\": []}", "unexpected type returned by QEMU command 'query-migrate'" },
        { "[1]", "QEMU's reply to 'query-migrate' is not a JSON object" },
        { "{\"return\": ", "QEMU's reply to 'query-migrate' is not a JSON object" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        char **r = dmg_live_parse_blockers(cases[i].reply, &err);

        g_assert_null(r);
        g_assert_nonnull(err);
        g_assert_cmpstr(err->message, ==, cases[i].message);
    }
}

static void
test_parse_version(void)
{
    g_autoptr(GError) err = NULL;
    int major = 0, minor = 0;
    g_autofree char *v = dmg_live_parse_version("{\"return\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7+deb12u18\"}, \"id\": \"libvirt-11\"}",
                                                &major, &minor, &err);
    char *bad;

    g_assert_no_error(err);
    g_assert_cmpstr(v, ==, "7.2.22");
    g_assert_cmpint(major, ==, 7);
    g_assert_cmpint(minor, ==, 2);
    bad = dmg_live_parse_version("{\"return\": {\"package\": \"\"}}", &major, &minor, &err);
    g_assert_null(bad);
    g_assert_nonnull(err);
}

/* A verdict from XML alone: QEMU was not asked. */
static void
test_unchecked_default(void)
{
    g_autoptr(JsonNode) v = verdict_for("no-hostdev.xml", "7.2", "9.0");
    JsonObject *live = live_of(v);

    g_assert_false(json_object_get_boolean_member(live, "checked"));
    g_assert_true(json_object_get_null_member(live, "qemu_version"));
    g_assert_true(json_object_get_null_member(live, "blocked_reasons"));
    g_assert_true(json_object_get_null_member(live, "confirmed"));
    g_assert_true(json_object_get_null_member(live, "error"));
    dmg_live_record_unchecked(v, "read only access prevents virDomainQemuMonitorCommand");
    g_assert_false(json_object_get_boolean_member(live, "checked"));
    g_assert_cmpstr(json_object_get_string_member(live, "error"), ==,
                    "read only access prevents virDomainQemuMonitorCommand");
    g_assert_null(differ_warning(v));
}

/* Two vfio-pci functions on QEMU 7.2: the same reason twice; QEMU's list
 * may come in another order. */
static void
test_confirmed(void)
{
    g_autoptr(JsonNode) v = verdict_for("pci-gpu-audio-shared-group.xml", "7.2", "9.0");
    char *reasons[] = { NO_VFIO_MIGRATION, NO_VFIO_MIGRATION, NULL };
    JsonObject *live;
    JsonArray *arr;

    dmg_live_record(v, "7.2.22", reasons);
    live = live_of(v);
    g_assert_true(json_object_get_boolean_member(live, "checked"));
    g_assert_true(json_object_get_boolean_member(live, "confirmed"));
    g_assert_cmpstr(json_object_get_string_member(live, "qemu_version"), ==, "7.2.22");
    arr = json_object_get_array_member(live, "blocked_reasons");
    g_assert_cmpuint(json_array_get_length(arr), ==, 2);
    g_assert_null(differ_warning(v));
}

static void
test_differs(void)
{
    g_autoptr(JsonNode) v = verdict_for("pci-gpu-audio-shared-group.xml", "7.2", "9.0");
    g_autoptr(JsonNode) plain = verdict_for("no-hostdev.xml", "7.2", "9.0");
    char *one[] = { NO_VFIO_MIGRATION, NULL };
    char *ivshmem[] = { IVSHMEM, NULL };
    JsonObject *w;
    const char *msg;

    /* One reason fewer than predicted is a difference too. */
    dmg_live_record(v, "7.2.22", one);
    g_assert_false(json_object_get_boolean_member(live_of(v), "confirmed"));
    g_assert_nonnull(differ_warning(v));
    /* A blocker dmaguard does not model: both lists in the message. */
    dmg_live_record(plain, "7.2.22", ivshmem);
    g_assert_false(json_object_get_boolean_member(live_of(plain), "confirmed"));
    w = differ_warning(plain);
    g_assert_nonnull(w);
    g_assert_true(json_object_get_null_member(w, "device"));
    msg = json_object_get_string_member(w, "message");
    g_assert_nonnull(strstr(msg, "\"" IVSHMEM "\""));
    g_assert_nonnull(strstr(msg, "predicted none"));
}

/* libvirt's own refusals are not QEMU's: on libvirt 8.5 the SCSI
 * hostdev is refused by libvirt, and QEMU lists nothing. */
static void
test_libvirt_layer_ignored(void)
{
    g_autoptr(JsonNode) v = verdict_for("scsi-hostdev.xml", "7.2", "8.5");
    char *none[] = { NULL };
    JsonObject *mig = json_object_get_object_member(json_node_get_object(v), "migration");

    g_assert_cmpstr(json_object_get_string_member(mig, "refused_by"), ==, "libvirt");
    dmg_live_record(v, "7.2.22", none);
    g_assert_true(json_object_get_boolean_member(live_of(v), "confirmed"));
    g_assert_null(differ_warning(v));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/live-check/parse/blockers", test_parse_blockers);
    g_test_add_func("/live-check/parse/errors", test_parse_errors);
    g_test_add_func("/live-check/parse/version", test_parse_version);
    g_test_add_func("/live-check/unchecked", test_unchecked_default);
    g_test_add_func("/live-check/confirmed", test_confirmed);
    g_test_add_func("/live-check/differs", test_differs);
    g_test_add_func("/live-check/libvirt-layer-ignored", test_libvirt_layer_ignored);
    return g_test_run();
}

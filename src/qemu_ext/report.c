/*
 * report.c: text and JSON reports.
 */
#include "dmg_text.h"
#include "report.h"

#include <inttypes.h>
#include <string.h>

#include "dmg_i18n.h"
#include "verdict.h"

/* One finding: "hostdev0 (IOMMU group 1) [code]: message".  Messages
 * name their device first, as QEMU's do ("hostdev0: ..."); that prefix
 * is not repeated. */
static void
dmg_report_finding(GString *out, JsonObject *o)
{
    const char *dev = json_object_get_null_member(o, "device")
                      ? NULL : json_object_get_string_member(o, "device");
    const char *msg = json_object_get_string_member(o, "message");
    JsonNode *group = json_object_get_member(o, "group");
    gsize dlen = dev ? strlen(dev) : 0;

    if (dev) {
        g_string_append_printf(out, "%s ", dev);
        if (strncmp(msg, dev, dlen) == 0 && msg[dlen] == ':' && msg[dlen + 1] == ' ')
            msg += dlen + 2;
    }
    if (group && !JSON_NODE_HOLDS_NULL(group))
        g_string_append_printf(out, _("(IOMMU group %" PRId64 ") "),
                               json_node_get_int(group));
    g_string_append_printf(out, "[%s]: %s\n",
                           json_object_get_string_member(o, "code"), msg);
}

static void
dmg_report_findings(GString *out, JsonObject *dom, const char *member,
                    const char *label)
{
    JsonArray *arr = json_object_get_array_member(dom, member);

    for (guint i = 0; i < json_array_get_length(arr); i++) {
        g_string_append_printf(out, "  %s: ", label);
        dmg_report_finding(out, json_array_get_object_element(arr, i));
    }
}

static void
dmg_report_balloon(GString *out, JsonObject *dom)
{
    JsonObject *b = json_object_get_object_member(dom, "balloon");
    JsonArray *inh = json_object_get_array_member(b, "inhibitors");
    bool has_dev = !json_object_get_null_member(b, "device");

    if (!has_dev)
        g_string_append(out, _("  balloon: none (no virtio memballoon device)\n"));
    else if (json_object_get_boolean_member(b, "effective"))
        g_string_append_printf(out, json_object_get_boolean_member(b, "partial")
                               ? _("  balloon %s: effective, partially (huge pages)\n")
                               : _("  balloon %s: effective, inflating returns memory to the host\n"),
                               json_object_get_string_member(b, "device"));
    else
        g_string_append_printf(out, _("  balloon %s: INERT, inflating it and free page reporting return no memory to the host\n"),
                               json_object_get_string_member(b, "device"));
    if (has_dev && json_object_get_boolean_member_with_default(b, "implicit", FALSE))
        g_string_append(out, _("    (the XML has no <memballoon>: libvirt adds this one; <memballoon model='none'/> removes it)\n"));
    for (guint i = 0; has_dev && i < json_array_get_length(inh); i++) {
        JsonObject *o = json_array_get_object_element(inh, i);
        JsonArray *devs = json_object_get_array_member(o, "devices");
        JsonNode *group = json_object_get_member(o, "group");

        g_string_append(out, _("    inhibitor: "));
        for (guint j = 0; j < json_array_get_length(devs); j++)
            g_string_append_printf(out, "%s%s", j ? ", " : "",
                                   json_array_get_string_element(devs, j));
        if (json_array_get_length(devs))
            g_string_append_c(out, ' ');
        if (!JSON_NODE_HOLDS_NULL(group))
            g_string_append_printf(out, _("(IOMMU group %" PRId64 ") "),
                                   json_node_get_int(group));
        g_string_append_printf(out, "[%s]: %s\n",
                               json_object_get_string_member(o, "code"),
                               json_object_get_string_member(o, "message"));
    }
    if (json_object_get_boolean_member(b, "coordinated_discard"))
        g_string_append(out, _("  virtio-mem: coordinated discard, resizes guest memory even with VFIO\n"));
}

/* migration.live: what the running QEMU said, when it was asked. */
static void
dmg_report_live(GString *out, JsonObject *mig)
{
    JsonObject *live = json_object_has_member(mig, "live")
                       ? json_object_get_object_member(mig, "live") : NULL;
    g_autoptr(GString) reasons = g_string_new(NULL);
    JsonArray *arr;
    const char *version;

    if (!live)
        return;
    if (!json_object_get_boolean_member(live, "checked")) {
        if (!json_object_get_null_member(live, "error"))
            g_string_append_printf(out, _("    QEMU not asked live: %s\n"),
                                   json_object_get_string_member(live, "error"));
        return;
    }
    version = json_object_get_string_member(live, "qemu_version");
    arr = json_object_get_array_member(live, "blocked_reasons");
    for (guint i = 0; i < json_array_get_length(arr); i++)
        g_string_append_printf(reasons, "%s%s", i ? "; " : "",
                               json_array_get_string_element(arr, i));
    if (!json_object_get_boolean_member(live, "confirmed"))
        g_string_append_printf(out, _("    QEMU %s asked live (query-migrate) lists OTHER blockers: %s\n"),
                               version, reasons->len ? reasons->str : _("none"));
    else if (reasons->len)
        g_string_append_printf(out, _("    QEMU %s asked live (query-migrate) confirms the blockers: %s\n"),
                               version, reasons->str);
    else
        g_string_append_printf(out, _("    QEMU %s asked live (query-migrate): no blockers, as predicted\n"),
                               version);
}

static void
dmg_report_migration(GString *out, JsonObject *dom)
{
    JsonObject *mig = json_object_get_object_member(dom, "migration");
    JsonArray *bl = json_object_get_array_member(mig, "blockers");
    JsonArray *conds = json_object_get_array_member(mig, "conditions");

    g_string_append(out, json_object_get_boolean_member(mig, "allowed")
                    ? _("  migration: allowed\n") : _("  migration: BLOCKED\n"));
    if (json_object_has_member(mig, "virsh_error") &&
        !json_object_get_null_member(mig, "virsh_error")) {
        const char *layer = json_object_get_string_member(mig, "refused_by");

        g_string_append_printf(out, strcmp(layer, "libvirt") == 0
                               ? _("    libvirt refuses it before asking QEMU; virsh migrate prints: error: %s\n")
                               : _("    QEMU's blockers refuse it; virsh migrate prints: error: %s\n"),
                               json_object_get_string_member(mig, "virsh_error"));
    }
    for (guint i = 0; i < json_array_get_length(bl); i++) {
        JsonObject *o = json_array_get_object_element(bl, i);

        g_string_append_printf(out, _("    blocker (%s): "),
                               json_object_get_string_member(o, "layer"));
        dmg_report_finding(out, o);
    }
    for (guint i = 0; i < json_array_get_length(conds); i++) {
        JsonObject *o = json_array_get_object_element(conds, i);

        g_string_append_printf(out, _("    condition: [%s]: %s\n"),
                               json_object_get_string_member(o, "code"),
                               json_object_get_string_member(o, "message"));
    }
    dmg_report_live(out, mig);
}

static void
dmg_report_memlock(GString *out, JsonObject *dom)
{
    g_autofree char *size = NULL;
    g_autofree char *exact = NULL;
    gint64 bytes;

    if (json_object_get_boolean_member_with_default(dom, "memlock_exceeds", FALSE)) {
        g_string_append(out, _("  memlock limit: MORE THAN 8 EiB, past what a 64-bit signed byte count holds (libvirt's own KiB << 10 wraps past 16 EiB); lower <memory> or the number of VFIO devices behind the vIOMMU\n"));
        return;
    }
    if (json_object_get_null_member(dom, "memlock_bytes")) {
        g_string_append(out, _("  memlock limit: unlimited (<locked/>)\n"));
        return;
    }
    bytes = json_object_get_int_member(dom, "memlock_bytes");
    if (bytes == 0) {
        g_string_append(out, _("  memlock limit: none needed\n"));
        return;
    }
    size = g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
    /* The number is formatted first: a PRId64 inside the msgid would make
     * it differ between platforms, and translations would not match. */
    exact = g_strdup_printf("%" G_GINT64_FORMAT, bytes);
    g_string_append_printf(out, _("  memlock limit: %s (%s bytes)\n"), size, exact);
}

/* The host's PCI passthrough, when libvirt's domain capabilities told. */
static void
dmg_report_host_pci(GString *out, JsonObject *dom)
{
    if (!json_object_has_member(dom, "host_pci_passthrough") ||
        json_object_get_null_member(dom, "host_pci_passthrough"))
        return;
    g_string_append(out, json_object_get_boolean_member(dom, "host_pci_passthrough")
                    ? _("  host PCI passthrough: yes (libvirt's domain capabilities list the vfio backend)\n")
                    : _("  host PCI passthrough: NO (libvirt's domain capabilities list no PCI passthrough backend)\n"));
}

/* A copy of @n with every string made safe for a terminal
 * (dmg_text_escape_controls()): the text report prints aliases, paths and
 * messages that come from the domain, and an alias holding "&#10;" must
 * not forge a line such as "migration: allowed" (issue 14).  The JSON
 * output keeps the strings as they are. */
static JsonNode *
dmg_report_escaped(JsonNode *n)
{
    JsonNode *copy;

    switch (json_node_get_node_type(n)) {
    case JSON_NODE_OBJECT: {
        JsonObject *src = json_node_get_object(n);
        JsonObject *dst = json_object_new();
        JsonObjectIter it;
        const char *name;
        JsonNode *member;

        json_object_iter_init(&it, src);
        while (json_object_iter_next(&it, &name, &member))
            json_object_set_member(dst, name, dmg_report_escaped(member));
        copy = json_node_new(JSON_NODE_OBJECT);
        json_node_take_object(copy, dst);
        return copy;
    }
    case JSON_NODE_ARRAY: {
        JsonArray *src = json_node_get_array(n);
        JsonArray *dst = json_array_sized_new(json_array_get_length(src));

        for (guint i = 0; i < json_array_get_length(src); i++)
            json_array_add_element(dst, dmg_report_escaped(json_array_get_element(src, i)));
        copy = json_node_new(JSON_NODE_ARRAY);
        json_node_take_array(copy, dst);
        return copy;
    }
    case JSON_NODE_VALUE:
        if (json_node_get_value_type(n) == G_TYPE_STRING) {
            g_autofree char *safe = dmg_text_escape_controls(json_node_get_string(n));

            return json_node_init_string(json_node_alloc(), safe);
        }
        return json_node_copy(n);
    case JSON_NODE_NULL:
    default:
        return json_node_copy(n);
    }
}

void
dmg_report_text(GString *out, JsonNode *raw)
{
    g_autoptr(JsonNode) verdict = dmg_report_escaped(raw);
    JsonObject *dom = json_node_get_object(verdict);

    g_string_append_printf(out, _("Domain '%s'\n"),
                           json_object_get_string_member(dom, "name"));
    dmg_report_balloon(out, dom);
    dmg_report_migration(out, dom);
    dmg_report_memlock(out, dom);
    dmg_report_host_pci(out, dom);
    dmg_report_findings(out, dom, "errors", _("error"));
    dmg_report_findings(out, dom, "warnings", _("warning"));
}

JsonNode *
dmg_report_qemu(const dmgQemuProfile *qemu)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autofree char *ver = dmg_qemu_version_string(qemu->version);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "emulator");
    if (qemu->emulator)
        json_builder_add_string_value(b, qemu->emulator);
    else
        json_builder_add_null_value(b);
    json_builder_set_member_name(b, "version");
    json_builder_add_string_value(b, ver);
    json_builder_set_member_name(b, "version_detected");
    json_builder_add_boolean_value(b, dmg_qemu_version_detected(qemu));
    json_builder_set_member_name(b, "version_source");
    json_builder_add_string_value(b, dmgQemuVersionSourceTypeToString(qemu->version_source));
    json_builder_set_member_name(b, "features");
    json_builder_begin_array(b);
    for (guint i = 0; i < qemu->features->len; i++)
        json_builder_add_string_value(b, g_ptr_array_index(qemu->features, i));
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

/* Same version, its source and features (the emulator may differ). */
static bool
dmg_report_qemu_equal(JsonObject *a, JsonObject *b)
{
    JsonArray *fa = json_object_get_array_member(a, "features");
    JsonArray *fb = json_object_get_array_member(b, "features");

    if (g_strcmp0(json_object_get_string_member(a, "version"),
                  json_object_get_string_member(b, "version")) != 0 ||
        g_strcmp0(json_object_get_string_member(a, "version_source"),
                  json_object_get_string_member(b, "version_source")) != 0 ||
        json_array_get_length(fa) != json_array_get_length(fb))
        return false;
    for (guint i = 0; i < json_array_get_length(fa); i++) {
        if (g_strcmp0(json_array_get_string_element(fa, i),
                      json_array_get_string_element(fb, i)) != 0)
            return false;
    }
    return true;
}

JsonObject *
dmg_report_common_qemu(GPtrArray *verdicts)
{
    JsonObject *first = NULL;

    for (guint i = 0; verdicts && i < verdicts->len; i++) {
        JsonObject *dom = json_node_get_object(g_ptr_array_index(verdicts, i));
        JsonObject *q = json_object_has_member(dom, "qemu")
            ? json_object_get_object_member(dom, "qemu") : NULL;

        if (!q)
            return NULL;
        if (!first)
            first = q;
        else if (!dmg_report_qemu_equal(first, q))
            return NULL;
    }
    return first;
}

JsonNode *
dmg_report_profile(const dmgHostProfile *host, const dmgQemuProfile *qemu,
                   GPtrArray *verdicts)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) own = dmg_report_qemu(qemu);
    JsonObject *q = dmg_report_common_qemu(verdicts);
    g_autofree char *libvirt = dmg_libvirt_version_string(host->libvirt.version);

    if (!q)
        q = json_node_get_object(own);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "qemu_version");
    json_builder_add_string_value(b, json_object_get_string_member(q, "version"));
    json_builder_set_member_name(b, "qemu_version_detected");
    json_builder_add_boolean_value(b, json_object_get_boolean_member(q, "version_detected"));
    json_builder_set_member_name(b, "qemu_version_source");
    json_builder_add_string_value(b, json_object_get_string_member(q, "version_source"));
    json_builder_set_member_name(b, "qemu_features");
    json_builder_add_value(b, json_node_copy(json_object_get_member(q, "features")));
    json_builder_set_member_name(b, "host_devices");
    json_builder_add_string_value(b, dmgHostDevicesSourceTypeToString(host->devices_source));
    json_builder_set_member_name(b, "sysfs");
    if (host->devices_source == DMG_HOST_DEVICES_SYSFS)
        json_builder_add_string_value(b, host->sysfs_root);
    else
        json_builder_add_null_value(b);
    json_builder_set_member_name(b, "nodedev_uri");
    if (host->devices_source == DMG_HOST_DEVICES_NODEDEV)
        json_builder_add_string_value(b, host->nodedev_uri);
    else
        json_builder_add_null_value(b);
    json_builder_set_member_name(b, "libvirt_version");
    json_builder_add_string_value(b, libvirt);
    json_builder_set_member_name(b, "libvirt_version_source");
    json_builder_add_string_value(b, dmg_libvirt_source_string(host->libvirt.source));
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

void
dmg_report_members(JsonBuilder *b, GPtrArray *verdicts, JsonNode *profile,
                   GPtrArray *not_analyzed)
{
    if (profile) {
        json_builder_set_member_name(b, "profile");
        json_builder_add_value(b, json_node_copy(profile));
    }
    json_builder_set_member_name(b, "domains");
    json_builder_begin_array(b);
    for (guint i = 0; i < verdicts->len; i++)
        json_builder_add_value(b, json_node_copy(g_ptr_array_index(verdicts, i)));
    json_builder_end_array(b);
    if (!not_analyzed)
        return;
    json_builder_set_member_name(b, "not_analyzed");
    json_builder_begin_array(b);
    for (guint i = 0; i < not_analyzed->len; i++)
        json_builder_add_value(b, json_node_copy(g_ptr_array_index(not_analyzed, i)));
    json_builder_end_array(b);
}

char *
dmg_report_json(GPtrArray *verdicts, JsonNode *profile, gboolean pretty)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "version");
    json_builder_add_int_value(b, DMG_VERDICT_FORMAT_VERSION);
    dmg_report_members(b, verdicts, profile, NULL);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, pretty);
    return json_generator_to_data(gen, NULL);
}

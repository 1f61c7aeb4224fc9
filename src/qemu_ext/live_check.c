/*
 * live_check.c: ask the QEMU of a running domain what blocks its
 * migration, as libvirt does before `virsh migrate`, and compare.
 *
 * libvirt 9.0, src/qemu/qemu_migration.c qemuDomainGetMigrationBlockers()
 * and src/qemu/qemu_monitor_json.c qemuMonitorJSONGetMigrationBlockers():
 * `{"execute":"query-migrate"}`; qemuMonitorJSONGetReply() refuses a
 * reply with `error`, without `return`, or whose `return` is not an
 * object; `return.blocked-reasons`, when it is an array, lists QEMU's
 * reasons (fill_source_migration_info(): the migrate_add_blocker()
 * Errors, then "non-migratable device: ..." for unmigratable vmstates).
 * QEMU leaves the member out when nothing blocks, and before 6.0 always;
 * libvirt asks only a QEMU with the capability, here the QEMU's own
 * `query-version` decides.
 *
 * The public API for it is virDomainQemuMonitorCommand() (libvirt-qemu).
 * libvirt runs it under a query job (waiting at most 30 s for another
 * job, VIR_JOB_WAIT_TIME) but waits for QEMU's reply without a deadline
 * (qemuMonitorSend()); the connection's keepalive (libvirt_source.c)
 * only notices a daemon or host that stopped answering.  So the commands
 * run under dmg_libvirt_call_within(), and a domain whose QEMU does not
 * answer within the timeout is "not checked"; the thread is left to
 * finish or to end with the process.
 */
#include "live_check.h"

#include <gio/gio.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dmg_i18n.h"
#include "libvirt_source.h"

/* The object of @reply's `return`, or NULL with @error, as
 * qemuMonitorJSONGetReply() decides. */
static JsonObject *
dmg_live_reply_return(JsonParser *parser, const char *reply, const char *command,
                      GError **error)
{
    JsonNode *root;
    JsonObject *obj;
    JsonNode *ret;

    if (!json_parser_load_from_data(parser, reply, -1, NULL) ||
        !(root = json_parser_get_root(parser)) || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("QEMU's reply to '%s' is not a JSON object"),
                    command);
        return NULL;
    }
    obj = json_node_get_object(root);
    if (json_object_has_member(obj, "error")) {
        JsonNode *err = json_object_get_member(obj, "error");
        const char *desc = NULL;

        if (JSON_NODE_HOLDS_OBJECT(err))
            desc = json_object_get_string_member_with_default(json_node_get_object(err),
                                                              "desc", NULL);
        /* qemuMonitorJSONCheckErrorFull(), qemuMonitorJSONStringifyError() */
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("unable to execute QEMU command '%s': %s"),
                    command, desc ? desc : _("unknown QEMU command error"));
        return NULL;
    }
    ret = json_object_get_member(obj, "return");
    if (!ret) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("unable to execute QEMU command '%s'"),
                    command);
        return NULL;
    }
    if (!JSON_NODE_HOLDS_OBJECT(ret)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("unexpected type returned by QEMU command '%s'"),
                    command);
        return NULL;
    }
    return json_node_get_object(ret);
}

char **
dmg_live_parse_blockers(const char *reply, GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    GPtrArray *out = g_ptr_array_new();
    JsonObject *data = dmg_live_reply_return(parser, reply, "query-migrate", error);
    JsonNode *list;
    JsonArray *arr;

    if (!data) {
        g_ptr_array_free(out, TRUE);
        return NULL;
    }
    list = json_object_get_member(data, "blocked-reasons");
    arr = list && JSON_NODE_HOLDS_ARRAY(list) ? json_node_get_array(list) : NULL;
    for (guint i = 0; arr && i < json_array_get_length(arr); i++) {
        JsonNode *e = json_array_get_element(arr, i);

        /* libvirt stores virJSONValueGetString()'s NULL for a non-string
         * and g_strjoinv() stops there: the reasons before it count. */
        if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
            break;
        g_ptr_array_add(out, g_strdup(json_node_get_string(e)));
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

char *
dmg_live_parse_version(const char *reply, int *major, int *minor, GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonObject *data = dmg_live_reply_return(parser, reply, "query-version", error);
    JsonNode *qemu = data ? json_object_get_member(data, "qemu") : NULL;
    JsonObject *v;

    if (!data)
        return NULL;
    if (!qemu || !JSON_NODE_HOLDS_OBJECT(qemu)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("unexpected type returned by QEMU command '%s'"),
                    "query-version");
        return NULL;
    }
    v = json_node_get_object(qemu);
    *major = (int)json_object_get_int_member_with_default(v, "major", 0);
    *minor = (int)json_object_get_int_member_with_default(v, "minor", 0);
    return g_strdup_printf("%d.%d.%d", *major, *minor,
                           (int)json_object_get_int_member_with_default(v, "micro", 0));
}

static JsonObject *
dmg_live_object(JsonNode *verdict)
{
    JsonObject *mig = json_object_get_object_member(json_node_get_object(verdict), "migration");

    return json_object_get_object_member(mig, "live");
}

void
dmg_live_record_unchecked(JsonNode *verdict, const char *why)
{
    JsonObject *live = dmg_live_object(verdict);

    json_object_set_boolean_member(live, "checked", FALSE);
    json_object_set_null_member(live, "qemu_version");
    json_object_set_null_member(live, "blocked_reasons");
    json_object_set_null_member(live, "confirmed");
    if (why)
        json_object_set_string_member(live, "error", why);
    else
        json_object_set_null_member(live, "error");
}

/* The reasons of the predicted qemu-layer blockers, in verdict order. */
static GPtrArray *
dmg_live_predicted(JsonNode *verdict)
{
    JsonObject *mig = json_object_get_object_member(json_node_get_object(verdict), "migration");
    JsonArray *bl = json_object_get_array_member(mig, "blockers");
    GPtrArray *out = g_ptr_array_new();

    for (guint i = 0; i < json_array_get_length(bl); i++) {
        JsonObject *b = json_array_get_object_element(bl, i);

        if (g_str_equal(json_object_get_string_member(b, "layer"), "qemu"))
            g_ptr_array_add(out, (gpointer)json_object_get_string_member(b, "reason"));
    }
    return out;
}

static gint
dmg_live_strcmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The same reasons, each as often, in any order: QEMU lists blockers by
 * when they were added, which follows device realize order. */
static bool
dmg_live_same(GPtrArray *predicted, char *const *reasons)
{
    g_autoptr(GPtrArray) a = g_ptr_array_copy(predicted, NULL, NULL);
    g_autoptr(GPtrArray) b = g_ptr_array_new();

    for (char *const *r = reasons; *r; r++)
        g_ptr_array_add(b, *r);
    if (a->len != b->len)
        return false;
    g_ptr_array_sort(a, dmg_live_strcmp);
    g_ptr_array_sort(b, dmg_live_strcmp);
    for (guint i = 0; i < a->len; i++) {
        if (strcmp(g_ptr_array_index(a, i), g_ptr_array_index(b, i)) != 0)
            return false;
    }
    return true;
}

/* "\"A\", \"B\"", or "none". */
static char *
dmg_live_list(const char *const *items, guint n)
{
    g_autoptr(GString) s = g_string_new(NULL);

    if (!n)
        return g_strdup(_("none"));
    for (guint i = 0; i < n; i++)
        g_string_append_printf(s, "%s\"%s\"", i ? ", " : "", items[i]);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static void
dmg_live_warn(JsonObject *dom, const char *code, const char *message)
{
    JsonObject *w = json_object_new();

    json_object_set_string_member(w, "code", code);
    json_object_set_null_member(w, "device");
    json_object_set_null_member(w, "group");
    json_object_set_string_member(w, "message", message);
    json_array_add_object_element(json_object_get_array_member(dom, "warnings"), w);
}

void
dmg_live_record(JsonNode *verdict, const char *qemu_version, char *const *reasons)
{
    JsonObject *live = dmg_live_object(verdict);
    g_autoptr(GPtrArray) predicted = dmg_live_predicted(verdict);
    JsonArray *arr = json_array_new();
    bool same = dmg_live_same(predicted, reasons);

    for (char *const *r = reasons; *r; r++)
        json_array_add_string_element(arr, *r);
    json_object_set_boolean_member(live, "checked", TRUE);
    json_object_set_string_member(live, "qemu_version", qemu_version);
    json_object_set_array_member(live, "blocked_reasons", arr);
    json_object_set_boolean_member(live, "confirmed", same);
    json_object_set_null_member(live, "error");
    if (!same) {
        g_autofree char *qemu = dmg_live_list((const char *const *)reasons,
                                              g_strv_length((char **)reasons));
        g_autofree char *ours = dmg_live_list((const char *const *)predicted->pdata,
                                              predicted->len);
        g_autofree char *msg = g_strdup_printf(_("the running QEMU %s lists the migration blockers %s, dmaguard predicted %s. libvirt allows or refuses the migration by QEMU's list; the difference is a device or rule dmaguard does not model, or another host or QEMU than the one judged for"),
                                               qemu_version, qemu, ours);

        dmg_live_warn(json_node_get_object(verdict), "live-blockers-differ", msg);
    }
}

/* One domain's monitor commands, run by dmg_libvirt_call_within(). */
typedef struct {
    virDomainPtr dom;
    char *version_reply;
    char *migrate_reply;
    char *error;
} dmgLiveQuery;

static void
dmg_live_query_free(gpointer opaque)
{
    dmgLiveQuery *q = opaque;

    virDomainFree(q->dom);
    g_free(q->version_reply);
    g_free(q->migrate_reply);
    g_free(q->error);
    g_free(q);
}

static void
dmg_live_query(gpointer opaque)
{
    dmgLiveQuery *q = opaque;
    char *version = NULL;
    char *migrate = NULL;

    if (virDomainQemuMonitorCommand(q->dom, "{\"execute\":\"query-version\"}", &version, 0) < 0 ||
        virDomainQemuMonitorCommand(q->dom, "{\"execute\":\"query-migrate\"}", &migrate, 0) < 0)
        q->error = dmg_libvirt_last_message();
    q->version_reply = g_strdup(version);
    q->migrate_reply = g_strdup(migrate);
    free(version);
    free(migrate);
}

void
dmg_live_check_domain(virConnectPtr conn, const char *name, guint timeout_s,
                      JsonNode *verdict)
{
    virDomainPtr dom = virDomainLookupByName(conn, name);
    dmgLiveQuery *q;
    g_autofree char *version = NULL;
    g_auto(GStrv) reasons = NULL;
    g_autoptr(GError) err = NULL;
    int major = 0, minor = 0;
    int active;

    if (!dom) {
        g_autofree char *msg = dmg_libvirt_last_message();

        dmg_live_record_unchecked(verdict, msg);
        return;
    }
    /* Only a running domain has a QEMU to ask. */
    if ((active = virDomainIsActive(dom)) != 1) {
        g_autofree char *msg = active < 0 ? dmg_libvirt_last_message() : NULL;

        virDomainFree(dom);
        dmg_live_record_unchecked(verdict, msg);
        return;
    }
    q = g_new0(dmgLiveQuery, 1);
    q->dom = dom;
    if (!dmg_libvirt_call_within(dmg_live_query, q, dmg_live_query_free, timeout_s)) {
        /* The thread keeps @q and frees it if QEMU ever answers. */
        g_autofree char *msg = g_strdup_printf(_("QEMU did not answer within %u s; libvirt waits for its monitor without a deadline of its own, and the domain stays busy with this query until QEMU answers"),
                                               timeout_s);

        dmg_live_record_unchecked(verdict, msg);
        return;
    }
    if (q->error) {
        dmg_live_record_unchecked(verdict, q->error);
    } else if (!(version = dmg_live_parse_version(q->version_reply, &major, &minor, &err)) ||
               !(reasons = dmg_live_parse_blockers(q->migrate_reply, &err))) {
        dmg_live_record_unchecked(verdict, err->message);
    } else if (major < 6) {
        g_autofree char *msg = g_strdup_printf(_("QEMU %s does not report query-migrate's blocked-reasons (QEMU 6.0 and later do)"),
                                               version);

        dmg_live_record_unchecked(verdict, msg);
    } else {
        dmg_live_record(verdict, version, reasons);
    }
    dmg_live_query_free(q);
}

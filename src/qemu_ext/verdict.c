/*
 * verdict.c: balloon, migration and memlock verdicts, read off the model.
 * No rule is decided here: the inhibitors are the discard manager's
 * holders, the blockers are the registry's entries, the memlock limit is
 * libvirt_memlock.c's.
 */
#include "verdict.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <string.h>

#include "virtio/balloon.h"
#include "dmg_i18n.h"
#include "domain_realize.h"
#include "host_domcaps.h"
#include "libvirt_memlock.h"
#include "vfio/vfio.h"
#include "virtio/memory_device.h"

static void
dmg_json_group(JsonBuilder *b, int group)
{
    json_builder_set_member_name(b, "group");
    if (group >= 0)
        json_builder_add_int_value(b, group);
    else
        json_builder_add_null_value(b);
}

static void
dmg_json_string_or_null(JsonBuilder *b, const char *name, const char *val)
{
    json_builder_set_member_name(b, name);
    if (val)
        json_builder_add_string_value(b, val);
    else
        json_builder_add_null_value(b);
}

static int
dmg_alias_group(const dmgDomainDef *def, dmgHostProfile *host, const char *alias)
{
    const dmgHostdevDef *h = alias ? dmg_domain_def_find_hostdev(def, alias) : NULL;

    if (!h || (h->type != DMG_HOSTDEV_SUBSYS_PCI && h->type != DMG_HOSTDEV_SUBSYS_MDEV))
        return -1;
    return dmg_hostdev_group(def, h, host);
}

static char *
dmg_inhibitor_message(const discard_inhibitor *who, bool have_virtio_mem)
{
    g_autoptr(GString) devs = g_string_new(NULL);

    if (g_str_equal(who->code, "kvm-no-sync-mmu"))
        return g_strdup(_("KVM on this host has no synchronous MMU (KVM_CAP_SYNC_MMU), so it could keep using a page the balloon discarded; QEMU inhibits the balloon. Use a host kernel with MMU notifiers"));
    if (g_str_equal(who->code, "sev"))
        return g_strdup(_("<launchSecurity type='sev'>: an SEV guest's memory is pinned and encrypted, and QEMU disables RAM discard (sev_kvm_init), so the balloon returns no memory. Size the guest for its peak, as memory cannot be reclaimed from it"));
    if (g_str_equal(who->code, "s390-pv"))
        return g_strdup(_("<launchSecurity type='s390-pv'>: once the guest runs protected, QEMU disables RAM discard (s390_machine_protect), so the balloon returns no memory. Size the guest for its peak, as memory cannot be reclaimed from it"));
    if (g_str_equal(who->code, "vhost-vdpa"))
        return g_strdup_printf(_("%s is a vhost-vdpa interface: like VFIO, vDPA pins all guest memory for the device's DMA, so QEMU disables RAM discard (vhost_vdpa_init) and the balloon returns no memory. Use virtio-mem to resize memory, or a virtio interface with another backend"),
                               who->devices->len ? (const char *)g_ptr_array_index(who->devices, 0) : "");
    if (g_str_equal(who->code, "memory-locked"))
        return g_strdup(_("<memoryBacking><locked/> mlock()s guest memory and madvise(MADV_DONTNEED) fails on locked pages, so the balloon cannot return memory; remove <locked/> if the balloon should work"));
    for (guint i = 0; i < who->devices->len; i++)
        g_string_append_printf(devs, "%s%s", i ? ", " : "",
                               (const char *)g_ptr_array_index(who->devices, i));
    g_autofree char *group = who->group >= 0
        ? g_strdup_printf(_("IOMMU group %d"), who->group)
        : g_strdup(_("a singleton IOMMU group (the device is not on this host)"));

    return g_strdup_printf(_("VFIO pins every guest page for DMA in %s (%s); a ballooned page would stay pinned and the device would keep DMA-ing to the old page after deflate (seeds 000-002), so QEMU skips every balloon discard. %s"),
                           group, devs->str,
                           have_virtio_mem
                           ? _("The domain's virtio-mem device resizes memory in coordination with VFIO; use it instead of the balloon")
                           : _("Use virtio-mem (<memory model='virtio-mem'>) to resize memory with VFIO, or, for an mdev whose vendor driver pins only the guest's working set, opt in with x-balloon-allowed"));
}

static void
dmg_verdict_inhibitors(JsonBuilder *b, vmm_machine *m)
{
    GPtrArray *list = m->discard.inhibitors;

    json_builder_set_member_name(b, "inhibitors");
    json_builder_begin_array(b);
    for (guint i = 0; i < list->len; i++) {
        const discard_inhibitor *who = g_ptr_array_index(list, i);
        g_autofree char *msg = dmg_inhibitor_message(who, memory_devices__virtio_mem_count(m) > 0);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "code");
        json_builder_add_string_value(b, who->code);
        dmg_json_group(b, who->group);
        json_builder_set_member_name(b, "devices");
        json_builder_begin_array(b);
        for (guint j = 0; j < who->devices->len; j++)
            json_builder_add_string_value(b, g_ptr_array_index(who->devices, j));
        json_builder_end_array(b);
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, msg);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void
dmg_verdict_balloon(JsonBuilder *b, const dmgDomainDef *def, vmm_machine *m)
{
    virtio_balloon *balloon = m->balloon;
    bool effective = balloon && !virtio_balloon__inhibited(m);

    json_builder_set_member_name(b, "balloon");
    json_builder_begin_object(b);
    dmg_json_string_or_null(b, "device", balloon ? balloon->alias : NULL);
    /* libvirt's default balloon (qemu_postparse.c): the XML has none. */
    json_builder_set_member_name(b, "implicit");
    json_builder_add_boolean_value(b, balloon && def->memballoon && def->memballoon->implicit);
    json_builder_set_member_name(b, "effective");
    json_builder_add_boolean_value(b, effective);
    json_builder_set_member_name(b, "partial");
    json_builder_add_boolean_value(b, effective && virtio_balloon__partial(balloon));
    dmg_verdict_inhibitors(b, m);
    json_builder_set_member_name(b, "coordinated_discard");
    json_builder_add_boolean_value(b, discard_manager__is_required(&m->discard));
    json_builder_end_object(b);
}

static void
dmg_verdict_migration(JsonBuilder *b, const dmgDomainDef *def, vmm_machine *m,
                      dmgHostProfile *host, const dmgQemuProfile *qemu)
{
    GPtrArray *blockers = m->migration.blockers;
    GPtrArray *conds = m->migration.conditions;
    migration_layer layer = MIGRATION_LAYER_QEMU;
    g_autofree char *refusal = dmg_libvirt_migration_refusal(host, qemu, m, &layer);

    json_builder_set_member_name(b, "migration");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "allowed");
    json_builder_add_boolean_value(b, migration_blockers__empty(&m->migration));
    /* Which layer refuses first on this libvirt and QEMU, and what
     * `virsh migrate` prints after "error: ". */
    dmg_json_string_or_null(b, "refused_by", refusal ? migration_layer__to_string(layer) : NULL);
    dmg_json_string_or_null(b, "virsh_error", refusal);
    json_builder_set_member_name(b, "blockers");
    json_builder_begin_array(b);
    for (guint i = 0; i < blockers->len; i++) {
        const migration_blocker *bl = g_ptr_array_index(blockers, i);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "layer");
        json_builder_add_string_value(b, migration_layer__to_string(bl->layer));
        json_builder_set_member_name(b, "code");
        json_builder_add_string_value(b, bl->code);
        dmg_json_string_or_null(b, "device", bl->device);
        dmg_json_group(b, dmg_alias_group(def, host, bl->device));
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, bl->message);
        json_builder_set_member_name(b, "reason");
        json_builder_add_string_value(b, bl->reason);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "conditions");
    json_builder_begin_array(b);
    for (guint i = 0; i < conds->len; i++) {
        const migration_condition *c = g_ptr_array_index(conds, i);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "code");
        json_builder_add_string_value(b, c->code);
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, c->message);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    /* QEMU's own answer for a running domain: check --live fills it in
     * (live_check.c); a verdict from XML alone has none. */
    json_builder_set_member_name(b, "live");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "checked");
    json_builder_add_boolean_value(b, FALSE);
    dmg_json_string_or_null(b, "qemu_version", NULL);
    dmg_json_string_or_null(b, "blocked_reasons", NULL);
    dmg_json_string_or_null(b, "confirmed", NULL);
    dmg_json_string_or_null(b, "error", NULL);
    json_builder_end_object(b);
    json_builder_end_object(b);
}

static void
dmg_verdict_findings(JsonBuilder *b, const char *name, GPtrArray *list,
                     const dmgDomainDef *def, dmgHostProfile *host)
{
    json_builder_set_member_name(b, name);
    json_builder_begin_array(b);
    for (guint i = 0; i < list->len; i++) {
        const vmm_finding *f = g_ptr_array_index(list, i);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "code");
        json_builder_add_string_value(b, f->code);
        dmg_json_string_or_null(b, "device", f->device);
        dmg_json_group(b, dmg_alias_group(def, host, f->device));
        json_builder_set_member_name(b, "message");
        json_builder_add_string_value(b, f->message);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
}

static void dmg_verdict_compare_stored(const dmgDomainDef *def, JsonNode *verdict);

JsonNode *
dmg_verdict_build(const dmgDomainDef *def, vmm_machine *m, dmgHostProfile *host,
                  const dmgQemuProfile *qemu)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    /* What libvirt sets at start (qemuProcessLaunch(): forceVFIO false). */
    guint64 memlock = dmg_qemu_domain_get_memlock_limit_bytes(def, host, false);
    const dmgDomainCaps *caps;
    JsonNode *root;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, def->name);
    dmg_verdict_balloon(b, def, m);
    dmg_verdict_migration(b, def, m, host, qemu);
    json_builder_set_member_name(b, "memlock_bytes");
    if (memlock == VIR_DOMAIN_MEMORY_PARAM_UNLIMITED || memlock == DMG_MEMLOCK_EXCEEDS)
        json_builder_add_null_value(b);
    else
        json_builder_add_int_value(b, (gint64)memlock);
    json_builder_set_member_name(b, "memlock_exceeds");
    json_builder_add_boolean_value(b, memlock == DMG_MEMLOCK_EXCEEDS);
    /* The host's VFIO as libvirt's domain capabilities show it
     * (host_domcaps.h); null when they are not known. */
    json_builder_set_member_name(b, "host_pci_passthrough");
    if ((caps = dmg_host_domcaps_lookup(host, def)))
        json_builder_add_boolean_value(b, caps->pci_backend_vfio);
    else
        json_builder_add_null_value(b);
    dmg_verdict_findings(b, "errors", m->findings.errors, def, host);
    dmg_verdict_findings(b, "warnings", m->findings.warnings, def, host);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    dmg_verdict_compare_stored(def, root);
    return root;
}

/* "code:device:group" for every entry of @array, in order. */
static void
digest_entries(GString *out, JsonObject *o, const char *array)
{
    JsonArray *arr = json_object_get_array_member(o, array);

    g_string_append_printf(out, "%s[", array);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *e = json_array_get_object_element(arr, i);

        /* Known only on a read-write connection (host_domcaps.h): a
         * --write-metadata verdict would differ from every read-only
         * check's, with nothing changed. */
        if (g_strcmp0(json_object_get_string_member(e, "code"), "libvirt-host-no-vfio") == 0)
            continue;
        g_string_append_printf(out, "%s:%s:%" G_GINT64_FORMAT ";",
                               json_object_get_string_member(e, "code"),
                               json_object_has_member(e, "device") &&
                               !json_object_get_null_member(e, "device")
                               ? json_object_get_string_member(e, "device") : "",
                               json_object_has_member(e, "group") &&
                               !json_object_get_null_member(e, "group")
                               ? json_object_get_int_member(e, "group") : -1);
    }
    g_string_append(out, "]");
}

char *
dmg_verdict_digest(JsonNode *verdict)
{
    JsonObject *dom = json_node_get_object(verdict);
    JsonObject *b = json_object_get_object_member(dom, "balloon");
    JsonObject *mig = json_object_get_object_member(dom, "migration");
    g_autoptr(GString) s = g_string_new(NULL);

    g_string_append_printf(s, "v%d;balloon:%s;", DMG_VERDICT_FORMAT_VERSION,
                           dmg_verdict_balloon_word(verdict));
    digest_entries(s, b, "inhibitors");
    g_string_append_printf(s, ";migration:%s;", dmg_verdict_migration_word(verdict));
    digest_entries(s, mig, "blockers");
    digest_entries(s, mig, "conditions");
    digest_entries(s, dom, "errors");
    return g_compute_checksum_for_string(G_CHECKSUM_SHA256, s->str, -1);
}

const char *
dmg_verdict_balloon_word(JsonNode *verdict)
{
    JsonObject *b = json_object_get_object_member(json_node_get_object(verdict), "balloon");

    if (json_object_get_null_member(b, "device"))
        return "none";
    if (!json_object_get_boolean_member(b, "effective"))
        return "inert";
    return json_object_get_boolean_member(b, "partial") ? "partial" : "effective";
}

const char *
dmg_verdict_migration_word(JsonNode *verdict)
{
    JsonObject *m = json_object_get_object_member(json_node_get_object(verdict), "migration");

    return json_object_get_boolean_member(m, "allowed") ? "allowed" : "blocked";
}

/* Keep the user's per-device settings, replace the verdict. */
static void
metadata_copy_settings(xmlNodePtr to, const char *existing)
{
    xmlDocPtr doc;

    if (!existing || !(doc = xmlReadMemory(existing, (int)strlen(existing), "metadata",
                                           NULL, XML_PARSE_NONET | XML_PARSE_NOERROR |
                                           XML_PARSE_NOWARNING)))
        return;
    for (xmlNodePtr c = xmlDocGetRootElement(doc)->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && !xmlStrEqual(c->name, BAD_CAST "verdict"))
            xmlAddChild(to, xmlDocCopyNode(c, to->doc, 1));
    }
    xmlFreeDoc(doc);
}

char *
dmg_verdict_metadata_xml(JsonNode *verdict, const char *existing, const char *qemu_version)
{
    JsonObject *dom = json_node_get_object(verdict);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *when = g_date_time_format_iso8601(now);
    g_autofree char *digest = dmg_verdict_digest(verdict);
    g_autofree char *nerr = g_strdup_printf("%u", json_array_get_length(json_object_get_array_member(dom, "errors")));
    g_autofree char *nwarn = g_strdup_printf("%u", json_array_get_length(json_object_get_array_member(dom, "warnings")));
    g_autofree char *ver = g_strdup_printf("%d", DMG_VERDICT_FORMAT_VERSION);
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr root = xmlNewNode(NULL, BAD_CAST "domain");
    xmlNodePtr v;
    xmlBufferPtr buf = xmlBufferCreate();
    char *out;

    xmlDocSetRootElement(doc, root);
    xmlNewNs(root, BAD_CAST DMG_METADATA_NS, NULL);
    metadata_copy_settings(root, existing);
    v = xmlNewChild(root, NULL, BAD_CAST "verdict", NULL);
    xmlNewProp(v, BAD_CAST "version", BAD_CAST ver);
    xmlNewProp(v, BAD_CAST "checked", BAD_CAST when);
    xmlNewProp(v, BAD_CAST "qemu", BAD_CAST qemu_version);
    xmlNewProp(v, BAD_CAST "balloon", BAD_CAST dmg_verdict_balloon_word(verdict));
    xmlNewProp(v, BAD_CAST "migration", BAD_CAST dmg_verdict_migration_word(verdict));
    xmlNewProp(v, BAD_CAST "errors", BAD_CAST nerr);
    xmlNewProp(v, BAD_CAST "warnings", BAD_CAST nwarn);
    xmlNewProp(v, BAD_CAST "digest", BAD_CAST digest);
    xmlNodeDump(buf, doc, root, 0, 0);
    out = g_strdup((const char *)xmlBufferContent(buf));
    xmlBufferFree(buf);
    xmlFreeDoc(doc);
    return out;
}

/* A verdict stored by an earlier `check --write-metadata` that says
 * something else than today's is worth a line of its own. */
static void
dmg_verdict_compare_stored(const dmgDomainDef *def, JsonNode *verdict)
{
    JsonObject *dom = json_node_get_object(verdict);
    g_autofree char *digest = NULL;
    g_autofree char *msg = NULL;
    JsonObject *w;

    if (!def->stored_digest)
        return;
    digest = dmg_verdict_digest(verdict);
    if (g_str_equal(digest, def->stored_digest))
        return;
    msg = g_strdup_printf(_("the verdict stored in <metadata> (checked %s: %s) differs from the current one (balloon %s, migration %s); the domain, the host or QEMU changed since. Run check --write-metadata to store the new verdict"),
                          def->stored_checked ? def->stored_checked : "?",
                          def->stored_summary ? def->stored_summary : "?",
                          dmg_verdict_balloon_word(verdict), dmg_verdict_migration_word(verdict));
    w = json_object_new();
    json_object_set_string_member(w, "code", "verdict-changed");
    json_object_set_null_member(w, "device");
    json_object_set_null_member(w, "group");
    json_object_set_string_member(w, "message", msg);
    json_array_add_object_element(json_object_get_array_member(dom, "warnings"), w);
}

bool
dmg_verdict_has_errors(JsonNode *verdict)
{
    JsonObject *o = json_node_get_object(verdict);

    return json_array_get_length(json_object_get_array_member(o, "errors")) > 0;
}

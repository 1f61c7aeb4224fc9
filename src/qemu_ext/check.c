/*
 * check.c: one domain through the dry run.
 */
#include "check.h"
#include "qemu_postparse.h"

#include "domain_conf.h"
#include "domain_realize.h"
#include "host_domcaps.h"
#include "qemu_command.h"
#include "report.h"
#include "verdict.h"

/* The VMM's memory API keeps its address spaces and transaction depth in
 * globals, as QEMU's does under the BQL (memory_region_transaction_begin()):
 * one machine is realized at a time.  Parsing, probing and libvirt calls
 * stay outside, so a fleet scan's hosts overlap in everything else. */
static GMutex realize_lock;

JsonNode *
dmg_check_def(const dmgDomainDef *def, const char *source, dmgHostProfile *host,
              const dmgQemuProfile *qemu, GError **error)
{
    g_autoptr(dmgQemuProfile) own = NULL;
    g_autoptr(vmm_machine) m = NULL;
    g_autoptr(GPtrArray) argv = NULL;
    g_autoptr(GMutexLocker) locker = NULL;
    JsonNode *verdict;

    /* The domain's own QEMU, unless a version was given. */
    if (!(own = dmg_qemu_profile_for_domain(qemu, def, error))) {
        g_prefix_error(error, "%s: ", source);
        return NULL;
    }
    /* The host's answer for this domain, asked before the lock: it may be
     * a call to a remote libvirt (cached per host, host_domcaps.h). */
    dmg_host_domcaps_lookup(host, def);
    locker = g_mutex_locker_new(&realize_lock);
    m = dmg_domain_realize(def, host, own, NULL);
    /* The command line is the second output of the same model; building
     * it records what this QEMU would refuse (missing properties). */
    argv = dmg_qemu_command_build(m, own, NULL);
    verdict = dmg_verdict_build(def, m, host, own);
    g_clear_pointer(&m, vmm_machine__free);
    g_clear_pointer(&locker, g_mutex_locker_free);
    json_object_set_member(json_node_get_object(verdict), "qemu", dmg_report_qemu(own));
    return verdict;
}

JsonNode *
dmg_check_xml(const char *xml, gsize len, const char *source,
              dmgHostProfile *host, const dmgQemuProfile *qemu, GError **error)
{
    g_autoptr(dmgDomainDef) def = dmg_qemu_domain_def_parse_string(xml, len, source, error);

    if (!def)
        return NULL;
    return dmg_check_def(def, source, host, qemu, error);
}

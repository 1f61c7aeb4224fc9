/*
 * check.c: one domain through the dry run.
 */
#include "check.h"

#include "domain_conf.h"
#include "domain_realize.h"
#include "qemu_command.h"
#include "report.h"
#include "verdict.h"

JsonNode *
dmg_check_xml(const char *xml, gsize len, const char *source,
              dmgHostProfile *host, const dmgQemuProfile *qemu, GError **error)
{
    g_autoptr(dmgDomainDef) def = dmg_domain_def_parse_string(xml, len, source, error);
    g_autoptr(dmgQemuProfile) own = NULL;
    g_autoptr(vmm_machine) m = NULL;
    g_autoptr(GPtrArray) argv = NULL;
    JsonNode *verdict;

    if (!def)
        return NULL;
    /* The domain's own QEMU, unless a version was given. */
    if (!(own = dmg_qemu_profile_for_domain(qemu, def, error))) {
        g_prefix_error(error, "%s: ", source);
        return NULL;
    }
    m = dmg_domain_realize(def, host, own, NULL);
    /* The command line is the second output of the same model; building
     * it records what this QEMU would refuse (missing properties). */
    argv = dmg_qemu_command_build(m, own, NULL);
    verdict = dmg_verdict_build(def, m, host, own);
    json_object_set_member(json_node_get_object(verdict), "qemu", dmg_report_qemu(own));
    return verdict;
}

/*
 * check.c: one domain through the dry run.
 */
#include "check.h"

#include "domain_conf.h"
#include "domain_realize.h"
#include "qemu_command.h"
#include "verdict.h"

JsonNode *
dmg_check_xml(const char *xml, gsize len, const char *source,
              dmgHostProfile *host, const dmgQemuProfile *qemu, GError **error)
{
    g_autoptr(dmgDomainDef) def = dmg_domain_def_parse_string(xml, len, source, error);
    g_autoptr(vmm_machine) m = NULL;
    g_autoptr(GPtrArray) argv = NULL;

    if (!def)
        return NULL;
    m = dmg_domain_realize(def, host, qemu, NULL);
    /* The command line is the second output of the same model; building
     * it records what this QEMU would refuse (missing properties). */
    argv = dmg_qemu_command_build(m, qemu, NULL);
    return dmg_verdict_build(def, m, host, qemu);
}

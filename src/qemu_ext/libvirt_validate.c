/*
 * libvirt_validate.c: what libvirt's QEMU driver validates before it ever
 * runs QEMU (src/qemu/qemu_validate.c), for the parts of a domain dmaguard
 * models.  Each rule is named after the libvirt function it mirrors and
 * reports libvirt's words: VIR_ERR_CONFIG_UNSUPPORTED, which virsh prints
 * as "unsupported configuration: ...".
 */
#include "domain_realize.h"

#include <stdio.h>
#include <string.h>

#include "dmg_i18n.h"

/* QEMU_MAX_VCPUS_WITHOUT_EIM (src/qemu/qemu_validate.c). */
#define DMG_MAX_VCPUS_WITHOUT_EIM 255

static bool
dmg_arch_is_x86(const char *arch)
{
    /* libvirt's default arch on this host: x86 unless the XML says. */
    return !arch || g_str_equal(arch, "x86_64") || g_str_equal(arch, "i686");
}

/* The "cpu-max" QEMU reports in query-machines for the machine type,
 * which libvirt reads into virQEMUCapsGetMachineMaxCpus(); 0 when unknown.
 * A versioned type keeps the limit of its version; an alias ("q35", "pc")
 * or no machine is the newest type of @qemu.  From hw/i386/pc_q35.c and
 * pc_piix.c, cross-checked with libvirt's caps_7.2.0/caps_8.0.0.x86_64.xml:
 *   - i440fx ("pc", "pc-i440fx-*"): 255;
 *   - q35: 255 up to pc-q35-2.7, 288 from 2.8 ("pc: q35: Bump max_cpus to
 *     288"), 1024 from 8.1 ("pc: q35: Bump max_cpus to 1024"; pc-q35-8.0
 *     keeps 288), 4096 from 9.0 ("pc: q35: Bump max_cpus to 4096 vcpus";
 *     pc-q35-8.2 keeps 1024). */
static unsigned
dmg_machine_max_cpus(const dmgDomainDef *def, const dmgQemuProfile *qemu)
{
    const char *mt = def->machine;
    unsigned major = qemu->version.major, minor = qemu->version.minor;

    if (!dmg_arch_is_x86(def->arch))
        return 0;
    if (!mt || g_str_equal(mt, "pc") || g_str_has_prefix(mt, "pc-i440fx-"))
        return 255;
    if (g_str_equal(mt, "q35")) {
        /* the alias: the newest q35 of this QEMU */
    } else if (!g_str_has_prefix(mt, "pc-q35-") ||
               sscanf(mt + strlen("pc-q35-"), "%u.%u", &major, &minor) != 2) {
        return 0;
    }
    if (major < 2 || (major == 2 && minor <= 7))
        return 255;
    if (major < 8 || (major == 8 && minor == 0))
        return 288;
    if (major < 9)
        return 1024;
    return 4096;
}

static bool
dmg_machine_is_q35(const dmgDomainDef *def)
{
    return def->machine && (g_str_equal(def->machine, "q35") ||
                            g_str_has_prefix(def->machine, "pc-q35-"));
}

/* qemuValidateDomainVCpuTopology() (libvirt 9.0): the machine type's limit,
 * then more than 255 vCPUs on x86 only on q35 and only with the IOMMU's
 * extended interrupt mode (<iommu model='intel'><driver eim='on'/>). */
void
dmg_libvirt_validate_vcpu_topology(const dmgDomainDef *def, const dmgQemuProfile *qemu,
                                   vmm_machine *m)
{
    unsigned max = dmg_machine_max_cpus(def, qemu);
    unsigned vcpus = def->vcpus ? def->vcpus : 1;

    if (max && vcpus > max) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: Maximum CPUs greater than specified machine type limit %u; the domain has %u vCPUs. Give at most %u, or a machine type that allows more"),
                                               max, vcpus, max);

        vmm_findings__error(&m->findings, "libvirt-vcpus-machine-limit", NULL, msg);
        return;
    }
    if (!dmg_arch_is_x86(def->arch) || vcpus <= DMG_MAX_VCPUS_WITHOUT_EIM)
        return;
    if (!dmg_machine_is_q35(def)) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: more than %d vCPUs are only supported on q35-based machine types; use machine='q35' with <iommu model='intel'><driver intremap='on' eim='on'/></iommu>"),
                                               DMG_MAX_VCPUS_WITHOUT_EIM);

        vmm_findings__error(&m->findings, "libvirt-vcpus-need-q35", NULL, msg);
    } else if (!def->iommu || def->iommu->eim != DMG_TRISTATE_ON) {
        g_autofree char *msg = g_strdup_printf(_("unsupported configuration: more than %d vCPUs require extended interrupt mode enabled on the iommu device; add <iommu model='intel'><driver intremap='on' eim='on'/></iommu> with <ioapic driver='qemu'/>"),
                                               DMG_MAX_VCPUS_WITHOUT_EIM);

        vmm_findings__error(&m->findings, "libvirt-vcpus-need-eim",
                            def->iommu ? def->iommu->alias : NULL, msg);
    }
}

/*
 * qemu_postparse.c: libvirt's QEMU post-parse, as far as verdicts need it.
 */
#include "qemu_postparse.h"

#include <string.h>

/* The architecture of a domain without os/type/@arch: libvirt takes the
 * host's when its QEMU can run it (virCapabilitiesDomainDataLookup()),
 * which is the architecture dmaguard was built for. */
static const char *
dmg_qemu_default_arch(void)
{
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return "ppc64le";
#elif defined(__i386__)
    return "i686";
#else
    return "";
#endif
}

/* qemuDomainDefAddDefaultDevices() (src/qemu/qemu_domain.c, as in libvirt
 * 9.0): a domain with no <memballoon> gets <memballoon model='virtio'/>,
 * named balloon0 at start, except on armv6l, armv7l, aarch64 and sparc
 * (addDefaultMemballoon = false there).  Only <memballoon model='none'/>
 * keeps a domain without one, so a VFIO domain that says nothing about a
 * balloon has one, and it is inert. */
void
dmg_qemu_domain_def_add_default_devices(dmgDomainDef *def)
{
    static const char *const no_default_balloon[] = {
        "armv6l", "armv7l", "aarch64", "sparc", NULL,
    };
    const char *arch = def->arch ? def->arch : dmg_qemu_default_arch();
    dmgMemballoonDef *b;

    if (def->memballoon || g_strv_contains(no_default_balloon, arch))
        return;
    b = g_new0(dmgMemballoonDef, 1);
    b->model = DMG_MEMBALLOON_VIRTIO;
    b->autodeflate = DMG_TRISTATE_ABSENT;
    b->free_page_reporting = DMG_TRISTATE_ABSENT;
    b->stats_period = -1;
    b->alias = g_strdup("balloon0");
    b->alias_generated = true;
    b->implicit = true;
    def->memballoon = b;
}

dmgDomainDef *
dmg_qemu_domain_def_parse_string(const char *xml, gsize len, const char *source,
                                 GError **error)
{
    dmgDomainDef *def = dmg_domain_def_parse_string(xml, len, source, error);

    if (def)
        dmg_qemu_domain_def_add_default_devices(def);
    return def;
}

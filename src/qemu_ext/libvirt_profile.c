/*
 * libvirt_profile.c: the libvirt version table.  This is the one place
 * that knows what changed between libvirt releases; each row cites the
 * function and the release notes (NEWS.rst) entry, checked against
 * libvirt 9.0.0's source (Debian 12's libvirt_9.0.0.orig.tar.xz).
 */
#include "libvirt_profile.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

#include "dmg_enum.h"
#include "dmg_i18n.h"

typedef struct {
    dmgLibvirtRule rule;
    unsigned major, minor, micro;
} libvirt_version_row;

static const libvirt_version_row libvirt_table[] = {
    /* qemuMigrationSrcIsAllowed() (src/qemu/qemu_migration.c): with
     * QEMU_CAPS_MIGRATION_BLOCKED_REASONS it reports "cannot migrate
     * domain: <blocked-reasons joined by '; '>" and skips
     * qemuMigrationSrcIsAllowedHostdev(), which then runs only for a
     * QEMU without the capability.  libvirt 8.6.0. */
    { DMG_LIBVIRT_MIGRATION_BLOCKED_REASONS, 8, 6, 0 },
    /* qemuDomainGetMemLockLimitBytes() and getPPC64MemLockLimitBytes()
     * (src/qemu/qemu_domain.c): "qemu: increase locked memory limit when a
     * vDPA device is present" (NEWS.rst, v7.2.0): an <interface
     * type='vdpa'> (libvirt 6.9.0) raises the limit as a VFIO device does;
     * before, it was not counted. */
    { DMG_LIBVIRT_MEMLOCK_VDPA, 7, 2, 0 },
    /* qemuDomainGetMemLockLimitBytes() (src/qemu/qemu_domain.c): "qemu:
     * increase memlock limit for a domain with multiple vfio/vdpa
     * devices" (NEWS.rst, v8.7.0): the factor is the number of VFIO
     * devices with a vIOMMU (else 1), plus the number of vDPA devices;
     * before, guest memory plus 1 GiB for any number. */
    { DMG_LIBVIRT_MEMLOCK_PER_DEVICE, 8, 7, 0 },
};
G_STATIC_ASSERT(G_N_ELEMENTS(libvirt_table) == DMG_LIBVIRT_RULE_LAST);

/* query-migrate's blocked-reasons member (qapi/migration.json, "since
 * 6.0"), which libvirt probes as query-migrate/ret-type/blocked-reasons. */
#define QEMU_BLOCKED_REASONS_MAJOR 6

static const char *const libvirt_sources[] = {
    [DMG_LIBVIRT_SOURCE_LIBRARY] = "installed",
    [DMG_LIBVIRT_SOURCE_CONNECTION] = "connection",
    [DMG_LIBVIRT_SOURCE_CHOSEN] = "chosen",
    [DMG_LIBVIRT_SOURCE_DAEMON] = "daemon",
    [DMG_LIBVIRT_SOURCE_BUILT] = "built",
};
G_STATIC_ASSERT(G_N_ELEMENTS(libvirt_sources) == DMG_LIBVIRT_SOURCE_LAST);

/* libvirt's encoding: major * 1,000,000 + minor * 1,000 + micro. */
dmgLibvirtVersion
dmg_libvirt_version_decode(unsigned long v)
{
    return (dmgLibvirtVersion){ v / 1000000, (v / 1000) % 1000, v % 1000 };
}

void
dmg_libvirt_profile_init_built(dmgLibvirtProfile *p)
{
    p->version = dmg_libvirt_version_decode(LIBVIR_VERSION_NUMBER);
    p->source = DMG_LIBVIRT_SOURCE_BUILT;
}

/* libvirt's shared library is named after its version:
 * libvirt.so.0.MAJOR*1000+MINOR.MICRO (libvirt's meson.build,
 * libvirt_lib_version), so libvirt 9.0.0 maps libvirt.so.0.9000.0. */
gboolean
dmg_libvirt_profile_init_process(dmgLibvirtProfile *p, int pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/maps", pid);
    g_autofree char *line = NULL;
    size_t cap = 0;
    /* A daemon maps a few hundred objects; more lines than this is not a
     * daemon's map worth reading to the end. */
    guint budget = 65536;
    gboolean found = FALSE;
    FILE *f;

    /* Plain stdio, not GFile: the hook calls this on every start, and
     * GFile's first use loads GIO's modules and registers its VFS types,
     * a millisecond of the hook's budget (bench/bench-hook.sh). */
    if (!(f = fopen(path, "re")))
        return FALSE;
    while (budget-- && getline(&line, &cap, f) > 0) {
        const char *lib = strstr(line, "/libvirt.so.0.");
        unsigned age, micro;
        char tail = '\n';
        int n = lib ? sscanf(lib, "/libvirt.so.0.%u.%u%c", &age, &micro, &tail) : 0;

        /* The name must end there: not libvirt.so.0.9000.0-gdb.py. */
        if ((n == 2 || n == 3) && tail == '\n') {
            p->version = (dmgLibvirtVersion){ age / 1000, age % 1000, micro };
            p->source = DMG_LIBVIRT_SOURCE_DAEMON;
            found = TRUE;
            break;
        }
    }
    fclose(f);
    return found;
}

gboolean
dmg_libvirt_profile_set_version(dmgLibvirtProfile *p, const char *str,
                                GError **error)
{
    dmgLibvirtVersion v = { 0 };
    char tail;
    int n = sscanf(str, "%u.%u.%u%c", &v.major, &v.minor, &v.micro, &tail);

    /* The oldest release with the libvirt behaviour this project models
     * (qemuMigrationSrcIsAllowedHostdev() as it is in 9.0) is well before
     * 6.0; a version below that is a typo. */
    if ((n != 2 && n != 3) || v.major < 6 || v.major > 999 || v.minor > 999 ||
        v.micro > 999) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    _("libvirt version '%s' is not a version such as 8.5 or 9.0.0 (6.0 or later)"),
                    str);
        return FALSE;
    }
    p->version = v;
    p->source = DMG_LIBVIRT_SOURCE_CHOSEN;
    return TRUE;
}

static bool
dmg_libvirt_version_at_least(dmgLibvirtVersion v, unsigned major, unsigned minor,
                             unsigned micro)
{
    if (v.major != major)
        return v.major > major;
    if (v.minor != minor)
        return v.minor > minor;
    return v.micro >= micro;
}

bool
dmg_libvirt_profile_has(const dmgLibvirtProfile *p, dmgLibvirtRule rule)
{
    const libvirt_version_row *r = &libvirt_table[rule];

    g_assert(rule < DMG_LIBVIRT_RULE_LAST && r->rule == rule);
    return dmg_libvirt_version_at_least(p->version, r->major, r->minor, r->micro);
}

bool
dmg_libvirt_asks_qemu_blockers(const dmgLibvirtProfile *p, const dmgQemuProfile *qemu)
{
    return dmg_libvirt_profile_has(p, DMG_LIBVIRT_MIGRATION_BLOCKED_REASONS) &&
           qemu->version.major >= QEMU_BLOCKED_REASONS_MAJOR;
}

char *
dmg_libvirt_version_string(dmgLibvirtVersion v)
{
    return g_strdup_printf("%u.%u.%u", v.major, v.minor, v.micro);
}

const char *
dmg_libvirt_source_string(dmgLibvirtSource s)
{
    return dmg_enum_to_string(libvirt_sources, DMG_LIBVIRT_SOURCE_LAST, s);
}

/*
 * libvirt_profile.h: which libvirt the verdict is for.  libvirt's own
 * rules changed between releases; each change is one row of the table in
 * libvirt_profile.c, and the rules in src/qemu_ext ask it by name.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <libvirt/libvirt.h>

#include "qemu_profile.h"

typedef struct {
    unsigned major, minor, micro;
} dmgLibvirtVersion;

/* Where the version came from, for reports. */
typedef enum {
    DMG_LIBVIRT_SOURCE_LIBRARY,      /* virGetVersion(): the installed library */
    DMG_LIBVIRT_SOURCE_CONNECTION,   /* virConnectGetLibVersion() */
    DMG_LIBVIRT_SOURCE_CHOSEN,       /* --libvirt-version, or the hook policy */
    DMG_LIBVIRT_SOURCE_DAEMON,       /* the library the hook's daemon runs */
    DMG_LIBVIRT_SOURCE_BUILT,        /* the headers dmaguard was built with */
    DMG_LIBVIRT_SOURCE_LAST
} dmgLibvirtSource;

typedef struct {
    dmgLibvirtVersion version;
    dmgLibvirtSource source;
} dmgLibvirtProfile;

/* libvirt behaviours that changed between releases. */
typedef enum {
    /* qemuMigrationSrcIsAllowed() asks QEMU (query-migrate blocked-reasons)
     * instead of running qemuMigrationSrcIsAllowedHostdev(). */
    DMG_LIBVIRT_MIGRATION_BLOCKED_REASONS,
    /* qemuDomainGetMemLockLimitBytes() raises the limit for vDPA
     * interfaces as for VFIO devices. */
    DMG_LIBVIRT_MEMLOCK_VDPA,
    /* qemuDomainGetMemLockLimitBytes(): guest memory once per VFIO device
     * behind a vIOMMU (and per vDPA device), not once in all. */
    DMG_LIBVIRT_MEMLOCK_PER_DEVICE,
    DMG_LIBVIRT_RULE_LAST
} dmgLibvirtRule;

/* The version of the libvirt headers dmaguard was built with
 * (LIBVIR_VERSION_NUMBER): the last resort. */
void dmg_libvirt_profile_init_built(dmgLibvirtProfile *p);
/* The libvirt library process @pid runs, from the name of the libvirt.so
 * it maps; FALSE when it maps none.  The hook reads its daemon's this
 * way, without linking or calling libvirt. */
gboolean dmg_libvirt_profile_init_process(dmgLibvirtProfile *p, int pid);
/* In libvirt_source.c, which links libvirt: the installed library's
 * version (virGetVersion), and the version of the libvirt at the other
 * end of @conn (virConnectGetLibVersion). */
void dmg_libvirt_profile_init_library(dmgLibvirtProfile *p);
gboolean dmg_libvirt_profile_init_connection(dmgLibvirtProfile *p, virConnectPtr conn,
                                             const char *uri, GError **error);
dmgLibvirtVersion dmg_libvirt_version_decode(unsigned long v);
/* "X.Y" or "X.Y.Z", as --libvirt-version or the hook policy give it. */
gboolean dmg_libvirt_profile_set_version(dmgLibvirtProfile *p, const char *str,
                                         GError **error);

bool dmg_libvirt_profile_has(const dmgLibvirtProfile *p, dmgLibvirtRule rule);
/* Whether libvirt asks this QEMU for its migration blockers: libvirt's
 * behaviour and QEMU's capability (QEMU_CAPS_MIGRATION_BLOCKED_REASONS). */
bool dmg_libvirt_asks_qemu_blockers(const dmgLibvirtProfile *p,
                                    const dmgQemuProfile *qemu);

char *dmg_libvirt_version_string(dmgLibvirtVersion v);
const char *dmg_libvirt_source_string(dmgLibvirtSource s);

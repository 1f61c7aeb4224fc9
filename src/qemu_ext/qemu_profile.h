/*
 * qemu_profile.h: which QEMU the verdict is for: a version and the
 * downstream features it carries.  Every rule that changed between QEMU
 * versions is one row of the table in qemu_profile.c.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "dmg_enum.h"
#include "domain_conf.h"
#include "machine.h"
#include "qemu_probe.h"

typedef struct {
    unsigned major, minor;
} dmgQemuVersion;

/* Where the version came from, for reports. */
typedef enum {
    DMG_QEMU_VERSION_NEWEST,     /* nothing said: the newest known */
    DMG_QEMU_VERSION_CHOSEN,     /* --qemu-version, or the hook policy */
    DMG_QEMU_VERSION_PROBED,     /* the domain's own emulator, over QMP */
    DMG_QEMU_VERSION_CONNECTION, /* virConnectGetVersion() of a QEMU
                                  * connection to a remote host */
    DMG_QEMU_VERSION_LAST
} dmgQemuVersionSource;
/* "newest", "chosen", "probed", "connection" */
DMG_ENUM_DECL(dmgQemuVersionSource);

typedef struct {
    dmgQemuVersion version;
    int version_source;          /* dmgQemuVersionSource */
    GPtrArray *features;         /* char *, downstream features, declared
                                  * or found by the probe */
    char *emulator;              /* the domain's QEMU binary, or NULL */
    dmgQemuProbe *probe;         /* what it said; NULL: the version table */
    dmgQemuProber *prober;       /* set: each domain is judged for its own
                                  * emulator (dmg_qemu_profile_for_domain) */
} dmgQemuProfile;

dmgQemuProfile *dmg_qemu_profile_new(void);
void dmg_qemu_profile_free(dmgQemuProfile *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgQemuProfile, dmg_qemu_profile_free);

/* Read from the QEMU being judged (its binary, probed, or the remote
 * connection's hypervisor version)? */
bool dmg_qemu_version_detected(const dmgQemuProfile *p);

/* "X.Y"; refuses versions older than the oldest known one.  The source
 * becomes DMG_QEMU_VERSION_CHOSEN. */
gboolean dmg_qemu_profile_set_version(dmgQemuProfile *p, const char *str,
                                      GError **error);
/* No version given: judge each domain for its own emulator, probed by
 * @prober (taken).  NULL: no probing (a remote connection's QEMU). */
void dmg_qemu_profile_set_prober(dmgQemuProfile *p, dmgQemuProber *prober);
/* The profile one domain is judged for.  Without a prober (a version was
 * given) it is @base.  Otherwise the domain's <emulator>, or without one
 * qemu-system-ARCH in PATH, is probed: its version and device properties,
 * and the downstream features whose property it has; a domain with no
 * emulator and none in PATH gets @base (the newest known version).  NULL
 * with @error when the binary cannot be probed. */
dmgQemuProfile *dmg_qemu_profile_for_domain(const dmgQemuProfile *base,
                                            const dmgDomainDef *def,
                                            GError **error);
/* qemu-system-ARCH (x86_64 when @arch is NULL) in PATH, or NULL. */
char *dmg_qemu_default_emulator(const char *arch);
gboolean dmg_qemu_profile_add_feature(dmgQemuProfile *p, const char *name,
                                      GError **error);
bool dmg_qemu_profile_has_feature(const dmgQemuProfile *p, const char *name);

/* Fill the VMM's behaviour switches from the version table. */
void dmg_qemu_profile_compat(const dmgQemuProfile *p, vmm_compat *compat);

/* Whether a device property exists in this QEMU: a declared feature that
 * brings it, else the probed property list, else the version table (a
 * property it does not list exists).  For a missing one, @why (caller
 * frees) says since when, through which feature, or that the binary
 * lacks it. */
bool dmg_qemu_profile_has_property(const dmgQemuProfile *p, const char *driver,
                                   const char *prop, char **why);

char *dmg_qemu_version_string(dmgQemuVersion v);
dmgQemuVersion dmg_qemu_version_newest(void);
/* NULL-terminated list of known versions, oldest first, "7.2" ... */
const char *const *dmg_qemu_known_versions(void);

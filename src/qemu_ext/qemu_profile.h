/*
 * qemu_profile.h: which QEMU the verdict is for: a version and the
 * downstream features it carries.  Every rule that changed between QEMU
 * versions is one row of the table in qemu_profile.c.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "dmg_enum.h"
#include "machine.h"

typedef struct {
    unsigned major, minor;
} dmgQemuVersion;

/* Where the version came from, for reports. */
typedef enum {
    DMG_QEMU_VERSION_NEWEST,     /* nothing said: the newest known */
    DMG_QEMU_VERSION_CHOSEN,     /* --qemu-version, or the hook policy */
    DMG_QEMU_VERSION_INSTALLED,  /* qemu-system-x86_64 --version */
    DMG_QEMU_VERSION_CONNECTION, /* virConnectGetVersion() of a QEMU connection */
    DMG_QEMU_VERSION_LAST
} dmgQemuVersionSource;
/* "newest", "chosen", "installed", "connection" */
DMG_ENUM_DECL(dmgQemuVersionSource);

typedef struct {
    dmgQemuVersion version;
    int version_source;          /* dmgQemuVersionSource */
    GPtrArray *features;         /* char *, downstream features */
} dmgQemuProfile;

dmgQemuProfile *dmg_qemu_profile_new(void);
void dmg_qemu_profile_free(dmgQemuProfile *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgQemuProfile, dmg_qemu_profile_free);

/* Read from the QEMU being judged (installed or the connection's)? */
bool dmg_qemu_version_detected(const dmgQemuProfile *p);

/* "X.Y"; refuses versions older than the oldest known one.  The source
 * becomes DMG_QEMU_VERSION_CHOSEN. */
gboolean dmg_qemu_profile_set_version(dmgQemuProfile *p, const char *str,
                                      GError **error);
/* The installed qemu-system-x86_64's version, else the newest known. */
void dmg_qemu_profile_detect(dmgQemuProfile *p);
gboolean dmg_qemu_profile_add_feature(dmgQemuProfile *p, const char *name,
                                      GError **error);
bool dmg_qemu_profile_has_feature(const dmgQemuProfile *p, const char *name);

/* Fill the VMM's behaviour switches from the version table. */
void dmg_qemu_profile_compat(const dmgQemuProfile *p, vmm_compat *compat);

/* Whether a vfio-pci property exists in this QEMU; for a missing one,
 * @why (caller frees) says since when or through which feature. */
bool dmg_qemu_profile_has_property(const dmgQemuProfile *p, const char *driver,
                                   const char *prop, char **why);

char *dmg_qemu_version_string(dmgQemuVersion v);
dmgQemuVersion dmg_qemu_version_newest(void);
/* NULL-terminated list of known versions, oldest first, "7.2" ... */
const char *const *dmg_qemu_known_versions(void);

/*
 * hook_policy.h: the policy file of dmaguard-qemu-hook
 * (/etc/dmaguard/dmaguard.conf, a GKeyFile; docs/dmaguard-qemu-hook.rst).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "host_profile.h"
#include "qemu_profile.h"

#define DMG_HOOK_CONF_DEFAULT "/etc/dmaguard/dmaguard.conf"
#define DMG_HOOK_LOG_DEFAULT "/var/log/dmaguard/hook.log"
#define DMG_HOOK_TIMEOUT_DEFAULT 10
#define DMG_HOOK_TIMEOUT_MAX 300
#define DMG_HOOK_QEMU_CACHE_DEFAULT "/var/cache/dmaguard"

typedef struct {
    char *path;                  /* the file read (or looked for) */
    /* [hook] */
    bool fail_closed;
    char *log_path;              /* NULL: no log file (log= empty) */
    int timeout_s;
    /* [refuse], [warn-only] */
    char **refuse_codes;         /* NULL or empty: every error refuses */
    char **warn_only_codes;
    /* [migration] */
    bool refuse_migration;
    /* [profile] */
    char *sysfs;
    char *qemu_version;          /* NULL: probe each domain's <emulator> */
    char *libvirt_version;       /* NULL: the calling daemon's libvirt */
    char **qemu_features;
    char *host_profile;          /* NULL: none */
    char *qemu_cache;            /* the probes' cache directory; NULL: none */
} dmgHookPolicy;

/* Fill @p with the defaults, then read @path over them.  A missing file
 * is not an error.  On any other failure (unreadable, malformed, unknown
 * group or key, bad value) returns FALSE with @error; @p then holds the
 * defaults plus whatever of [hook] fail-closed and log could still be
 * read, so that the caller logs where the admin asked and fails the way
 * the admin asked. */
gboolean dmg_hook_policy_load(dmgHookPolicy *p, const char *path, GError **error);
void dmg_hook_policy_clear(dmgHookPolicy *p);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(dmgHookPolicy, dmg_hook_policy_clear);

/* The profiles the analysis judges for, as virt-dmaguard check builds
 * them from its options.  @note: a warning for the log, or NULL. */
dmgHostProfile *dmg_hook_policy_host_profile(const dmgHookPolicy *p, GError **error);
dmgQemuProfile *dmg_hook_policy_qemu_profile(const dmgHookPolicy *p, char **note,
                                             GError **error);

/* Whether an error with @code stops the domain. */
bool dmg_hook_policy_refuses(const dmgHookPolicy *p, const char *code);

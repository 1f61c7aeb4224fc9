/*
 * hook_policy.c: read dmaguard-qemu-hook's policy file.
 */
#include "hook_policy.h"

#include <string.h>

#include "dmg_i18n.h"
#include "libvirt_profile.h"
#include "qemu_profile.h"

static const struct {
    const char *group;
    const char *const keys[7];
} policy_keys[] = {
    { "hook", { "fail-closed", "log", "timeout", NULL } },
    { "refuse", { "codes", NULL } },
    { "warn-only", { "codes", NULL } },
    { "migration", { "refuse", NULL } },
    { "profile", { "sysfs", "qemu-version", "libvirt-version", "qemu-features", "host-profile", "qemu-cache", NULL } },
};

static void
policy_defaults(dmgHookPolicy *p, const char *path)
{
    memset(p, 0, sizeof(*p));
    p->path = g_strdup(path);
    p->fail_closed = false;
    p->log_path = g_strdup(DMG_HOOK_LOG_DEFAULT);
    p->timeout_s = DMG_HOOK_TIMEOUT_DEFAULT;
    p->refuse_migration = true;
    p->sysfs = g_strdup("/sys");
    p->qemu_cache = g_strdup(DMG_HOOK_QEMU_CACHE_DEFAULT);
}

void
dmg_hook_policy_clear(dmgHookPolicy *p)
{
    g_free(p->path);
    g_free(p->log_path);
    g_strfreev(p->refuse_codes);
    g_strfreev(p->warn_only_codes);
    g_free(p->sysfs);
    g_free(p->qemu_version);
    g_free(p->libvirt_version);
    g_strfreev(p->qemu_features);
    g_free(p->host_profile);
    g_free(p->qemu_cache);
    memset(p, 0, sizeof(*p));
}

static bool
policy_bool_value(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/* A file GKeyFile cannot parse: still honour [hook] fail-closed and log
 * when their own lines are intact, so that a typo elsewhere neither
 * silences the log nor turns a fail-closed policy into a fail-open one. */
static void
policy_salvage_hook(dmgHookPolicy *p, const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    bool in_hook = false;

    for (char **l = lines; *l; l++) {
        char *line = g_strstrip(*l);
        char *eq;

        if (*line == '[') {
            in_hook = strcmp(line, "[hook]") == 0;
            continue;
        }
        if (!in_hook || !(eq = strchr(line, '=')))
            continue;
        *eq = '\0';
        g_strstrip(line);
        g_strstrip(eq + 1);
        if (strcmp(line, "fail-closed") == 0) {
            policy_bool_value(eq + 1, &p->fail_closed);
        } else if (strcmp(line, "log") == 0) {
            if (eq[1] == '/' || eq[1] == '\0') {
                g_free(p->log_path);
                p->log_path = eq[1] ? g_strdup(eq + 1) : NULL;
            }
        }
    }
}

static gboolean
policy_check_keys(GKeyFile *kf, const char *path, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

    for (char **g = groups; *g; g++) {
        g_auto(GStrv) keys = NULL;
        gsize i;

        for (i = 0; i < G_N_ELEMENTS(policy_keys); i++) {
            if (strcmp(policy_keys[i].group, *g) == 0)
                break;
        }
        if (i == G_N_ELEMENTS(policy_keys)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                        _("%s: unknown group [%s]"), path, *g);
            return FALSE;
        }
        keys = g_key_file_get_keys(kf, *g, NULL, NULL);
        for (char **k = keys; k && *k; k++) {
            if (!g_strv_contains(policy_keys[i].keys, *k)) {
                g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                            _("%s: unknown key '%s' in [%s]"), path, *k, *g);
                return FALSE;
            }
        }
    }
    return TRUE;
}

static gboolean
policy_get_bool(GKeyFile *kf, const char *path, const char *group,
                const char *key, bool *out, GError **error)
{
    g_autofree char *v = NULL;

    if (!g_key_file_has_key(kf, group, key, NULL))
        return TRUE;
    v = g_key_file_get_string(kf, group, key, NULL);
    if (!v || !policy_bool_value(g_strstrip(v), out)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    _("%s: [%s] %s must be true or false"), path, group, key);
        return FALSE;
    }
    return TRUE;
}

/* NULL when absent; @error when present but not a string. */
static gboolean
policy_get_string(GKeyFile *kf, const char *path, const char *group,
                  const char *key, char **out, GError **error)
{
    g_autoptr(GError) err = NULL;
    char *v;

    *out = NULL;
    if (!g_key_file_has_key(kf, group, key, NULL))
        return TRUE;
    if (!(v = g_key_file_get_string(kf, group, key, &err))) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    _("%s: [%s] %s: %s"), path, group, key, err->message);
        return FALSE;
    }
    *out = g_strdup(g_strstrip(v));
    g_free(v);
    return TRUE;
}

/* A list separated by semicolons (GKeyFile's own lists), commas or
 * blanks. */
static gboolean
policy_get_list(GKeyFile *kf, const char *path, const char *group,
                const char *key, char ***out, GError **error)
{
    g_autofree char *v = NULL;
    g_auto(GStrv) parts = NULL;
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(g_free);

    if (!policy_get_string(kf, path, group, key, &v, error))
        return FALSE;
    if (!v)
        return TRUE;
    parts = g_regex_split_simple("[;,[:space:]]+", v, 0, 0);
    for (char **s = parts; *s; s++) {
        if (**s)
            g_ptr_array_add(list, g_strdup(*s));
    }
    g_ptr_array_add(list, NULL);
    g_strfreev(*out);
    *out = (char **)g_ptr_array_free(g_steal_pointer(&list), FALSE);
    return TRUE;
}

static gboolean
policy_check_codes(char **codes, const char *path, const char *group, GError **error)
{
    for (char **c = codes; c && *c; c++) {
        if (!g_regex_match_simple("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", *c, 0, 0)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        _("%s: [%s] codes: '%s' is not a dmaguard code (kebab-case, e.g. balloon-optin-not-mdev)"),
                        path, group, *c);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
policy_read_hook(dmgHookPolicy *p, GKeyFile *kf, GError **error)
{
    g_autofree char *log = NULL;
    g_autofree char *timeout = NULL;

    if (!policy_get_bool(kf, p->path, "hook", "fail-closed", &p->fail_closed, error))
        return FALSE;
    if (!policy_get_string(kf, p->path, "hook", "log", &log, error))
        return FALSE;
    if (log) {
        if (*log && *log != '/') {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        _("%s: [hook] log must be an absolute path, or empty for no log"),
                        p->path);
            return FALSE;
        }
        g_free(p->log_path);
        p->log_path = *log ? g_steal_pointer(&log) : NULL;
    }
    if (!policy_get_string(kf, p->path, "hook", "timeout", &timeout, error))
        return FALSE;
    if (timeout) {
        guint64 t;

        if (!g_ascii_string_to_unsigned(timeout, 10, 1, DMG_HOOK_TIMEOUT_MAX, &t, NULL)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        _("%s: [hook] timeout must be a number of seconds from 1 to %d"),
                        p->path, DMG_HOOK_TIMEOUT_MAX);
            return FALSE;
        }
        p->timeout_s = (int)t;
    }
    return TRUE;
}

static gboolean
policy_read_profile(dmgHookPolicy *p, GKeyFile *kf, GError **error)
{
    g_autofree char *sysfs = NULL;
    g_autofree char *host_profile = NULL;
    g_autofree char *qemu_cache = NULL;
    g_autoptr(dmgQemuProfile) probe = dmg_qemu_profile_new();
    g_autoptr(GError) err = NULL;

    if (!policy_get_string(kf, p->path, "profile", "sysfs", &sysfs, error))
        return FALSE;
    if (sysfs) {
        if (*sysfs != '/') {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        _("%s: [profile] sysfs must be an absolute path"), p->path);
            return FALSE;
        }
        g_free(p->sysfs);
        p->sysfs = g_steal_pointer(&sysfs);
    }
    if (!policy_get_string(kf, p->path, "profile", "qemu-version", &p->qemu_version, error))
        return FALSE;
    if (p->qemu_version && !*p->qemu_version)
        g_clear_pointer(&p->qemu_version, g_free);
    /* The same checks as virt-dmaguard's --qemu-version/--qemu-feature,
     * on a throwaway profile: the real one is built in the analysis
     * process. */
    if (p->qemu_version && !dmg_qemu_profile_set_version(probe, p->qemu_version, &err)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    _("%s: [profile] qemu-version: %s"), p->path, err->message);
        return FALSE;
    }
    if (!policy_get_string(kf, p->path, "profile", "libvirt-version", &p->libvirt_version, error))
        return FALSE;
    if (p->libvirt_version && !*p->libvirt_version)
        g_clear_pointer(&p->libvirt_version, g_free);
    if (p->libvirt_version) {
        dmgLibvirtProfile lv;

        if (!dmg_libvirt_profile_set_version(&lv, p->libvirt_version, &err)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        _("%s: [profile] libvirt-version: %s"), p->path, err->message);
            return FALSE;
        }
    }
    if (!policy_get_list(kf, p->path, "profile", "qemu-features", &p->qemu_features, error))
        return FALSE;
    for (char **f = p->qemu_features; f && *f; f++) {
        if (!dmg_qemu_profile_add_feature(probe, *f, &err)) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        _("%s: [profile] qemu-features: %s"), p->path, err->message);
            return FALSE;
        }
    }
    if (!policy_get_string(kf, p->path, "profile", "host-profile", &host_profile, error))
        return FALSE;
    if (host_profile && *host_profile) {
        if (*host_profile != '/') {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        _("%s: [profile] host-profile must be an absolute path"), p->path);
            return FALSE;
        }
        p->host_profile = g_steal_pointer(&host_profile);
    }
    if (!policy_get_string(kf, p->path, "profile", "qemu-cache", &qemu_cache, error))
        return FALSE;
    if (qemu_cache) {
        if (*qemu_cache && *qemu_cache != '/') {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        _("%s: [profile] qemu-cache must be an absolute path, or empty for no cache"),
                        p->path);
            return FALSE;
        }
        g_free(p->qemu_cache);
        p->qemu_cache = *qemu_cache ? g_steal_pointer(&qemu_cache) : NULL;
    }
    return TRUE;
}

gboolean
dmg_hook_policy_load(dmgHookPolicy *p, const char *path, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *text = NULL;
    gsize len;

    policy_defaults(p, path);
    if (!g_file_get_contents(path, &text, &len, &err)) {
        if (g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&err));
        return FALSE;
    }
    if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &err)) {
        policy_salvage_hook(p, text);
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE,
                    _("%s: %s"), path, err->message);
        return FALSE;
    }
    /* [hook] first: it says how to fail if the rest is wrong. */
    if (!policy_read_hook(p, kf, error))
        return FALSE;
    if (!policy_check_keys(kf, path, error))
        return FALSE;
    if (!policy_get_list(kf, path, "refuse", "codes", &p->refuse_codes, error) ||
        !policy_check_codes(p->refuse_codes, path, "refuse", error))
        return FALSE;
    if (!policy_get_list(kf, path, "warn-only", "codes", &p->warn_only_codes, error) ||
        !policy_check_codes(p->warn_only_codes, path, "warn-only", error))
        return FALSE;
    if (!policy_get_bool(kf, path, "migration", "refuse", &p->refuse_migration, error))
        return FALSE;
    return policy_read_profile(p, kf, error);
}

dmgHostProfile *
dmg_hook_policy_host_profile(const dmgHookPolicy *p, GError **error)
{
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new(p->sysfs);

    dmg_host_profile_read_sysfs(host);
    /* As virt-dmaguard check: /dev/kvm describes this machine, so ask it
     * only when judging this machine's sysfs. */
    if (strcmp(p->sysfs, "/sys") == 0)
        dmg_host_profile_probe_kvm(host, NULL);
    if (p->host_profile && !dmg_host_profile_load_file(host, p->host_profile, error))
        return NULL;
    return g_steal_pointer(&host);
}

dmgQemuProfile *
dmg_hook_policy_qemu_profile(const dmgHookPolicy *p, char **note, GError **error)
{
    g_autoptr(dmgQemuProfile) qemu = dmg_qemu_profile_new();

    *note = NULL;
    if (p->qemu_version) {
        dmgQemuVersion newest = dmg_qemu_version_newest();

        if (!dmg_qemu_profile_set_version(qemu, p->qemu_version, error))
            return NULL;
        if (qemu->version.major > newest.major ||
            (qemu->version.major == newest.major && qemu->version.minor > newest.minor))
            *note = g_strdup_printf(_("QEMU %s is newer than the newest version dmaguard knows (%u.%u); it is judged by %u.%u's rules"),
                                    p->qemu_version, newest.major, newest.minor,
                                    newest.major, newest.minor);
    } else {
        g_autofree char *hint = g_strdup_printf(_("set qemu-version in [profile] of %s"), p->path);
        dmgQemuProber *prober = dmg_qemu_prober_new(p->qemu_cache, hint);

        /* The probe fails with its own message before the analysis is
         * killed at the timeout. */
        dmg_qemu_prober_set_deadline(prober, (guint)MIN(DMG_QEMU_PROBE_DEADLINE_MS,
                                                        p->timeout_s * 750));
        dmg_qemu_profile_set_prober(qemu, prober);
    }
    for (char **f = p->qemu_features; f && *f; f++) {
        if (!dmg_qemu_profile_add_feature(qemu, *f, error))
            return NULL;
    }
    return g_steal_pointer(&qemu);
}

bool
dmg_hook_policy_refuses(const dmgHookPolicy *p, const char *code)
{
    if (p->warn_only_codes && g_strv_contains((const char *const *)p->warn_only_codes, code))
        return false;
    if (!p->refuse_codes || !*p->refuse_codes)
        return true;
    return g_strv_contains((const char *const *)p->refuse_codes, code);
}

/*
 * qemu_probe.c: ask an emulator binary what it is, once.
 *
 * One spawn per binary: `BINARY -machine none -nodefaults -no-user-config
 * -display none -qmp stdio` with query-version and one
 * device-list-properties per device type on its standard input, as
 * libvirt's virQEMUCapsInitQMP() asks.  That is one QEMU start instead of
 * `--version` plus one `-device TYPE,help` per type (measured with QEMU
 * 7.2: 20-60 ms against 250-390 ms).  The spawn has a deadline and its
 * output a cap; the answer is kept in memory for the process and in a key
 * file per binary, keyed by path, size, mtime and dmaguard's version.
 *
 * Messages never quote what the binary printed: it may be anything.
 */
#include "qemu_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dmg_i18n.h"

G_DEFINE_QUARK(dmg-qemu-probe-error-quark, dmg_qemu_probe_error)

#define PROBE_CACHE_FORMAT 3  /* 2: vfio-pci-nohotplug probed too;
                               * 3: the balloon's ccw and mmio types */
#define PROBE_MAX_PROPS 4096
#define PROBE_MAX_NAME 128

/* Keep in step with the drivers of qemu_command.c (test-qemu-probe checks
 * the golden argv files against it). */
static const char *const probe_device_types[] = {
    "vfio-pci", "vfio-pci-nohotplug", "vfio-ccw", "vfio-ap",
    "virtio-balloon-pci", "virtio-balloon-pci-transitional",
    "virtio-balloon-pci-non-transitional", "virtio-balloon-ccw", "virtio-balloon-device",
    "intel-iommu", "amd-iommu", "virtio-iommu-pci",
    "virtio-mem-pci", "pc-dimm",
    NULL,
};

struct _dmgQemuProbe {
    gint ref;
    char *path;
    unsigned major, minor, micro;
    GHashTable *devices;         /* type -> GHashTable set of properties;
                                  * types the binary lacks are absent */
};

typedef struct {
    goffset size;
    char *mtime;                 /* "SECONDS.NANOSECONDS" */
    dmgQemuProbe *probe;         /* or the error it gave */
    GError *error;
} probe_memo;

struct _dmgQemuProber {
    char *cache_dir;
    bool cache_checked;          /* cache_dir verified (or dropped) */
    char *hint;
    guint deadline_ms;
    guint spawns;
    GHashTable *memo;            /* path -> probe_memo */
};

const char *const *
dmg_qemu_probe_device_types(void)
{
    return probe_device_types;
}

/* ---- the probe ------------------------------------------------------- */

static dmgQemuProbe *
probe_new(const char *path)
{
    dmgQemuProbe *p = g_new0(dmgQemuProbe, 1);

    p->ref = 1;
    p->path = g_strdup(path);
    p->devices = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)g_hash_table_unref);
    return p;
}

dmgQemuProbe *
dmg_qemu_probe_ref(dmgQemuProbe *p)
{
    g_atomic_int_inc(&p->ref);
    return p;
}

void
dmg_qemu_probe_unref(dmgQemuProbe *p)
{
    if (!p || !g_atomic_int_dec_and_test(&p->ref))
        return;
    g_free(p->path);
    g_hash_table_unref(p->devices);
    g_free(p);
}

const char *
dmg_qemu_probe_path(const dmgQemuProbe *p)
{
    return p->path;
}

void
dmg_qemu_probe_version(const dmgQemuProbe *p, unsigned *major, unsigned *minor,
                       unsigned *micro)
{
    *major = p->major;
    *minor = p->minor;
    if (micro)
        *micro = p->micro;
}

bool
dmg_qemu_probe_knows_type(const dmgQemuProbe *p, const char *type)
{
    return p && type && g_strv_contains(probe_device_types, type);
}

bool
dmg_qemu_probe_has_type(const dmgQemuProbe *p, const char *type)
{
    return g_hash_table_contains(p->devices, type);
}

bool
dmg_qemu_probe_has_property(const dmgQemuProbe *p, const char *type, const char *prop)
{
    GHashTable *props = g_hash_table_lookup(p->devices, type);

    return props && g_hash_table_contains(props, prop);
}

/* A property name as QEMU spells them; anything else is not QEMU's. */
static bool
probe_name_valid(const char *name)
{
    gsize len = name ? strlen(name) : 0;

    if (!len || len > PROBE_MAX_NAME)
        return false;
    for (const char *c = name; *c; c++) {
        if (!g_ascii_isalnum(*c) && !strchr("-_.", *c))
            return false;
    }
    return true;
}

static GHashTable *
probe_add_type(dmgQemuProbe *p, const char *type)
{
    GHashTable *props = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    g_hash_table_replace(p->devices, g_strdup(type), props);
    return props;
}

/* ---- errors ------------------------------------------------------------ */

static void
probe_fail(const dmgQemuProber *pr, GError **error, int code, const char *path,
           const char *reason)
{
    g_set_error(error, DMG_QEMU_PROBE_ERROR, code,
                _("cannot probe the QEMU binary %s: %s; set the domain's <emulator> to an installed qemu-system binary, or %s"),
                path, reason, pr->hint);
}

/* ---- the QMP session ------------------------------------------------- */

static char *
probe_commands(void)
{
    GString *s = g_string_new("{\"execute\": \"qmp_capabilities\", \"id\": \"caps\"}\n"
                              "{\"execute\": \"query-version\", \"id\": \"version\"}\n");

    for (const char *const *t = probe_device_types; *t; t++)
        g_string_append_printf(s, "{\"execute\": \"device-list-properties\", "
                               "\"arguments\": {\"typename\": \"%s\"}, \"id\": \"device %s\"}\n",
                               *t, *t);
    g_string_append(s, "{\"execute\": \"quit\", \"id\": \"quit\"}\n");
    return g_string_free(s, FALSE);
}

/* In the child, before exec: async-signal-safe calls only. */
static void
probe_child_setup(gpointer data)
{
    /* Its own process group: a deadline kills whatever it started. */
    setpgid(0, 0);
    /* It dies with the process that asked: the hook kills its analysis
     * process at its timeout, probe or not. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != (pid_t)GPOINTER_TO_INT(data))
        _exit(127);
}

static void
probe_kill(GPid pid, int *status)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
}

typedef enum {
    RUN_OK,
    RUN_TIMEOUT,
    RUN_TOO_BIG,
    RUN_FAILED,
} probe_run_result;

/* Exchange @cmds with the child on @fd until it closes its end, the
 * deadline passes or it prints too much. */
static probe_run_result
probe_exchange(int fd, const char *cmds, gint64 deadline, GByteArray *out)
{
    gsize len = strlen(cmds), sent = 0;

    for (;;) {
        gint64 left = deadline - g_get_monotonic_time();
        struct pollfd pfd = { .fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0) };
        guint8 chunk[16384];
        ssize_t n;
        int rc;

        if (left <= 0)
            return RUN_TIMEOUT;
        rc = poll(&pfd, 1, (int)MIN((left + 999) / 1000, G_MAXINT));
        if (rc < 0 && errno != EINTR)
            return RUN_FAILED;
        if (rc <= 0)
            continue;
        if ((pfd.revents & POLLOUT) && sent < len) {
            n = send(fd, cmds + sent, len - sent, MSG_NOSIGNAL);
            /* No shutdown() after the last one: QEMU drops the queued
             * commands when its QMP input closes.  "quit" ends it. */
            if (n > 0)
                sent += (gsize)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                sent = len;          /* it stopped reading: read what it said */
        }
        if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return RUN_OK;
        if (out->len + (gsize)n > DMG_QEMU_PROBE_MAX_OUTPUT)
            return RUN_TOO_BIG;
        g_byte_array_append(out, chunk, (guint)n);
    }
}

/* Run the binary; its whole output in @out, or FALSE with @error. */
static gboolean
probe_run(dmgQemuProber *pr, const char *path, GByteArray *out, GError **error)
{
    const char *argv[] = {
        path, "-machine", "none", "-nodefaults", "-no-user-config",
        "-display", "none", "-qmp", "stdio", NULL,
    };
    const char *env_path = g_getenv("PATH");
    g_autofree char *path_var = g_strconcat("PATH=", env_path ? env_path : "/usr/bin:/bin", NULL);
    const char *envp[] = { "LC_ALL=C", path_var, NULL };
    g_autofree char *cmds = probe_commands();
    g_autoptr(GError) err = NULL;
    gint64 deadline = g_get_monotonic_time() + (gint64)pr->deadline_ms * 1000;
    probe_run_result res;
    int sv[2], devnull, status = 0, saved_errno;
    GPid pid;
    gboolean spawned;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_FAILED, path, g_strerror(errno));
        return FALSE;
    }
    if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_FAILED, path, g_strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return FALSE;
    }
    spawned = g_spawn_async_with_fds(NULL, (char **)argv, (char **)envp,
                                     G_SPAWN_DO_NOT_REAP_CHILD, probe_child_setup,
                                     GINT_TO_POINTER(getpid()),
                                     &pid, sv[1], sv[1], devnull, &err);
    close(sv[1]);
    close(devnull);
    if (!spawned) {
        g_autofree char *reason = g_strdup_printf(_("it cannot be run (%s)"), err->message);

        close(sv[0]);
        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_FAILED, path, reason);
        return FALSE;
    }
    pr->spawns++;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    res = probe_exchange(sv[0], cmds, deadline, out);
    saved_errno = errno;
    close(sv[0]);

    /* It closed its end: it is exiting.  Reap it before the deadline. */
    while (res == RUN_OK) {
        pid_t w = waitpid(pid, &status, WNOHANG);

        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            saved_errno = errno;
            res = RUN_FAILED;
            break;
        }
        if (g_get_monotonic_time() >= deadline)
            res = RUN_TIMEOUT;
        else
            g_usleep(1000);
    }
    if (res != RUN_OK)
        probe_kill(pid, &status);

    if (res == RUN_TIMEOUT) {
        g_autofree char *reason = g_strdup_printf(_("it did not answer within %g s and was killed"),
                                                  pr->deadline_ms / 1000.0);

        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_TIMEOUT, path, reason);
        return FALSE;
    }
    if (res == RUN_TOO_BIG) {
        g_autofree char *reason = g_strdup_printf(_("it printed more than %d bytes and was killed"),
                                                  DMG_QEMU_PROBE_MAX_OUTPUT);

        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_NOT_QEMU, path, reason);
        return FALSE;
    }
    if (res == RUN_FAILED) {
        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_FAILED, path, g_strerror(saved_errno));
        return FALSE;
    }
    if (WIFSIGNALED(status)) {
        g_autofree char *reason = g_strdup_printf(_("it was killed by signal %d"), WTERMSIG(status));

        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_FAILED, path, reason);
        return FALSE;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        g_autofree char *reason = g_strdup_printf(_("it exited with status %d"),
                                                  WIFEXITED(status) ? WEXITSTATUS(status) : -1);

        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_FAILED, path, reason);
        return FALSE;
    }
    return TRUE;
}

/* ---- reading the answers ------------------------------------------------ */

static JsonObject *
probe_member_object(JsonObject *o, const char *name)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;

    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static bool
probe_member_uint(JsonObject *o, const char *name, unsigned *out)
{
    JsonNode *n = o ? json_object_get_member(o, name) : NULL;
    gint64 v;

    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
        return false;
    v = json_node_get_int(n);
    if (v < 0 || v > 100000)
        return false;
    *out = (unsigned)v;
    return true;
}

/* {"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": ...} */
static bool
probe_read_version(dmgQemuProbe *p, JsonObject *ver)
{
    JsonObject *q = probe_member_object(ver, "qemu");

    return probe_member_uint(q, "major", &p->major) &&
           probe_member_uint(q, "minor", &p->minor) &&
           probe_member_uint(q, "micro", &p->micro);
}

/* [{"name": "x-balloon-allowed", "type": "bool"}, ...] */
static bool
probe_read_properties(dmgQemuProbe *p, const char *type, JsonArray *arr)
{
    GHashTable *props = probe_add_type(p, type);
    guint n = json_array_get_length(arr);

    if (n > PROBE_MAX_PROPS)
        return false;
    for (guint i = 0; i < n; i++) {
        JsonNode *e = json_array_get_element(arr, i);
        JsonNode *name = JSON_NODE_HOLDS_OBJECT(e)
            ? json_object_get_member(json_node_get_object(e), "name") : NULL;
        const char *s;

        if (!name || !JSON_NODE_HOLDS_VALUE(name) ||
            json_node_get_value_type(name) != G_TYPE_STRING ||
            !probe_name_valid(s = json_node_get_string(name)))
            return false;
        g_hash_table_add(props, g_strdup(s));
    }
    return true;
}

/* The static spelling of a device type asked about, or NULL. */
static const char *
probe_type_lookup(const char *type)
{
    for (const char *const *t = probe_device_types; *t; t++) {
        if (strcmp(*t, type) == 0)
            return *t;
    }
    return NULL;
}

/* One answer line; FALSE when it is not QEMU's.  @answered counts the
 * device types answered. */
static bool
probe_read_answer(dmgQemuProbe *p, JsonObject *o, bool *have_version,
                  GHashTable *answered)
{
    JsonNode *idn = json_object_get_member(o, "id");
    JsonNode *ret = json_object_get_member(o, "return");
    const char *id;

    if (json_object_has_member(o, "event") || !idn)
        return true;
    if (!JSON_NODE_HOLDS_VALUE(idn) || json_node_get_value_type(idn) != G_TYPE_STRING)
        return false;
    id = json_node_get_string(idn);
    if (strcmp(id, "version") == 0) {
        if (!ret || !JSON_NODE_HOLDS_OBJECT(ret) || !probe_read_version(p, json_node_get_object(ret)))
            return false;
        *have_version = true;
    } else if (g_str_has_prefix(id, "device ")) {
        const char *type = probe_type_lookup(id + strlen("device "));

        if (!type || g_hash_table_contains(answered, type))
            return false;
        g_hash_table_add(answered, (gpointer)type);
        /* An error (DeviceNotFound): this binary has no such device. */
        if (ret) {
            if (!JSON_NODE_HOLDS_ARRAY(ret) ||
                !probe_read_properties(p, type, json_node_get_array(ret)))
                return false;
        } else if (!probe_member_object(o, "error")) {
            return false;
        }
    }
    return true;
}

/* The session's output: the greeting, then one JSON object per line. */
static dmgQemuProbe *
probe_parse(const char *path, const char *text)
{
    g_autoptr(dmgQemuProbe) p = probe_new(path);
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GHashTable) answered = g_hash_table_new(g_str_hash, g_str_equal);
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    bool greeted = false, have_version = false;

    for (char **l = lines; *l; l++) {
        JsonNode *root;
        JsonObject *o;

        g_strstrip(*l);
        if (!**l)
            continue;
        if (!json_parser_load_from_data(parser, *l, -1, NULL) ||
            !(root = json_parser_get_root(parser)) || !JSON_NODE_HOLDS_OBJECT(root))
            return NULL;
        o = json_node_get_object(root);
        if (!greeted) {
            /* {"QMP": {"version": {"qemu": {...}, ...}, "capabilities": [...]}} */
            if (!probe_member_object(o, "QMP"))
                return NULL;
            greeted = true;
            have_version = probe_read_version(p, probe_member_object(probe_member_object(o, "QMP"),
                                                                     "version"));
            continue;
        }
        if (!probe_read_answer(p, o, &have_version, answered))
            return NULL;
    }
    if (!greeted || !have_version ||
        g_hash_table_size(answered) != g_strv_length((char **)probe_device_types))
        return NULL;
    return g_steal_pointer(&p);
}

static dmgQemuProbe *
probe_binary(dmgQemuProber *pr, const char *path, GError **error)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    dmgQemuProbe *p;

    if (!probe_run(pr, path, out, error))
        return NULL;
    /* NULs included: anything QEMU would not print fails the parse. */
    g_byte_array_append(out, (const guint8 *)"", 1);
    if (memchr(out->data, '\0', out->len - 1) ||
        !(p = probe_parse(path, (const char *)out->data))) {
        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_NOT_QEMU, path,
                   _("it does not answer QMP queries as QEMU does"));
        return NULL;
    }
    return p;
}

/* ---- the cache file ---------------------------------------------------- */

char *
dmg_qemu_probe_user_cache_dir(void)
{
    return g_build_filename(g_get_user_cache_dir(), "dmaguard", NULL);
}

/* The directory, if it is ours alone and writable; else no cache. */
static const char *
prober_cache_dir(dmgQemuProber *pr)
{
    struct stat st;

    if (pr->cache_checked)
        return pr->cache_dir;
    pr->cache_checked = true;
    if (pr->cache_dir &&
        (g_mkdir_with_parents(pr->cache_dir, 0755) < 0 ||
         stat(pr->cache_dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
         st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) ||
         access(pr->cache_dir, W_OK) < 0))
        g_clear_pointer(&pr->cache_dir, g_free);
    return pr->cache_dir;
}

char *
dmg_qemu_prober_cache_file(dmgQemuProber *pr, const char *path)
{
    const char *dir = prober_cache_dir(pr);
    g_autofree char *sum = NULL;
    g_autofree char *name = NULL;

    if (!dir)
        return NULL;
    sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, path, -1);
    name = g_strdup_printf("qemu-probe-%.32s.ini", sum);
    return g_build_filename(dir, name, NULL);
}

static char *
probe_mtime_string(const struct stat *st)
{
    return g_strdup_printf("%lld.%09ld", (long long)st->st_mtim.tv_sec,
                           (long)st->st_mtim.tv_nsec);
}

static bool
probe_key_is(GKeyFile *kf, const char *key, const char *want)
{
    g_autofree char *v = g_key_file_get_string(kf, "probe", key, NULL);

    return v && strcmp(v, want) == 0;
}

/* The cached probe of @path as it is now (@size, @mtime), or NULL: no
 * file, another binary, another dmaguard, or anything malformed. */
static dmgQemuProbe *
probe_cache_read(dmgQemuProber *pr, const char *path, goffset size, const char *mtime)
{
    g_autofree char *file = dmg_qemu_prober_cache_file(pr, path);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(dmgQemuProbe) p = probe_new(path);
    g_autofree char *size_str = g_strdup_printf("%lld", (long long)size);
    g_autofree char *fmt = g_strdup_printf("%d", PROBE_CACHE_FORMAT);
    g_autofree char *version = NULL;
    char tail;

    if (!file || !g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, NULL))
        return NULL;
    if (!probe_key_is(kf, "format", fmt) || !probe_key_is(kf, "dmaguard", PACKAGE_VERSION) ||
        !probe_key_is(kf, "path", path) || !probe_key_is(kf, "size", size_str) ||
        !probe_key_is(kf, "mtime", mtime))
        return NULL;
    version = g_key_file_get_string(kf, "probe", "version", NULL);
    if (!version || sscanf(version, "%u.%u.%u%c", &p->major, &p->minor, &p->micro, &tail) != 3)
        return NULL;
    for (const char *const *t = probe_device_types; *t; t++) {
        g_autofree char *group = g_strconcat("device ", *t, NULL);
        g_auto(GStrv) props = NULL;
        gsize n = 0;
        GHashTable *set;

        if (!g_key_file_has_group(kf, group))
            return NULL;
        if (g_key_file_get_boolean(kf, group, "absent", NULL))
            continue;
        if (!(props = g_key_file_get_string_list(kf, group, "properties", &n, NULL)) ||
            n > PROBE_MAX_PROPS)
            return NULL;
        set = probe_add_type(p, *t);
        for (gsize i = 0; i < n; i++) {
            if (!probe_name_valid(props[i]))
                return NULL;
            g_hash_table_add(set, g_strdup(props[i]));
        }
    }
    return g_steal_pointer(&p);
}

static gint
probe_strcmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Best effort: a cache that cannot be written is no cache. */
static void
probe_cache_write(dmgQemuProber *pr, const dmgQemuProbe *p, goffset size, const char *mtime)
{
    g_autofree char *file = dmg_qemu_prober_cache_file(pr, p->path);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *version = g_strdup_printf("%u.%u.%u", p->major, p->minor, p->micro);
    g_autofree char *data = NULL;
    gsize len = 0;

    if (!file)
        return;
    g_key_file_set_integer(kf, "probe", "format", PROBE_CACHE_FORMAT);
    g_key_file_set_string(kf, "probe", "dmaguard", PACKAGE_VERSION);
    g_key_file_set_string(kf, "probe", "path", p->path);
    g_key_file_set_int64(kf, "probe", "size", size);
    g_key_file_set_string(kf, "probe", "mtime", mtime);
    g_key_file_set_string(kf, "probe", "version", version);
    g_key_file_set_comment(kf, NULL, NULL,
                           " dmaguard's probe of a QEMU binary (qemu_probe.c); it may be deleted", NULL);
    for (const char *const *t = probe_device_types; *t; t++) {
        g_autofree char *group = g_strconcat("device ", *t, NULL);
        GHashTable *props = g_hash_table_lookup(p->devices, *t);
        g_autofree gpointer *names = NULL;
        guint n = 0;

        if (!props) {
            g_key_file_set_boolean(kf, group, "absent", TRUE);
            continue;
        }
        names = g_hash_table_get_keys_as_array(props, &n);
        qsort(names, n, sizeof(*names), probe_strcmp);
        g_key_file_set_string_list(kf, group, "properties", (const char *const *)names, n);
    }
    data = g_key_file_to_data(kf, &len, NULL);
    g_file_set_contents_full(file, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
                             0644, NULL);
}

/* ---- the prober -------------------------------------------------------- */

static void
probe_memo_free(probe_memo *m)
{
    g_free(m->mtime);
    dmg_qemu_probe_unref(m->probe);
    g_clear_error(&m->error);
    g_free(m);
}

dmgQemuProber *
dmg_qemu_prober_new(const char *cache_dir, const char *hint)
{
    dmgQemuProber *pr = g_new0(dmgQemuProber, 1);

    pr->cache_dir = g_strdup(cache_dir && *cache_dir ? cache_dir : NULL);
    pr->hint = g_strdup(hint);
    pr->deadline_ms = DMG_QEMU_PROBE_DEADLINE_MS;
    pr->memo = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify)probe_memo_free);
    return pr;
}

void
dmg_qemu_prober_free(dmgQemuProber *pr)
{
    if (!pr)
        return;
    g_free(pr->cache_dir);
    g_free(pr->hint);
    g_hash_table_unref(pr->memo);
    g_free(pr);
}

void
dmg_qemu_prober_set_deadline(dmgQemuProber *pr, guint ms)
{
    pr->deadline_ms = MAX(ms, 1);
}

guint
dmg_qemu_prober_spawns(const dmgQemuProber *pr)
{
    return pr->spawns;
}

/* What stat() says of @path, as a reason for probe_fail(); NULL when it
 * is an executable file. */
static const char *
probe_check_file(const char *path, struct stat *st)
{
    if (!g_path_is_absolute(path))
        return _("it is not an absolute path");
    if (stat(path, st) < 0)
        return errno == ENOENT ? _("it does not exist") : g_strerror(errno);
    if (!S_ISREG(st->st_mode))
        return _("it is not a regular file");
    if (access(path, X_OK) < 0)
        return _("it is not executable");
    return NULL;
}

dmgQemuProbe *
dmg_qemu_prober_probe(dmgQemuProber *pr, const char *path, GError **error)
{
    struct stat st;
    const char *bad = probe_check_file(path, &st);
    g_autofree char *mtime = NULL;
    probe_memo *m;
    GError *err = NULL;
    dmgQemuProbe *p;

    if (bad) {
        probe_fail(pr, error, DMG_QEMU_PROBE_ERROR_MISSING, path, bad);
        return NULL;
    }
    mtime = probe_mtime_string(&st);
    m = g_hash_table_lookup(pr->memo, path);
    if (m && m->size == st.st_size && strcmp(m->mtime, mtime) == 0) {
        if (m->error) {
            g_propagate_error(error, g_error_copy(m->error));
            return NULL;
        }
        return dmg_qemu_probe_ref(m->probe);
    }
    if (!(p = probe_cache_read(pr, path, st.st_size, mtime)) &&
        (p = probe_binary(pr, path, &err)))
        probe_cache_write(pr, p, st.st_size, mtime);

    m = g_new0(probe_memo, 1);
    m->size = st.st_size;
    m->mtime = g_steal_pointer(&mtime);
    m->probe = p;
    m->error = err;
    g_hash_table_replace(pr->memo, g_strdup(path), m);
    if (err) {
        g_propagate_error(error, g_error_copy(err));
        return NULL;
    }
    return dmg_qemu_probe_ref(p);
}

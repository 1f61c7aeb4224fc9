/*
 * dmaguard_qemu_hook.c: a libvirt qemu hook (/etc/libvirt/hooks/qemu.d/)
 * that refuses to start a domain QEMU would refuse, and an incoming
 * migration dmaguard predicts to be blocked.  docs/dmaguard-qemu-hook.rst.
 *
 * libvirt runs it as `HOOK NAME OP SUBOP EXTRA` with the domain XML on
 * standard input and waits for it: it must be quick, must never call back
 * into libvirt (the daemon is waiting for us: deadlock), and on failure
 * its standard error becomes the error libvirt reports.
 *
 * The analysis runs in a forked child that sends a few tagged lines back
 * through a pipe; the parent only reads stdin and the policy, waits with
 * a timeout, logs and decides.  A crash, a hang or a bad input in the
 * analysis is an "internal error": the domain starts (fail-open) unless
 * the policy says fail-closed=true.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "dmg_i18n.h"
#include "hook_policy.h"
#include "host_profile.h"
#include "qemu_profile.h"

#define HOOK_PROGRAM "dmaguard-qemu-hook"
/* libvirt's domain XML is a few KiB; anything near this is not one. */
#define HOOK_MAX_XML (16 * 1024 * 1024)
/* The child's whole answer: a summary and a few messages. */
#define HOOK_MAX_RESULT (256 * 1024)

enum {
    HOOK_EXIT_OK = 0,
    HOOK_EXIT_REFUSE = 1,
    HOOK_EXIT_USAGE = 2,
};

typedef enum {
    HOOK_KIND_START,             /* prepare begin, start begin */
    HOOK_KIND_MIGRATE,           /* migrate begin (destination) */
} hook_kind;

typedef struct {
    const char *name;
    const char *op;
    const char *subop;
    hook_kind kind;
    int daemon_pid;              /* the libvirt daemon that runs the hook */
} hook_args;

/* What the analysis child sends back, one tagged line each:
 *   S summary    the verdict in one phrase (exactly one)
 *   W text       a warning for the log
 *   R reason     refuse, with this reason (at most one)
 *   I message    internal error: no verdict
 *   E            end of a complete answer                              */
typedef struct {
    char *summary;
    GPtrArray *warnings;         /* char * */
    char *refusal;
    char *internal;
} hook_result;

static void
hook_result_clear(hook_result *r)
{
    g_free(r->summary);
    if (r->warnings)
        g_ptr_array_unref(r->warnings);
    g_free(r->refusal);
    g_free(r->internal);
    memset(r, 0, sizeof(*r));
}

/* One line, whatever the message holds: libvirt shows our stderr as the
 * error, and the log is one record per line. */
static char *
hook_one_line(const char *s)
{
    char *out = g_strdup(s ? s : "");

    for (char *p = out; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    }
    return out;
}


/* ---- the analysis child ------------------------------------------------ */

static void
child_emit(GString *out, char tag, const char *text)
{
    g_autofree char *line = hook_one_line(text);

    g_string_append_printf(out, "%c %s\n", tag, line);
}

/* Library warnings (g_warning, g_critical) go to the log, not to stderr,
 * which must stay one line when we refuse. */
static GLogWriterOutput
child_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                 gpointer user_data)
{
    GString *out = user_data;

    if (!(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)))
        return G_LOG_WRITER_HANDLED;
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0) {
            g_autofree char *msg = g_strdup_printf(_("library message: %s"),
                                                   (const char *)fields[i].value);

            child_emit(out, 'W', msg);
        }
    }
    return G_LOG_WRITER_HANDLED;
}

static const char *
json_str(JsonObject *o, const char *member)
{
    JsonNode *n = o ? json_object_get_member(o, member) : NULL;

    if (!n || JSON_NODE_TYPE(n) != JSON_NODE_VALUE ||
        json_node_get_value_type(n) != G_TYPE_STRING)
        return NULL;
    return json_node_get_string(n);
}

static JsonArray *
json_arr(JsonObject *o, const char *member)
{
    JsonNode *n = o ? json_object_get_member(o, member) : NULL;

    return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL;
}

static JsonObject *
json_obj(JsonObject *o, const char *member)
{
    JsonNode *n = o ? json_object_get_member(o, member) : NULL;

    return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

static JsonObject *
json_arr_obj(JsonArray *a, guint i)
{
    JsonNode *n = json_array_get_element(a, i);

    return JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL;
}

/* "MESSAGE (code CODE)", with the device in front when the message does
 * not name it. */
static char *
finding_text(JsonObject *f)
{
    const char *msg = json_str(f, "message");
    const char *code = json_str(f, "code");
    const char *dev = json_str(f, "device");

    if (!msg)
        msg = "";
    if (!code)
        code = "?";
    if (dev && !strstr(msg, dev))
        return g_strdup_printf(_("%s: %s (code %s)"), dev, msg, code);
    return g_strdup_printf(_("%s (code %s)"), msg, code);
}

static char *
verdict_summary(JsonObject *v)
{
    JsonObject *balloon = json_obj(v, "balloon");
    JsonObject *mig = json_obj(v, "migration");
    JsonArray *errors = json_arr(v, "errors");
    JsonArray *warnings = json_arr(v, "warnings");
    guint nerr = errors ? json_array_get_length(errors) : 0;
    guint nwarn = warnings ? json_array_get_length(warnings) : 0;
    const char *bstate;
    g_autofree char *errs = NULL;
    g_autofree char *warns = NULL;

    if (!json_str(balloon, "device"))
        bstate = _("none");
    else if (balloon && json_object_get_boolean_member_with_default(balloon, "effective", FALSE))
        bstate = _("effective");
    else
        bstate = _("inert");
    errs = g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%u error", "%u errors", nerr), nerr);
    warns = g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%u warning", "%u warnings", nwarn), nwarn);
    return g_strdup_printf(_("balloon %s, migration %s, %s, %s"), bstate,
                           mig && json_object_get_boolean_member_with_default(mig, "allowed", FALSE)
                               ? _("allowed") : _("blocked"),
                           errs, warns);
}

/* prepare/start begin: refuse on the errors the policy refuses. */
static void
judge_start(const dmgHookPolicy *pol, JsonObject *v, GString *out)
{
    JsonArray *errors = json_arr(v, "errors");
    JsonObject *balloon = json_obj(v, "balloon");
    JsonArray *inhibitors = json_arr(balloon, "inhibitors");
    g_autofree char *first = NULL;
    guint nrefuse = 0;

    for (guint i = 0; errors && i < json_array_get_length(errors); i++) {
        JsonObject *e = json_arr_obj(errors, i);
        const char *code = json_str(e, "code");
        g_autofree char *text = NULL;

        if (!e)
            continue;
        text = finding_text(e);
        if (dmg_hook_policy_refuses(pol, code ? code : "")) {
            if (!nrefuse++)
                first = g_steal_pointer(&text);
        } else {
            g_autofree char *w = g_strdup_printf(_("not refused by the policy: %s"), text);

            child_emit(out, 'W', w);
        }
    }

    if (json_str(balloon, "device") &&
        !json_object_get_boolean_member_with_default(balloon, "effective", FALSE)) {
        JsonObject *inh = inhibitors && json_array_get_length(inhibitors)
                              ? json_arr_obj(inhibitors, 0) : NULL;
        g_autofree char *why = inh ? finding_text(inh) : g_strdup(_("no inhibitor listed"));
        g_autofree char *w = g_strdup_printf(_("balloon %s is inert, inflating it returns no memory to the host: %s"),
                                             json_str(balloon, "device"), why);

        child_emit(out, 'W', w);
    }

    if (nrefuse) {
        g_autofree char *reason = NULL;

        if (nrefuse > 1)
            reason = g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%s and %u more problem",
                                                 "%s and %u more problems", nrefuse - 1),
                                     first, nrefuse - 1);
        else
            reason = g_steal_pointer(&first);
        child_emit(out, 'R', reason);
    }
}

/* migrate begin on the destination: refuse a blocked migration. */
static void
judge_migrate(const dmgHookPolicy *pol, JsonObject *v, GString *out)
{
    JsonObject *mig = json_obj(v, "migration");
    JsonArray *blockers = json_arr(mig, "blockers");
    guint n = blockers ? json_array_get_length(blockers) : 0;
    JsonObject *b = n ? json_arr_obj(blockers, 0) : NULL;
    g_autofree char *first = NULL;
    g_autofree char *reason = NULL;

    const char *layer = mig ? json_str(mig, "refused_by") : NULL;
    const char *virsh = mig ? json_str(mig, "virsh_error") : NULL;
    g_autofree char *blockers_text = NULL;

    if (mig && json_object_get_boolean_member_with_default(mig, "allowed", FALSE))
        return;
    first = b ? finding_text(b) : g_strdup(_("migration.allowed is false"));
    if (n > 1)
        blockers_text = g_strdup_printf(g_dngettext(GETTEXT_PACKAGE, "%s and %u more blocker",
                                                    "%s and %u more blockers", n - 1),
                                        first, n - 1);
    else
        blockers_text = g_steal_pointer(&first);
    /* Lead with the layer that refuses first on this stack and the words
     * the user gets from it (libvirt_migration.c). */
    if (layer && virsh)
        reason = g_strdup_printf(g_strcmp0(layer, "libvirt") == 0
                                 ? _("libvirt refuses it (\"%s\"); %s")
                                 : _("QEMU's migration blockers refuse it (\"%s\"); %s"),
                                 virsh, blockers_text);
    else
        reason = g_steal_pointer(&blockers_text);
    if (pol->refuse_migration) {
        child_emit(out, 'R', reason);
    } else {
        g_autofree char *w = g_strdup_printf(_("migration is blocked, not refused ([migration] refuse=false): %s"),
                                             reason);

        child_emit(out, 'W', w);
    }
}

/* The libvirt whose rules apply: the policy's, else the library the daemon
 * that runs this hook maps (read from /proc, never by calling libvirt),
 * else the headers dmaguard was built with. */
static gboolean
child_libvirt_profile(const dmgHookPolicy *pol, const hook_args *a,
                      dmgHostProfile *host, GError **error)
{
    if (pol->libvirt_version)
        return dmg_libvirt_profile_set_version(&host->libvirt, pol->libvirt_version, error);
    if (a->daemon_pid <= 1 || !dmg_libvirt_profile_init_process(&host->libvirt, a->daemon_pid))
        dmg_libvirt_profile_init_built(&host->libvirt);
    return TRUE;
}

static void
child_analyze(const dmgHookPolicy *pol, const hook_args *a,
              const char *xml, gsize len, GString *out)
{
    g_autoptr(dmgHostProfile) host = NULL;
    g_autoptr(dmgQemuProfile) qemu = NULL;
    g_autoptr(JsonNode) verdict = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *summary = NULL;
    g_autofree char *note = NULL;
    JsonObject *v;

    if (!(host = dmg_hook_policy_host_profile(pol, &err)) ||
        !child_libvirt_profile(pol, a, host, &err) ||
        !(qemu = dmg_hook_policy_qemu_profile(pol, &note, &err))) {
        g_autofree char *msg = g_strdup_printf(_("cannot build the host or QEMU profile: %s"),
                                               err->message);

        child_emit(out, 'I', msg);
        return;
    }
    if (note)
        child_emit(out, 'W', note);
    if (!(verdict = dmg_check_xml(xml, len, a->name, host, qemu, &err))) {
        /* A probe's message says what is wrong with which binary. */
        g_autofree char *msg = err->domain == DMG_QEMU_PROBE_ERROR
            ? g_strdup(err->message)
            : g_strdup_printf(_("cannot analyze the domain XML: %s"), err->message);

        child_emit(out, 'I', msg);
        return;
    }
    if (!JSON_NODE_HOLDS_OBJECT(verdict)) {
        child_emit(out, 'I', _("the verdict is not a JSON object"));
        return;
    }
    v = json_node_get_object(verdict);
    summary = verdict_summary(v);
    child_emit(out, 'S', summary);
    if (a->kind == HOOK_KIND_START)
        judge_start(pol, v, out);
    else
        judge_migrate(pol, v, out);
}

static bool
write_all(int fd, const char *buf, gsize len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (gsize)n;
    }
    return true;
}

/* The forked child: never returns. */
static void child_main(int fd, const dmgHookPolicy *pol, const hook_args *a,
                       const char *xml, gsize len) G_GNUC_NORETURN;

static void
child_main(int fd, const dmgHookPolicy *pol, const hook_args *a,
           const char *xml, gsize len)
{
    g_autoptr(GString) out = g_string_new(NULL);
    int devnull;
    bool ok;

    /* Nothing of ours may reach libvirt but the parent's one line (and
     * for migrate begin stdout must stay empty). */
    if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
        dup2(devnull, STDIN_FILENO);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        if (devnull > STDERR_FILENO)
            close(devnull);
    }
    g_log_set_writer_func(child_log_writer, out, NULL);

    if (g_strcmp0(g_getenv("DMAGUARD_HOOK_TEST_CRASH"), "1") == 0) {
        struct rlimit none = { 0, 0 };

        setrlimit(RLIMIT_CORE, &none);   /* a test crash leaves no core */
        abort();
    }
    if (g_strcmp0(g_getenv("DMAGUARD_HOOK_TEST_HANG"), "1") == 0) {
        for (;;)
            pause();
    }

    child_analyze(pol, a, xml, len, out);
    g_string_append(out, "E\n");
    ok = write_all(fd, out->str, out->len);
    close(fd);
    g_string_free(g_steal_pointer(&out), TRUE);
    _exit(ok ? 0 : 3);
}


/* ---- the parent -------------------------------------------------------- */

/* Parse the child's answer; FALSE when it is not a complete one. */
static gboolean
parse_result(const char *buf, hook_result *r, GError **error)
{
    g_auto(GStrv) lines = g_strsplit(buf, "\n", -1);
    bool end = false;

    r->warnings = g_ptr_array_new_with_free_func(g_free);
    for (char **l = lines; *l; l++) {
        const char *text = (*l)[0] && (*l)[1] == ' ' ? *l + 2 : NULL;

        if (!**l)
            continue;
        if (end || (!text && strcmp(*l, "E") != 0))
            goto bad;
        switch (**l) {
        case 'S': g_free(r->summary); r->summary = g_strdup(text); break;
        case 'W': g_ptr_array_add(r->warnings, g_strdup(text)); break;
        case 'R': g_free(r->refusal); r->refusal = g_strdup(text); break;
        case 'I': g_free(r->internal); r->internal = g_strdup(text); break;
        case 'E': end = true; break;
        default: goto bad;
        }
    }
    if (!end)
        goto bad;
    if (!r->internal && !r->summary)
        goto bad;
    return TRUE;

 bad:
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("the analysis process sent an incomplete or malformed answer"));
    return FALSE;
}

/* Run the analysis in a child; fill @r, or return FALSE with @error when
 * it crashed, hung, or failed to answer. */
static gboolean
run_child(const dmgHookPolicy *pol, const hook_args *a, const char *xml, gsize len,
          hook_result *r, GError **error)
{
    g_autoptr(GString) buf = NULL;
    gint64 deadline = g_get_monotonic_time() + (gint64)pol->timeout_s * G_USEC_PER_SEC;
    bool timed_out = false, too_big = false;
    int fds[2];
    int status = 0;
    sigset_t chld, old_mask;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("cannot create a pipe: %s"), g_strerror(errno));
        return FALSE;
    }
    fflush(NULL);
    /* SIGCHLD stays pending for sigtimedwait() below rather than being
     * discarded (its default action is to ignore it). */
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);
    if ((pid = fork()) < 0) {
        int e = errno;

        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        close(fds[0]);
        close(fds[1]);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                    _("cannot fork the analysis process: %s"), g_strerror(e));
        return FALSE;
    }
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        close(fds[0]);
        child_main(fds[1], pol, a, xml, len);
    }
    close(fds[1]);
    /* Allocated after the fork: the child owns nothing of the parent's. */
    buf = g_string_new(NULL);

    for (;;) {
        gint64 left = deadline - g_get_monotonic_time();
        struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
        char chunk[8192];
        ssize_t n;
        int rc;

        if (left <= 0) {
            timed_out = true;
            break;
        }
        rc = poll(&pfd, 1, (int)MIN((left + 999) / 1000, G_MAXINT));
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        n = read(fds[0], chunk, sizeof(chunk));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break;
        if (buf->len + (gsize)n > HOOK_MAX_RESULT) {
            too_big = true;
            break;
        }
        g_string_append_len(buf, chunk, n);
    }
    close(fds[0]);

    /* The pipe closes when the child exits; give it what is left of the
     * timeout to be reaped, then kill it.  Waking on SIGCHLD rather than
     * polling: the child exits right after its answer, and libvirt waits
     * for us (bench/bench-hook.sh). */
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        gint64 left = deadline - g_get_monotonic_time();
        struct timespec ts;

        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            int e = errno;

            sigprocmask(SIG_SETMASK, &old_mask, NULL);
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                        _("cannot wait for the analysis process: %s"), g_strerror(e));
            return FALSE;
        }
        if (timed_out || too_big || left <= 0) {
            if (!too_big)
                timed_out = true;
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        ts.tv_sec = left / G_USEC_PER_SEC;
        ts.tv_nsec = (left % G_USEC_PER_SEC) * 1000;
        /* Any outcome (the signal, EAGAIN at the deadline, EINTR) loops
         * back to waitpid(), which alone decides. */
        (void)sigtimedwait(&chld, NULL, &ts);
    }
    /* A SIGCHLD that arrived after the last sigtimedwait() is dropped
     * here: it is ignored by default and there is no other child. */
    sigprocmask(SIG_SETMASK, &old_mask, NULL);

    if (timed_out) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    _("the analysis did not finish within %d s and was killed"),
                    pol->timeout_s);
        return FALSE;
    }
    if (too_big) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the analysis process sent more than %d bytes"), HOOK_MAX_RESULT);
        return FALSE;
    }
    if (WIFSIGNALED(status)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("the analysis process died of signal %d (%s)"),
                    WTERMSIG(status), strsignal(WTERMSIG(status)));
        return FALSE;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("the analysis process exited with status %d"),
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return FALSE;
    }
    return parse_result(buf->str, r, error);
}

/* Up to HOOK_MAX_XML bytes of stdin; more is not a domain XML. */
static char *
read_stdin(gsize *len, GError **error)
{
    g_autoptr(GByteArray) xml = g_byte_array_new();
    guint8 chunk[65536];

    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        _("cannot read the domain XML from standard input: %s"),
                        g_strerror(errno));
            return NULL;
        }
        if (n == 0)
            break;
        if (xml->len + (gsize)n > HOOK_MAX_XML) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                        _("the domain XML on standard input is larger than %d MiB"),
                        HOOK_MAX_XML / (1024 * 1024));
            return NULL;
        }
        g_byte_array_append(xml, chunk, (guint)n);
    }
    *len = xml->len;
    g_byte_array_append(xml, (const guint8 *)"", 1);
    return (char *)g_byte_array_free(g_steal_pointer(&xml), FALSE);
}

typedef struct {
    const dmgHookPolicy *pol;
    const hook_args *a;
    int fd;                      /* -1: not open (yet) */
    char *error;                 /* why the log cannot be written */
} hook_log;

static void
log_open(hook_log *l)
{
    g_autofree char *dir = NULL;

    if (!l->pol->log_path)
        return;
    dir = g_path_get_dirname(l->pol->log_path);
    if (g_mkdir_with_parents(dir, 0750) < 0) {
        l->error = g_strdup_printf(_("cannot create %s: %s"), dir, g_strerror(errno));
        return;
    }
    l->fd = open(l->pol->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (l->fd < 0)
        l->error = g_strdup_printf(_("cannot open %s: %s"), l->pol->log_path, g_strerror(errno));
}

/* One record: time, domain, op/subop, verdict summary, and what happened.
 * One write() per line, so that concurrent hooks do not interleave. */
static void
log_line(hook_log *l, const char *summary, const char *what)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S%:z");
    g_autofree char *name = hook_one_line(l->a->name);
    g_autofree char *text = hook_one_line(what);
    g_autofree char *line = NULL;

    if (l->fd < 0)
        return;
    line = g_strdup_printf(_("%s %s[%d]: domain %s %s/%s: %s: %s"), stamp, HOOK_PROGRAM,
                           (int)getpid(), name, l->a->op, l->a->subop,
                           summary ? summary : _("no verdict"), text);
    line = g_realloc(line, strlen(line) + 2);
    strcat(line, "\n");
    if (!write_all(l->fd, line, strlen(line)) && !l->error)
        l->error = g_strdup_printf(_("cannot write %s: %s"), l->pol->log_path, g_strerror(errno));
}

static void
usage(FILE *fp)
{
    fprintf(fp, _("Usage: %s NAME OP SUBOP [EXTRA]\n"
                  "A libvirt qemu hook: install it in /etc/libvirt/hooks/qemu.d/.\n"
                  "It analyzes the domain XML on standard input for 'prepare begin',\n"
                  "'start begin' and 'migrate begin' and exits 0 for anything else.\n"
                  "Policy: %s (or $DMAGUARD_CONF).\n"),
            HOOK_PROGRAM, DMG_HOOK_CONF_DEFAULT);
}

int
main(int argc, char **argv)
{
    g_auto(dmgHookPolicy) pol = { 0 };
    g_autoptr(GError) err = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *name = NULL;
    g_autofree char *failure = NULL;
    hook_result res = { 0 };
    hook_log log = { .fd = -1 };
    hook_args a;
    const char *conf;
    gsize len = 0;
    int ret = HOOK_EXIT_OK;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        setlocale(LC_ALL, "");
        bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
        bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
        usage(stdout);
        return HOOK_EXIT_OK;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("%s %s\n", HOOK_PROGRAM, PACKAGE_VERSION);
        return HOOK_EXIT_OK;
    }
    if (argc < 4) {
        setlocale(LC_ALL, "");
        bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
        bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
        usage(stderr);
        return HOOK_EXIT_USAGE;
    }

    /* Everything but these three returns at once: no stdin, no parse. */
    a.name = argv[1];
    a.op = argv[2];
    a.subop = argv[3];
    /* libvirt runs its hooks as children of the daemon (virHookCall()). */
    a.daemon_pid = (int)getppid();
    if ((strcmp(a.op, "prepare") == 0 || strcmp(a.op, "start") == 0) &&
        strcmp(a.subop, "begin") == 0)
        a.kind = HOOK_KIND_START;
    else if (strcmp(a.op, "migrate") == 0 && strcmp(a.subop, "begin") == 0)
        a.kind = HOOK_KIND_MIGRATE;
    else
        return HOOK_EXIT_OK;

    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    /* libvirt may stop reading our stderr early; never die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    /* Inherited SIG_IGN would reap the analysis child behind our back. */
    signal(SIGCHLD, SIG_DFL);
    name = hook_one_line(a.name);

    conf = g_getenv("DMAGUARD_CONF");
    if (!conf || !*conf)
        conf = DMG_HOOK_CONF_DEFAULT;
    log.pol = &pol;
    log.a = &a;
    if (!dmg_hook_policy_load(&pol, conf, &err)) {
        failure = g_strdup_printf(_("bad policy file: %s"), err->message);
    } else if (!(xml = read_stdin(&len, &err))) {
        failure = g_strdup(err->message);
    } else if (!run_child(&pol, &a, xml, len, &res, &err)) {
        failure = g_strdup(err->message);
    } else if (res.internal) {
        failure = g_strdup(res.internal);
    }
    log_open(&log);

    if (failure) {
        g_autofree char *what = NULL;
        g_autofree char *one = hook_one_line(failure);

        if (pol.fail_closed) {
            what = g_strdup_printf(_("internal error: %s; REFUSED (fail-closed=true)"), failure);
            ret = HOOK_EXIT_REFUSE;
        } else {
            what = g_strdup_printf(_("internal error: %s; allowed (fail-closed=false)"), failure);
        }
        log_line(&log, NULL, what);
        fprintf(stderr, _("dmaguard: domain %s: internal error: %s\n"), name, g_strstrip(one));
    } else {
        for (guint i = 0; i < res.warnings->len; i++) {
            g_autofree char *what = g_strdup_printf(_("warning: %s"),
                                                    (char *)g_ptr_array_index(res.warnings, i));

            log_line(&log, res.summary, what);
        }
        if (res.refusal) {
            g_autofree char *what = g_strdup_printf(_("REFUSED: %s"), res.refusal);

            log_line(&log, res.summary, what);
            if (a.kind == HOOK_KIND_MIGRATE)
                fprintf(stderr, _("dmaguard: domain %s cannot migrate: %s\n"), name, res.refusal);
            else
                fprintf(stderr, _("dmaguard: domain %s: %s\n"), name, res.refusal);
            ret = HOOK_EXIT_REFUSE;
        } else {
            log_line(&log, res.summary, _("allowed"));
        }
    }

    /* stderr is libvirt's error message only when we refuse; otherwise a
     * log problem may be said there (libvirt ignores it on success). */
    if (log.error && ret == HOOK_EXIT_OK)
        fprintf(stderr, _("dmaguard: log: %s\n"), log.error);
    if (log.fd >= 0)
        close(log.fd);
    g_free(log.error);
    hook_result_clear(&res);
    return ret;
}

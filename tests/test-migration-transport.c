/*
 * test-migration-transport.c: the migration stream's transports, TCP and
 * UNIX sockets (src/vmm/migration/socket.c) and TLS over them
 * (src/vmm/migration/tls_session.c), over loopback with certificates that
 * tests/tls-certs.sh makes with certtool at run time.
 *
 * The peer runs in a thread; every case checks that both ends finish
 * within their timeout and that no fd is left open.
 */
#include <errno.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/socket.h"
#include "migration/tls.h"

#ifndef TLS_CERTS_SCRIPT
#error "TLS_CERTS_SCRIPT: tests/meson.build passes the path of tls-certs.sh"
#endif

#define MiB (1024u * 1024)
#define BIG (64 * MiB)
#define CHUNK MiB
#define TIMEOUT_MS 30000u
/* A failing handshake must fail at once, not at its timeout: well below
 * TIMEOUT_MS.  Under valgrind on a busy machine a failing TLS session took
 * up to 4.3 s here. */
#define QUICK_USEC ((gint64)TIMEOUT_MS * 1000 / 2)

static char *tmp_dir;                    /* certificates, UNIX sockets */
static char *certs_failure;              /* why tls-certs.sh failed */
static guint8 *pattern;                  /* BIG bytes that both ends check */

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static guint
fd_count(void)
{
    g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
    guint n = 0;

    g_assert_nonnull(d);
    while (g_dir_read_name(d))
        n++;
    return n;
}

static void
pattern_init(void)
{
    guint64 x = 0x9e3779b97f4a7c15ull;

    pattern = g_malloc(BIG);
    for (gsize i = 0; i < BIG; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(pattern + i, &x, 8);
    }
}

static gboolean
have_certs(void)
{
    if (!certs_failure)
        return TRUE;
    g_test_message("%s", certs_failure);
    g_test_fail();
    return FALSE;
}

static char *
cert_dir(const char *name)
{
    return g_build_filename(tmp_dir, "certs", name, NULL);
}

static void
rm_rf(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, name, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
            rm_rf(p);
        else
            g_unlink(p);
    }
    g_rmdir(path);
}

/* The certificates, made once.  Failing here fails every TLS case with
 * the script's words: CI installs gnutls-bin, a skip would hide that. */
static void
certs_make(void)
{
    g_autofree char *dir = cert_dir(NULL);
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GError) e = NULL;
    const char *argv[] = { "bash", TLS_CERTS_SCRIPT, dir, NULL };
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                      &out, &err, &status, &e))
        certs_failure = g_strdup_printf("cannot run %s: %s", TLS_CERTS_SCRIPT, e->message);
    else if (!g_spawn_check_wait_status(status, &e))
        certs_failure = g_strdup_printf("%s failed (%s): %s", TLS_CERTS_SCRIPT, e->message, err);
}

/* First of the TLS cases, so that a missing certtool fails under a name
 * that says so. */
static void
test_tls_certificates(void)
{
    g_autofree char *ca = cert_dir("good/ca-cert.pem");

    if (have_certs())
        g_assert_true(g_file_test(ca, G_FILE_TEST_EXISTS));
}

static void
assert_quick(gint64 start)
{
    g_assert_cmpint(g_get_monotonic_time() - start, <, QUICK_USEC);
}

static void
assert_error_has(const GError *e, const char *what)
{
    g_assert_nonnull(e);
    if (!strstr(e->message, what))
        g_error("expected '%s' in the error: %s", what, e->message);
}

/* ------------------------------------------------------------------ */
/* Plain data, both directions                                          */

static gboolean
plain_write_all(int fd, const guint8 *buf, gsize len)
{
    for (gsize off = 0; off < len;) {
        gssize r = send(fd, buf + off, len - off, MSG_NOSIGNAL);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return FALSE;
        off += r;
    }
    return TRUE;
}

/* Reads BIG bytes and compares them with the pattern as they come. */
static gboolean
plain_read_check(int fd)
{
    g_autofree guint8 *buf = g_malloc(CHUNK);

    for (gsize off = 0; off < BIG;) {
        gssize r = recv(fd, buf, MIN(CHUNK, BIG - off), 0);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || memcmp(buf, pattern + off, r) != 0)
            return FALSE;
        off += r;
    }
    return TRUE;
}

typedef struct plain_peer {
    GThread *thread;
    int lfd;
    gboolean ok;
    char *peer;
    GError *err;
} plain_peer;

/* Accept, check BIG bytes in, send BIG bytes back. */
static gpointer
plain_peer_main(gpointer data)
{
    plain_peer *p = data;
    int fd = migration_socket__accept(p->lfd, TIMEOUT_MS, &p->err);

    if (fd < 0)
        return NULL;
    p->peer = migration_socket__peer(fd);
    p->ok = plain_read_check(fd) && plain_write_all(fd, pattern, BIG);
    close(fd);
    return NULL;
}

/* Listen on @listen_addr, connect to @connect_addr (NULL: 127.0.0.1 and
 * the port), move BIG bytes each way; @peer_out: the server's view. */
static void
plain_transfer(const char *listen_addr, const char *connect_addr, char **peer_out)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *addr = NULL, *mine = NULL;
    plain_peer p = { 0 };
    int fd;

    p.lfd = migration_socket__listen(listen_addr, &e);
    g_assert_no_error(e);
    addr = connect_addr ? g_strdup(connect_addr)
                        : g_strdup_printf("127.0.0.1:%u", migration_socket__port(p.lfd));
    p.thread = g_thread_new("plain-peer", plain_peer_main, &p);
    fd = migration_socket__connect(addr, TIMEOUT_MS, &e);
    g_assert_no_error(e);
    mine = migration_socket__peer(fd);
    g_assert_true(plain_write_all(fd, pattern, BIG));
    g_assert_true(plain_read_check(fd));
    close(fd);
    g_thread_join(p.thread);
    g_assert_no_error(p.err);
    g_assert_true(p.ok);
    close(p.lfd);
    if (!connect_addr)
        g_assert_cmpstr(mine, ==, addr);
    *peer_out = p.peer;
}

static void
test_tcp_transfer(void)
{
    guint fds = fd_count();
    g_autofree char *peer = NULL;

    plain_transfer("0", NULL, &peer);
    g_assert_true(g_str_has_prefix(peer, "127.0.0.1:"));
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_tcp_forms(void)
{
    guint fds = fd_count();
    g_autofree char *p1 = NULL, *p2 = NULL;

    /* "tcp:HOST:PORT" and "[::1]:PORT", where the host has IPv6 */
    plain_transfer("tcp:127.0.0.1:0", NULL, &p1);
    if (g_file_test("/proc/net/if_inet6", G_FILE_TEST_EXISTS)) {
        g_autoptr(GError) e = NULL;
        int lfd = migration_socket__listen("[::1]:0", &e);

        if (lfd >= 0) {
            g_autofree char *addr = g_strdup_printf("[::1]:%u", migration_socket__port(lfd));
            int fd = migration_socket__connect(addr, TIMEOUT_MS, &e);
            g_autofree char *peer = NULL;

            g_assert_no_error(e);
            peer = migration_socket__peer(fd);
            g_assert_cmpstr(peer, ==, addr);
            close(fd);
            close(lfd);
        } else {
            g_test_message("no IPv6 loopback: %s", e->message);
        }
    }
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_unix_transfer(void)
{
    guint fds = fd_count();
    g_autofree char *path = g_build_filename(tmp_dir, "mig.sock", NULL);
    g_autofree char *addr = g_strdup_printf("unix:%s", path);
    g_autofree char *peer = NULL;
    g_autoptr(GError) e = NULL;
    int lfd;

    plain_transfer(addr, addr, &peer);
    g_assert_cmpstr(peer, ==, path);
    /* a stale socket file of a dead destination is replaced */
    lfd = migration_socket__listen(addr, &e);
    g_assert_no_error(e);
    g_assert_cmpuint(migration_socket__port(lfd), ==, 0);
    close(lfd);
    g_unlink(path);
    g_assert_cmpuint(fd_count(), ==, fds);
}

/* ------------------------------------------------------------------ */
/* Socket errors                                                        */

static void
test_connect_refused(void)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    g_autofree char *addr = NULL;
    int lfd = migration_socket__listen("0", &e);
    gint64 start;

    g_assert_no_error(e);
    addr = g_strdup_printf("127.0.0.1:%u", migration_socket__port(lfd));
    close(lfd);                          /* nobody listens there now */
    start = g_get_monotonic_time();
    g_assert_cmpint(migration_socket__connect(addr, TIMEOUT_MS, &e), ==, -1);
    assert_quick(start);
    g_assert_error(e, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
    assert_error_has(e, addr);
    assert_error_has(e, "cannot connect to the migration destination");
    g_test_message("%s", e->message);
    g_clear_error(&e);

    g_assert_cmpint(migration_socket__connect("unix:/nonexistent/mig.sock", TIMEOUT_MS, &e), ==, -1);
    g_assert_error(e, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    assert_error_has(e, "unix:/nonexistent/mig.sock");
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_invalid_addresses(void)
{
    static const char *const bad[] = {
        "", "localhost", "localhost:", "localhost:http", "localhost:70000", "localhost:0",
        ":4444", "::1:4444", "[::1]", "[::1]4444", "[]:4444", "[::1:4444", "unix:", "tcp:",
        "tcp:localhost", "4444",
    };
    guint fds = fd_count();

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;
        g_autofree char *want = g_strdup_printf("invalid migration address '%s'", bad[i]);

        g_assert_cmpint(migration_socket__connect(bad[i], 1000, &e), ==, -1);
        g_assert_error(e, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        assert_error_has(e, want);
        assert_error_has(e, "expected HOST:PORT or unix:PATH");
    }
    for (gsize i = 0; i < 4; i++) {
        static const char *const bad_listen[] = { "", "localhost:x", "70000", "[::1" };
        g_autoptr(GError) e = NULL;

        g_assert_cmpint(migration_socket__listen(bad_listen[i], &e), ==, -1);
        g_assert_error(e, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    }
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_accept_timeout(void)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    int lfd = migration_socket__listen("0", &e);
    gint64 start = g_get_monotonic_time();

    g_assert_no_error(e);
    g_assert_cmpint(migration_socket__accept(lfd, 200, &e), ==, -1);
    g_assert_error(e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 190 * 1000);
    assert_quick(start);
    assert_error_has(e, "127.0.0.1:");
    assert_error_has(e, "within 200 ms");
    close(lfd);
    g_assert_cmpuint(fd_count(), ==, fds);
}

/* ------------------------------------------------------------------ */
/* TLS: a server thread, the client in the test's thread                */

typedef enum {
    SRV_ECHO,                            /* check BIG bytes, send BIG back, expect close_notify */
    SRV_HANDSHAKE,                       /* handshake, one read (that must fail or end) */
    SRV_WRITE,                           /* handshake, write BIG: the client goes away */
    SRV_WRITE_DIE,                       /* handshake, write 4 MiB, die: no close_notify */
    SRV_IDLE,                            /* handshake, then take nothing until released */
    SRV_READ,                            /* handshake, read until an error: the client goes away */
    SRV_SILENT,                          /* plain accept; hold the connection, say nothing */
    SRV_GARBAGE,                         /* plain accept; send non-TLS bytes */
} srv_mode;

typedef struct tls_srv {
    GThread *thread;
    int lfd, fd;
    srv_mode mode;
    migration_tls_config cfg;
    guint timeout_ms;
    gboolean handshake_ok, data_ok;
    gssize end;                          /* SRV_ECHO: the last read's count */
    GError *err;
    GMutex lock;                         /* SRV_IDLE waits for @released */
    GCond cond;
    gboolean released;
} tls_srv;

static gboolean
tls_read_check(migration_tls *t, GError **error)
{
    g_autofree guint8 *buf = g_malloc(CHUNK);

    for (gsize off = 0; off < BIG;) {
        gssize r = migration_tls__read(t, buf, MIN(CHUNK, BIG - off), TIMEOUT_MS, error);

        if (r <= 0 || memcmp(buf, pattern + off, r) != 0)
            return FALSE;
        off += r;
    }
    return TRUE;
}

static void
tls_srv_session(tls_srv *s, migration_tls *t)
{
    g_autofree guint8 *buf = g_malloc(CHUNK);

    switch (s->mode) {
    case SRV_ECHO:
        s->data_ok = tls_read_check(t, &s->err) &&
                     migration_tls__write_all(t, pattern, BIG, TIMEOUT_MS, &s->err);
        if (s->data_ok)
            s->end = migration_tls__read(t, buf, CHUNK, TIMEOUT_MS, &s->err);
        break;
    case SRV_HANDSHAKE:
        s->end = migration_tls__read(t, buf, CHUNK, TIMEOUT_MS, &s->err);
        break;
    case SRV_WRITE:
        migration_tls__write_all(t, pattern, BIG, TIMEOUT_MS, &s->err);
        break;
    case SRV_WRITE_DIE:
        migration_tls__write_all(t, pattern, 4 * MiB, TIMEOUT_MS, &s->err);
        shutdown(s->fd, SHUT_RDWR);      /* as a killed process would */
        break;
    case SRV_IDLE:
        g_mutex_lock(&s->lock);
        while (!s->released)
            g_cond_wait(&s->cond, &s->lock);
        g_mutex_unlock(&s->lock);
        break;
    default:
        while (migration_tls__read(t, buf, CHUNK, TIMEOUT_MS, &s->err) > 0)
            ;
        break;
    }
}

/* A peer that is no TLS server: silent, or talking nonsense. */
static void
tls_srv_plain(tls_srv *s, int fd)
{
    static const char junk[] = "HTTP/1.0 400 Bad Request\r\n\r\nthis is no TLS";
    char c;

    if (s->mode == SRV_GARBAGE)
        plain_write_all(fd, (const guint8 *)junk, sizeof(junk));
    /* until the client gives up and closes */
    while (recv(fd, &c, 1, 0) > 0)
        ;
}

static gpointer
tls_srv_main(gpointer data)
{
    tls_srv *s = data;
    int fd = s->fd = migration_socket__accept(s->lfd, TIMEOUT_MS, &s->err);
    migration_tls *t;

    if (fd < 0)
        return NULL;
    if (s->mode == SRV_SILENT || s->mode == SRV_GARBAGE) {
        tls_srv_plain(s, fd);
        close(fd);
        return NULL;
    }
    t = migration_tls__handshake(fd, MIGRATION_TLS_SERVER, &s->cfg, s->timeout_ms, &s->err);
    s->handshake_ok = t != NULL;
    if (t)
        tls_srv_session(s, t);
    migration_tls__free(t);
    close(fd);
    return NULL;
}

/* Listen and start the server; *@fd: the client's connection. */
static tls_srv *
tls_srv_start(srv_mode mode, const char *dir, bool verify_peer, int *fd)
{
    tls_srv *s = g_new0(tls_srv, 1);
    g_autoptr(GError) e = NULL;
    g_autofree char *addr = NULL;

    s->mode = mode;
    s->cfg.x509_dir = dir ? cert_dir(dir) : NULL;
    s->cfg.verify_peer = verify_peer;
    s->timeout_ms = TIMEOUT_MS;
    s->lfd = migration_socket__listen("0", &e);
    g_assert_no_error(e);
    s->thread = g_thread_new("tls-server", tls_srv_main, s);
    addr = g_strdup_printf("127.0.0.1:%u", migration_socket__port(s->lfd));
    *fd = migration_socket__connect(addr, TIMEOUT_MS, &e);
    g_assert_no_error(e);
    return s;
}

static void
tls_srv_release(tls_srv *s)
{
    g_mutex_lock(&s->lock);
    s->released = TRUE;
    g_cond_signal(&s->cond);
    g_mutex_unlock(&s->lock);
}

static void
tls_srv_join(tls_srv *s)
{
    g_thread_join(s->thread);
    close(s->lfd);
    if (s->err)
        g_test_message("server: %s", s->err->message);
}

static void
tls_srv_free(tls_srv *s)
{
    g_clear_error(&s->err);
    g_free((char *)s->cfg.x509_dir);
    g_free(s);
}

static migration_tls *
tls_client(int fd, const char *dir, const char *hostname, guint timeout_ms, GError **e)
{
    g_autofree char *d = cert_dir(dir);
    migration_tls_config cfg = { .x509_dir = d, .hostname = hostname };
    migration_tls *t = migration_tls__handshake(fd, MIGRATION_TLS_CLIENT, &cfg, timeout_ms, e);

    if (!t)
        g_test_message("client: %s", (*e)->message);
    return t;
}

static void
tls_transfer(const char *hostname)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    g_autoptr(migration_tls) t = NULL;
    int fd;
    tls_srv *s;

    if (!have_certs())
        return;
    s = tls_srv_start(SRV_ECHO, "good", true, &fd);
    t = tls_client(fd, "good", hostname, TIMEOUT_MS, &e);
    g_assert_no_error(e);
    g_assert_nonnull(migration_tls__description(t));
    g_assert_true(g_str_has_prefix(migration_tls__description(t), "TLS"));
    g_test_message("%s", migration_tls__description(t));
    g_assert_true(migration_tls__write_all(t, pattern, BIG, TIMEOUT_MS, &e));
    g_assert_no_error(e);
    g_assert_true(tls_read_check(t, &e));
    g_assert_no_error(e);
    g_clear_pointer(&t, migration_tls__free);   /* close_notify: the server reads 0 */
    close(fd);
    tls_srv_join(s);
    g_assert_no_error(s->err);
    g_assert_true(s->handshake_ok);
    g_assert_true(s->data_ok);
    g_assert_cmpint(s->end, ==, 0);
    tls_srv_free(s);
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_tls_transfer(void)
{
    tls_transfer("localhost");
}

static void
test_tls_ip_hostname(void)
{
    tls_transfer("127.0.0.1");
}

/* The client is refused by or refuses the server: both fail at once,
 * with G_IO_ERROR_FAILED, the client with @client_says (maybe only at
 * its first read: TLS 1.3 ends the client's handshake before the server
 * has checked the client's certificate), the server with @server_says. */
static void
tls_refused(const char *srv_dir, bool verify_peer, const char *cli_dir, const char *hostname,
            const char *client_says, const char *server_says)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    g_autoptr(migration_tls) t = NULL;
    gint64 start = g_get_monotonic_time();
    int fd;
    tls_srv *s;

    if (!have_certs())
        return;
    s = tls_srv_start(SRV_HANDSHAKE, srv_dir, verify_peer, &fd);
    t = tls_client(fd, cli_dir, hostname, TIMEOUT_MS, &e);
    if (t) {
        char c;

        g_assert_cmpint(migration_tls__read(t, &c, 1, TIMEOUT_MS, &e), ==, -1);
        g_test_message("client, first read: %s", e->message);
    }
    g_assert_error(e, G_IO_ERROR, G_IO_ERROR_FAILED);
    assert_error_has(e, client_says);
    g_clear_pointer(&t, migration_tls__free);
    close(fd);
    tls_srv_join(s);
    assert_quick(start);
    g_assert_error(s->err, G_IO_ERROR, G_IO_ERROR_FAILED);
    assert_error_has(s->err, server_says);
    tls_srv_free(s);
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_tls_wrong_ca(void)
{
    /* the server's certificate is from another CA */
    tls_refused("other", false, "good", "localhost", "hasn't got a known issuer",
                "alert 'CA is unknown'");
    tls_refused("other", false, "good", "localhost",
                "both sides' certificates must come from the same CA",
                "other/server-cert.pem is not from a CA it trusts");
    tls_refused("other", false, "good", NULL, "issued by 'CN=unrelated test CA'",
                "the migration source 127.0.0.1:");
    tls_refused("other", true, "good", "localhost",
                "the certificate of the migration destination 127.0.0.1:", "CA is unknown");
}

static void
test_tls_wrong_client_ca(void)
{
    /* the client's certificate is from another CA */
    tls_refused("good", true, "badclient", "localhost", "alert 'CA is unknown'",
                "hasn't got a known issuer");
    tls_refused("good", true, "badclient", "localhost",
                "badclient/client-cert.pem is not from a CA it trusts",
                "the certificate of the migration source 127.0.0.1:");
    tls_refused("good", true, "badclient", "localhost", "the migration destination 127.0.0.1:",
                "issued by 'CN=unrelated test CA'");
    tls_refused("good", true, "badclient", "localhost", "same CA",
                "good/ca-cert.pem holds the CA that issued the source's client-cert.pem");
    /* no client certificate at all */
    tls_refused("good", true, "caonly", "localhost", "requires a client certificate",
                "sent no client certificate");
}

static void
test_tls_no_client_cert_needed(void)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    g_autoptr(migration_tls) t = NULL;
    int fd;
    tls_srv *s;

    if (!have_certs())
        return;
    /* verify_peer off: a client without a certificate is let in */
    s = tls_srv_start(SRV_HANDSHAKE, "good", false, &fd);
    t = tls_client(fd, "caonly", "localhost", TIMEOUT_MS, &e);
    g_assert_no_error(e);
    g_clear_pointer(&t, migration_tls__free);
    close(fd);
    tls_srv_join(s);
    g_assert_no_error(s->err);
    g_assert_true(s->handshake_ok);
    g_assert_cmpint(s->end, ==, 0);
    tls_srv_free(s);
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_tls_hostname(void)
{
    tls_refused("wronghost", false, "good", "localhost",
                "Certificate does not match the hostname localhost", "it does not accept");
    tls_refused("wronghost", false, "good", "localhost", "subject 'CN=wrong.example'",
                "wronghost/server-cert.pem");
    tls_refused("good", false, "good", "migration.example",
                "Certificate does not match the hostname migration.example", "Certificate is bad");
    tls_refused("good", false, "good", "127.0.0.2",
                "Certificate does not match the hostname 127.0.0.2", "Certificate is bad");
}

static void
test_tls_expired_revoked(void)
{
    tls_refused("expired", false, "good", "localhost", "The certificate has expired",
                "expired/server-cert.pem has expired");
    tls_refused("expired", false, "good", "localhost", "expired on 2020-12-31",
                "Certificate is expired");
    tls_refused("revoked", false, "revoked", "localhost", "The certificate has been revoked",
                "revoked/server-cert.pem has been revoked");
}

/* ------------------------------------------------------------------ */
/* Credentials that are not there                                       */

/* The handshake fails on loading, before any byte is sent. */
static void
tls_load_fails(const char *dir, migration_tls_role role, gint code,
               const char *file, const char *says)
{
    g_autoptr(GError) e = NULL;
    g_autofree char *path = g_build_filename(dir, file, NULL);
    migration_tls_config cfg = { .x509_dir = dir, .verify_peer = true };
    int sv[2];

    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    g_assert_null(migration_tls__handshake(sv[0], role, &cfg, 1000, &e));
    g_test_message("%s", e->message);
    g_assert_error(e, G_IO_ERROR, code);
    assert_error_has(e, path);
    assert_error_has(e, says);
    close(sv[0]);
    close(sv[1]);
}

static void
copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    g_autofree char *from = g_build_filename(tmp_dir, "certs", from_dir, name, NULL);
    g_autofree char *to = g_build_filename(to_dir, name, NULL);
    g_autofree char *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(from, &data, &len, NULL));
    g_assert_true(g_file_set_contents(to, data, len, NULL));
}

static void
test_tls_missing_files(void)
{
    guint fds = fd_count();
    g_autofree char *none = g_build_filename(tmp_dir, "no-such-dir", NULL);
    g_autofree char *caonly = NULL;
    g_autofree char *half = g_build_filename(tmp_dir, "half", NULL);
    g_autofree char *junk = g_build_filename(half, "ca-cert.pem", NULL);

    if (!have_certs())
        return;
    caonly = cert_dir("caonly");
    tls_load_fails(none, MIGRATION_TLS_CLIENT, G_IO_ERROR_NOT_FOUND, "ca-cert.pem",
                   "cannot load the CA certificate");
    tls_load_fails(none, MIGRATION_TLS_SERVER, G_IO_ERROR_NOT_FOUND, "ca-cert.pem",
                   "migrate --tls needs ca-cert.pem in");
    tls_load_fails(caonly, MIGRATION_TLS_SERVER, G_IO_ERROR_NOT_FOUND, "server-cert.pem",
                   "migrate --tls needs server-cert.pem and server-key.pem in");
    /* a client certificate without its key */
    g_assert_cmpint(g_mkdir(half, 0700), ==, 0);
    copy_file("good", half, "ca-cert.pem");
    copy_file("good", half, "client-cert.pem");
    tls_load_fails(half, MIGRATION_TLS_CLIENT, G_IO_ERROR_NOT_FOUND, "client-key.pem",
                   "No such file or directory");
    /* a key that is not the certificate's */
    copy_file("other", half, "client-key.pem");
    tls_load_fails(half, MIGRATION_TLS_CLIENT, G_IO_ERROR_FAILED, "client-cert.pem",
                   "cannot load the client certificate");
    /* a CA file with no certificate in it */
    g_assert_true(g_file_set_contents(junk, "not a certificate\n", -1, NULL));
    tls_load_fails(half, MIGRATION_TLS_CLIENT, G_IO_ERROR_FAILED, "ca-cert.pem",
                   "cannot load the CA certificate");
    rm_rf(half);
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_tls_default_dir(void)
{
    g_autoptr(GError) e = NULL;
    int sv[2];

    if (g_file_test(MIGRATION_TLS_DEFAULT_DIR "/ca-cert.pem", G_FILE_TEST_EXISTS)) {
        g_test_skip("this host has " MIGRATION_TLS_DEFAULT_DIR "/ca-cert.pem");
        return;
    }
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    g_assert_null(migration_tls__handshake(sv[0], MIGRATION_TLS_CLIENT, NULL, 1000, &e));
    assert_error_has(e, MIGRATION_TLS_DEFAULT_DIR "/ca-cert.pem");
    close(sv[0]);
    close(sv[1]);
}

/* ------------------------------------------------------------------ */
/* Peers that go away, stall, or do not speak TLS                       */

static void
test_tls_peer_closes(void)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    migration_tls *t;
    gint64 start = g_get_monotonic_time();
    g_autofree guint8 *buf = g_malloc(CHUNK);
    int fd;
    tls_srv *s;

    if (!have_certs())
        return;
    /* the client dies while sending: the server's read ends */
    s = tls_srv_start(SRV_READ, "good", true, &fd);
    t = tls_client(fd, "good", "localhost", TIMEOUT_MS, &e);
    g_assert_no_error(e);
    g_assert_true(migration_tls__write_all(t, pattern, 4 * MiB, TIMEOUT_MS, &e));
    shutdown(fd, SHUT_RDWR);             /* as a killed process would, no close_notify */
    migration_tls__free(t);
    close(fd);
    tls_srv_join(s);
    g_assert_error(s->err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    assert_error_has(s->err, "the migration source");
    tls_srv_free(s);

    /* the client dies while receiving: the server's write fails, and
     * raises no SIGPIPE (that would kill this test) */
    s = tls_srv_start(SRV_WRITE, "good", true, &fd);
    t = tls_client(fd, "good", "localhost", TIMEOUT_MS, &e);
    g_assert_no_error(e);
    g_assert_cmpint(migration_tls__read(t, buf, CHUNK, TIMEOUT_MS, &e), >, 0);
    shutdown(fd, SHUT_RDWR);
    migration_tls__free(t);
    close(fd);
    tls_srv_join(s);
    g_assert_error(s->err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    tls_srv_free(s);
    assert_quick(start);
    g_assert_cmpuint(fd_count(), ==, fds);
}

/* The server dies mid-stream: the client reads what was sent, then
 * CONNECTION_CLOSED, not a hang and not a clean end. */
static void
test_tls_server_closes(void)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    g_autoptr(migration_tls) t = NULL;
    g_autofree guint8 *buf = g_malloc(CHUNK);
    gint64 start = g_get_monotonic_time();
    gsize got = 0;
    gssize r;
    int fd;
    tls_srv *s;

    if (!have_certs())
        return;
    s = tls_srv_start(SRV_WRITE_DIE, "good", false, &fd);
    t = tls_client(fd, "good", "localhost", TIMEOUT_MS, &e);
    g_assert_no_error(e);
    while ((r = migration_tls__read(t, buf, CHUNK, TIMEOUT_MS, &e)) > 0) {
        g_assert_cmpmem(buf, r, pattern + got, r);
        got += r;
    }
    g_assert_cmpint(r, ==, -1);
    g_assert_cmpuint(got, ==, 4 * MiB);
    g_test_message("client: %s", e->message);
    g_assert_error(e, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    assert_error_has(e, "the migration destination 127.0.0.1:");
    assert_quick(start);
    g_clear_pointer(&t, migration_tls__free);
    close(fd);
    tls_srv_join(s);
    g_assert_no_error(s->err);
    tls_srv_free(s);
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_tls_garbage(void)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    g_autoptr(migration_tls) t = NULL;
    static const char junk[] = "DMGMIG1\n\1\0\0\0\20\0\0\0 plain migration stream";
    gint64 start = g_get_monotonic_time();
    int fd;
    tls_srv *s;

    if (!have_certs())
        return;
    /* a plain migration stream into a TLS destination */
    s = tls_srv_start(SRV_HANDSHAKE, "good", true, &fd);
    g_assert_true(plain_write_all(fd, (const guint8 *)junk, sizeof(junk)));
    tls_srv_join(s);
    close(fd);
    g_assert_nonnull(s->err);
    g_assert_false(g_error_matches(s->err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    assert_error_has(s->err, "does not speak TLS");
    tls_srv_free(s);

    /* a TLS source talking to something that is no TLS server */
    s = tls_srv_start(SRV_GARBAGE, NULL, false, &fd);
    t = tls_client(fd, "good", "localhost", TIMEOUT_MS, &e);
    g_assert_null(t);
    g_assert_false(g_error_matches(e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
    assert_error_has(e, "does not speak TLS");
    close(fd);
    tls_srv_join(s);
    tls_srv_free(s);
    assert_quick(start);
    g_assert_cmpuint(fd_count(), ==, fds);
}

static void
test_tls_timeouts(void)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    gint64 start;
    int fd;
    tls_srv *s;

    if (!have_certs())
        return;
    /* a server that accepts and never answers the ClientHello */
    s = tls_srv_start(SRV_SILENT, NULL, false, &fd);
    start = g_get_monotonic_time();
    g_assert_null(tls_client(fd, "good", "localhost", 300, &e));
    g_assert_error(e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 290 * 1000);
    assert_quick(start);                 /* its own 300 ms, not TIMEOUT_MS */
    assert_error_has(e, "did not complete within 300 ms");
    close(fd);
    tls_srv_join(s);
    tls_srv_free(s);
    g_clear_error(&e);

    /* a client that connects and never sends its ClientHello */
    s = g_new0(tls_srv, 1);
    s->cfg.x509_dir = cert_dir("good");
    s->timeout_ms = 300;
    s->mode = SRV_HANDSHAKE;
    s->lfd = migration_socket__listen("0", &e);
    g_assert_no_error(e);
    {
        g_autofree char *addr = g_strdup_printf("127.0.0.1:%u", migration_socket__port(s->lfd));

        fd = migration_socket__connect(addr, TIMEOUT_MS, &e);
        g_assert_no_error(e);
    }
    start = g_get_monotonic_time();
    s->thread = g_thread_new("tls-server", tls_srv_main, s);
    tls_srv_join(s);
    assert_quick(start);                 /* its own 300 ms, not TIMEOUT_MS */
    g_assert_error(s->err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    close(fd);
    tls_srv_free(s);
    g_assert_cmpuint(fd_count(), ==, fds);
}

/* A session that stops moving: write_all and read time out. */
static void
test_tls_stall(void)
{
    guint fds = fd_count();
    g_autoptr(GError) e = NULL;
    g_autoptr(migration_tls) t = NULL;
    g_autofree guint8 *buf = g_malloc(CHUNK);
    gint64 start;
    int fd;
    tls_srv *s;

    if (!have_certs())
        return;
    /* the server only reads after the one read below */
    s = tls_srv_start(SRV_HANDSHAKE, "good", false, &fd);
    t = tls_client(fd, "good", "localhost", TIMEOUT_MS, &e);
    g_assert_no_error(e);
    start = g_get_monotonic_time();
    g_assert_cmpint(migration_tls__read(t, buf, CHUNK, 200, &e), ==, -1);
    g_assert_error(e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_cmpint(g_get_monotonic_time() - start, >=, 190 * 1000);
    assert_error_has(e, "no data from the migration destination");
    g_clear_error(&e);
    g_clear_pointer(&t, migration_tls__free);
    close(fd);
    tls_srv_join(s);
    tls_srv_free(s);

    /* a server that takes nothing: the socket buffers fill up */
    s = tls_srv_start(SRV_IDLE, "good", false, &fd);
    t = tls_client(fd, "good", "localhost", TIMEOUT_MS, &e);
    g_assert_no_error(e);
    start = g_get_monotonic_time();
    g_assert_false(migration_tls__write_all(t, pattern, BIG, 200, &e));
    g_assert_error(e, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    assert_error_has(e, "took no data for 200 ms");
    assert_quick(start);
    g_clear_pointer(&t, migration_tls__free);
    close(fd);
    tls_srv_release(s);
    tls_srv_join(s);
    tls_srv_free(s);
    g_assert_cmpuint(fd_count(), ==, fds);
}

int
main(int argc, char **argv)
{
    int r;

    g_test_init(&argc, &argv, NULL);
    tmp_dir = g_dir_make_tmp("dmg-transport-XXXXXX", NULL);
    g_assert_nonnull(tmp_dir);
    pattern_init();
    certs_make();
    g_test_add_func("/migration-transport/tcp/transfer", test_tcp_transfer);
    g_test_add_func("/migration-transport/tcp/forms", test_tcp_forms);
    g_test_add_func("/migration-transport/unix/transfer", test_unix_transfer);
    g_test_add_func("/migration-transport/socket/refused", test_connect_refused);
    g_test_add_func("/migration-transport/socket/invalid", test_invalid_addresses);
    g_test_add_func("/migration-transport/socket/accept-timeout", test_accept_timeout);
    g_test_add_func("/migration-transport/tls/certificates", test_tls_certificates);
    g_test_add_func("/migration-transport/tls/transfer", test_tls_transfer);
    g_test_add_func("/migration-transport/tls/ip-hostname", test_tls_ip_hostname);
    g_test_add_func("/migration-transport/tls/wrong-ca", test_tls_wrong_ca);
    g_test_add_func("/migration-transport/tls/wrong-client-ca", test_tls_wrong_client_ca);
    g_test_add_func("/migration-transport/tls/no-client-cert-needed", test_tls_no_client_cert_needed);
    g_test_add_func("/migration-transport/tls/hostname", test_tls_hostname);
    g_test_add_func("/migration-transport/tls/expired-revoked", test_tls_expired_revoked);
    g_test_add_func("/migration-transport/tls/missing-files", test_tls_missing_files);
    g_test_add_func("/migration-transport/tls/default-dir", test_tls_default_dir);
    g_test_add_func("/migration-transport/tls/peer-closes", test_tls_peer_closes);
    g_test_add_func("/migration-transport/tls/server-closes", test_tls_server_closes);
    g_test_add_func("/migration-transport/tls/garbage", test_tls_garbage);
    g_test_add_func("/migration-transport/tls/timeouts", test_tls_timeouts);
    g_test_add_func("/migration-transport/tls/stall", test_tls_stall);
    r = g_test_run();
    rm_rf(tmp_dir);
    g_free(tmp_dir);
    g_free(pattern);
    g_free(certs_failure);
    return r;
}

/*
 * migration/tls_session.c: the migration stream over TLS (gnutls), after
 * QEMU's crypto/tlssession.c: the session, the handshake, the records
 * and the alerts; the credentials and the words for a refused
 * certificate are in migration/tls_creds.c.
 *
 * The fd is non-blocking and every wait is a poll() with a timeout, so
 * that a peer that stops answering costs a bounded time, never a hang.
 * The peer's certificate is checked inside the handshake (a verify
 * callback), not after it, and a refusal is sent to the peer as an
 * alert (unknown CA, expired, ...) before a lingering close: so both
 * ends fail the handshake, and both can say why.
 */
#include "migration/tls_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "dmg_i18n.h"
#include "migration/socket.h"

#define TLS_DEFAULT_TIMEOUT_MS 30000u
#define TLS_LINGER_MS 500                /* after a refusal: for the peer to read it */

static guint
tls__ms(guint timeout_ms)
{
    return timeout_ms ? timeout_ms : TLS_DEFAULT_TIMEOUT_MS;
}

/* ------------------------------------------------------------------ */
/* Transport: the fd, without SIGPIPE                                   */

static ssize_t
tls__push(gnutls_transport_ptr_t p, const giovec_t *iov, int n)
{
    migration_tls *t = p;
    struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };
    ssize_t r = sendmsg(t->fd, &m, MSG_NOSIGNAL);

    if (r < 0)
        t->push_errno = errno;
    return r;
}

static ssize_t
tls__pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    migration_tls *t = p;
    ssize_t r = recv(t->fd, buf, len, 0);

    if (r < 0)
        t->pull_errno = errno;
    return r;
}

/* gnutls calls it only for its own timeouts, which are off; kept right
 * so that a gnutls that does call it finds a working one. */
static int
tls__pull_timeout(gnutls_transport_ptr_t p, unsigned int ms)
{
    migration_tls *t = p;
    struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
    int r;

    do
        r = poll(&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)MIN(ms, (unsigned)G_MAXINT));
    while (r < 0 && errno == EINTR);
    return r;
}

static gboolean
tls__set_nonblocking(migration_tls *t, GError **error)
{
    int fl = fcntl(t->fd, F_GETFL);

    if (fl >= 0 && fcntl(t->fd, F_SETFL, fl | O_NONBLOCK) == 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                _("cannot use the migration connection for TLS: %s"), g_strerror(errno));
    return FALSE;
}

static gboolean
tls__session_new(migration_tls *t, GError **error)
{
    bool server = t->role == MIGRATION_TLS_SERVER;
    int r = gnutls_init(&t->session, server ? GNUTLS_SERVER : GNUTLS_CLIENT);

    if (r >= 0)
        r = gnutls_set_default_priority(t->session);
    if (r >= 0)
        r = gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, t->creds);
    /* SNI carries names only: RFC 6066 forbids address literals there */
    if (r >= 0 && t->hostname && !g_hostname_is_ip_address(t->hostname))
        r = gnutls_server_name_set(t->session, GNUTLS_NAME_DNS, t->hostname, strlen(t->hostname));
    if (r < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("cannot set up TLS: %s"), gnutls_strerror(r));
        return FALSE;
    }
    if (server && t->verify_peer) {
        gnutls_certificate_server_set_request(t->session, GNUTLS_CERT_REQUIRE);
        /* Without the list of our CAs the client sends the certificate
         * it has even when we do not trust it: we can then say whose it
         * is, rather than only that none came. */
        gnutls_certificate_send_x509_rdn_sequence(t->session, 1);
    }
    gnutls_session_set_ptr(t->session, t);
    gnutls_transport_set_ptr(t->session, t);
    gnutls_transport_set_vec_push_function(t->session, tls__push);
    gnutls_transport_set_pull_function(t->session, tls__pull);
    gnutls_transport_set_pull_timeout_function(t->session, tls__pull_timeout);
    /* our deadline governs, not gnutls's default 40 s */
    gnutls_handshake_set_timeout(t->session, GNUTLS_INDEFINITE_TIMEOUT);
    return tls__set_nonblocking(t, error);
}

/* ------------------------------------------------------------------ */
/* Waiting                                                              */

/* Wait until the fd is ready in the direction gnutls last blocked on,
 * until @deadline (monotonic µs).  1: ready, 0: timed out, -1: errno. */
static int
tls__wait(migration_tls *t, gint64 deadline)
{
    struct pollfd pfd = {
        .fd = t->fd,
        .events = gnutls_record_get_direction(t->session) ? POLLOUT : POLLIN,
    };

    for (;;) {
        gint64 left = deadline - g_get_monotonic_time();
        int r;

        if (left <= 0)
            return 0;
        /* rounded up: poll(0) would spin the last microseconds away */
        r = poll(&pfd, 1, (int)MIN((left + 999) / 1000, G_MAXINT));
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -1;
    }
}

static gint64
tls__deadline(guint timeout_ms)
{
    return g_get_monotonic_time() + (gint64)tls__ms(timeout_ms) * 1000;
}

static bool
tls__closed_errno(int err)
{
    return err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ECONNABORTED;
}

/* The errno behind a PUSH or PULL error, else 0. */
static int
tls__io_errno(migration_tls *t, int r)
{
    if (r == GNUTLS_E_PUSH_ERROR)
        return t->push_errno;
    if (r == GNUTLS_E_PULL_ERROR)
        return t->pull_errno;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Handshake                                                            */

/* Bytes that are no TLS record: a peer that migrates without TLS. */
static bool
tls__not_tls(int r)
{
    return r == GNUTLS_E_UNEXPECTED_PACKET_LENGTH || r == GNUTLS_E_UNSUPPORTED_VERSION_PACKET ||
           r == GNUTLS_E_UNEXPECTED_PACKET || r == GNUTLS_E_RECORD_OVERFLOW ||
           r == GNUTLS_E_UNEXPECTED_HANDSHAKE_PACKET;
}

/* A lingering close (RFC 7230 6.6): closing with the peer's unread
 * bytes in our buffer sends a RST, and a RST makes the peer's kernel
 * drop our alert before it is read.  So: FIN after the alert, then read
 * and drop until the peer closes too, or a short while. */
static void
tls__linger(migration_tls *t)
{
    gint64 deadline = g_get_monotonic_time() + TLS_LINGER_MS * 1000;
    struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
    char buf[4096];

    shutdown(t->fd, SHUT_WR);
    for (;;) {
        ssize_t r = recv(t->fd, buf, sizeof(buf), 0);
        gint64 left = deadline - g_get_monotonic_time();

        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR) || left <= 0)
            return;
        if (r < 0 && errno == EAGAIN && poll(&pfd, 1, (int)((left + 999) / 1000)) == 0)
            return;
    }
}

/* gnutls fails the handshake without a word to the peer, which would
 * then only see the connection close: tell it why, as far as the socket
 * takes it before @deadline.  The connection is of no use after that:
 * it is shut down for writing. */
static void
tls__alert_send(migration_tls *t, int r, gint64 deadline)
{
    int level = GNUTLS_AL_FATAL, a;

    if (r == GNUTLS_E_FATAL_ALERT_RECEIVED || r == GNUTLS_E_PREMATURE_TERMINATION ||
        tls__io_errno(t, r))
        return;
    if (t->cert_checked && (t->cert_error < 0 || t->cert_status))
        a = tls__cert_alert(t->cert_status);
    else if ((a = gnutls_error_to_alert(r, &level)) < 0)
        return;
    while ((r = gnutls_alert_send(t->session, level, a)) == GNUTLS_E_AGAIN ||
           r == GNUTLS_E_INTERRUPTED)
        if (tls__wait(t, deadline) <= 0)
            return;
    if (r == 0)
        tls__linger(t);
}

static gboolean
tls__handshake_error(migration_tls *t, int r, GError **error)
{
    int err = tls__io_errno(t, r);

    if (t->cert_checked && (t->cert_error < 0 || t->cert_status))
        return tls__cert_error(t, error);
    if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
        return tls__alert_error(t, error);
    if (r == GNUTLS_E_NO_CERTIFICATE_FOUND || r == GNUTLS_E_CERTIFICATE_REQUIRED)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("%s sent no client certificate: it needs client-cert.pem and client-key.pem, issued by the CA in %s/ca-cert.pem, in its TLS directory (migrate_tls_x509_cert_dir)"),
                    t->who, t->dir);
    else if (r == GNUTLS_E_PREMATURE_TERMINATION || tls__closed_errno(err))
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    _("%s closed the connection during the TLS handshake: it may have refused this host's certificate (check its log, and that both sides' certificates come from the same CA) or not use TLS"),
                    t->who);
    else if (err)
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                    _("the TLS handshake with %s failed: %s"), t->who, g_strerror(err));
    else if (tls__not_tls(r))
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("%s does not speak TLS (%s): migrate with TLS on both sides or on neither"),
                    t->who, gnutls_strerror(r));
    else
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("the TLS handshake with %s failed: %s"), t->who, gnutls_strerror(r));
    return FALSE;
}

/* The callback refuses a bad certificate; this catches a handshake that
 * completed without one (nothing to call the callback with). */
static gboolean
tls__handshake_done(migration_tls *t, GError **error)
{
    bool need = t->role == MIGRATION_TLS_CLIENT || t->verify_peer;

    if (need && !t->cert_checked) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("%s presented no certificate"), t->who);
        return FALSE;
    }
    t->desc = g_strdup_printf("%s-%s",
                              gnutls_protocol_get_name(gnutls_protocol_get_version(t->session)),
                              gnutls_cipher_get_name(gnutls_cipher_get(t->session)));
    t->open = true;
    return TRUE;
}

static gboolean
tls__run_handshake(migration_tls *t, GError **error)
{
    gint64 deadline = tls__deadline(t->timeout_ms);

    for (;;) {
        int r = gnutls_handshake(t->session), w = 1;

        if (r == GNUTLS_E_SUCCESS)
            return tls__handshake_done(t, error);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            w = tls__wait(t, deadline);
        else if (gnutls_error_is_fatal(r)) {
            tls__alert_send(t, r, deadline);
            return tls__handshake_error(t, r, error);
        }
        else if (g_get_monotonic_time() >= deadline)    /* a warning alert: go on */
            w = 0;
        if (w == 0) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        _("the TLS handshake with %s did not complete within %u ms: is it listening with TLS, and alive?"),
                        t->who, t->timeout_ms);
            return FALSE;
        }
        if (w < 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        _("waiting for %s failed: %s"), t->who, g_strerror(errno));
            return FALSE;
        }
    }
}

static migration_tls *
tls__new(int fd, migration_tls_role role, const migration_tls_config *cfg, guint timeout_ms)
{
    migration_tls *t = g_new0(migration_tls, 1);
    g_autofree char *peer = migration_socket__peer(fd);

    t->fd = fd;
    t->role = role;
    t->timeout_ms = tls__ms(timeout_ms);
    t->dir = g_strdup(cfg && cfg->x509_dir ? cfg->x509_dir : MIGRATION_TLS_DEFAULT_DIR);
    if (role == MIGRATION_TLS_CLIENT && cfg && cfg->hostname)
        t->hostname = g_strdup(cfg->hostname);
    t->verify_peer = role == MIGRATION_TLS_SERVER && cfg && cfg->verify_peer;
    t->who = g_strdup_printf(role == MIGRATION_TLS_CLIENT ? _("the migration destination %s")
                                                          : _("the migration source %s"), peer);
    return t;
}

static gboolean tls__confirm(migration_tls *t, guint timeout_ms, GError **error);

migration_tls *
migration_tls__handshake(int fd, migration_tls_role role, const migration_tls_config *cfg,
                         guint timeout_ms, GError **error)
{
    g_autoptr(migration_tls) t = tls__new(fd, role, cfg, timeout_ms);

    if (!tls__load_creds(t, error) || !tls__session_new(t, error) ||
        !tls__run_handshake(t, error) || !tls__confirm(t, timeout_ms, error))
        return NULL;
    return g_steal_pointer(&t);
}

/* ------------------------------------------------------------------ */
/* Records                                                              */

/* In TLS 1.3 the client's handshake is over before the server has
 * checked the client's certificate: a refusal reaches the client as the
 * session's first event. */
static bool
tls__refused_after_handshake(migration_tls *t)
{
    return t->role == MIGRATION_TLS_CLIENT && t->received == 0 &&
           gnutls_protocol_get_version(t->session) == GNUTLS_TLS1_3;
}

static void
tls__io_error(migration_tls *t, int r, bool writing, GError **error)
{
    int err = tls__io_errno(t, r);
    gnutls_alert_description_t a;

    t->open = false;    /* a fatal error: no close_notify after it */
    if (r == GNUTLS_E_PREMATURE_TERMINATION || tls__closed_errno(err)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    tls__refused_after_handshake(t)
                        ? _("%s went away right after the TLS handshake (%s): it may have refused this host's client certificate; check its log, and that client-cert.pem comes from the CA it trusts")
                        : _("%s went away in the middle of the TLS session: %s"),
                    t->who, err ? g_strerror(err) : gnutls_strerror(r));
    } else if (err) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                    writing ? _("sending to %s failed: %s") : _("receiving from %s failed: %s"),
                    t->who, g_strerror(err));
    } else if (r == GNUTLS_E_FATAL_ALERT_RECEIVED && tls__refused_after_handshake(t)) {
        tls__alert_error(t, error);
    } else if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        a = gnutls_alert_get(t->session);
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("%s ended the TLS session with the alert '%s'"),
                    t->who, gnutls_alert_get_name(a) ? gnutls_alert_get_name(a) : "?");
    } else {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    writing ? _("sending to %s failed: %s") : _("receiving from %s failed: %s"),
                    t->who, gnutls_strerror(r));
    }
}

/* After GNUTLS_E_AGAIN: wait up to @timeout_ms.  FALSE with @error set. */
static gboolean
tls__wait_io(migration_tls *t, guint timeout_ms, bool writing, GError **error)
{
    int w = tls__wait(t, tls__deadline(timeout_ms));

    if (w > 0)
        return TRUE;
    if (w == 0)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    writing ? _("%s took no data for %u ms") : _("no data from %s for %u ms"),
                    t->who, tls__ms(timeout_ms));
    else
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("waiting for %s failed: %s"), t->who, g_strerror(errno));
    return FALSE;
}

gboolean
migration_tls__write_all(migration_tls *t, const void *buf, gsize len, guint timeout_ms,
                         GError **error)
{
    gsize off = 0;

    while (off < len) {
        /* after GNUTLS_E_AGAIN the same call again, same data: gnutls
         * holds the encrypted record and sends it then */
        ssize_t r = gnutls_record_send(t->session, (const guint8 *)buf + off, len - off);

        if (r > 0)
            off += r;
        else if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
            /* a record is half sent: nothing may follow it, not even
             * close_notify, which would only wait for a stuck peer */
            if (!tls__wait_io(t, timeout_ms, true, error)) {
                t->open = false;
                return FALSE;
            }
        } else if (r == 0 || gnutls_error_is_fatal(r)) {
            tls__io_error(t, r ? (int)r : GNUTLS_E_PUSH_ERROR, true, error);
            return FALSE;
        }
    }
    return TRUE;
}

gssize
migration_tls__read(migration_tls *t, void *buf, gsize len, guint timeout_ms, GError **error)
{
    for (;;) {
        ssize_t r = gnutls_record_recv(t->session, buf, len);

        if (r >= 0) {
            t->received += r;
            return r;                    /* 0: close_notify */
        }
        if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED) {
            if (!gnutls_error_is_fatal(r))
                continue;                /* a warning alert, a refused renegotiation */
            tls__io_error(t, r, false, error);
            return -1;
        }
        /* decrypted data gnutls holds is not on the fd for poll to see */
        if (gnutls_record_check_pending(t->session) > 0)
            continue;
        if (!tls__wait_io(t, timeout_ms, false, error))
            return -1;
    }
}

const char *
migration_tls__description(migration_tls *t)
{
    return t->desc;
}

/* close_notify, bounded; the peer's is not waited for (SHUT_WR). */
static void
tls__bye(migration_tls *t)
{
    gint64 deadline = tls__deadline(t->timeout_ms);
    int r;

    while ((r = gnutls_bye(t->session, GNUTLS_SHUT_WR)) == GNUTLS_E_AGAIN ||
           r == GNUTLS_E_INTERRUPTED)
        if (tls__wait(t, deadline) <= 0)
            return;
}

void
migration_tls__free(migration_tls *t)
{
    if (!t)
        return;
    if (t->open)
        tls__bye(t);
    if (t->session)
        gnutls_deinit(t->session);
    if (t->creds)
        gnutls_certificate_free_credentials(t->creds);
    g_free(t->dir);
    g_free(t->hostname);
    g_free(t->who);
    g_free(t->desc);
    g_free(t);
}

/*
 * In TLS 1.3 the client's handshake ends before the server has checked
 * the client's certificate, so a refused source would start sending the
 * guest into a dead session.  The server confirms it accepted the client
 * with one byte, and the source waits for it: a refusal stops the source
 * before any of the guest leaves it.
 */
#define TLS_CONFIRM 0x06                 /* ASCII ACK */

static gboolean
tls__confirm(migration_tls *t, guint timeout_ms, GError **error)
{
    guint8 b = TLS_CONFIRM;
    gssize n;

    if (t->role == MIGRATION_TLS_SERVER)
        return migration_tls__write_all(t, &b, 1, timeout_ms, error);
    n = migration_tls__read(t, &b, 1, timeout_ms, error);
    if (n == 1 && b == TLS_CONFIRM)
        return TRUE;
    if (n >= 0)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("%s did not confirm the TLS session (%s): is it a dmaguard migration destination?"),
                    t->who, n == 0 ? _("it closed the session") : _("unexpected data"));
    return FALSE;
}

/*
 * migration/tls.h: the migration stream over TLS, with gnutls and X.509
 * certificates laid out as libvirt's migrate_tls_x509_cert_dir (and
 * QEMU's tls-creds-x509 object) expects them:
 *   DIR/ca-cert.pem                          trusted CA(s), both sides
 *   DIR/server-cert.pem, DIR/server-key.pem  the destination (listener)
 *   DIR/client-cert.pem, DIR/client-key.pem  the source (connecting side)
 * and optionally DIR/ca-crl.pem.
 *
 * The client (source) always verifies the server's certificate against
 * the CA and checks that it carries @hostname (QEMU's tls-hostname,
 * libvirt's --tls-destination).  The server (destination) requires and
 * verifies a client certificate when @verify_peer is set, as libvirt's
 * migrate_tls_x509_verify = 1 does.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* libvirt's default migrate_tls_x509_cert_dir (default_tls_x509_cert_dir) */
#define MIGRATION_TLS_DEFAULT_DIR "/etc/pki/qemu"

typedef enum {
    MIGRATION_TLS_CLIENT,                /* the source: it connects */
    MIGRATION_TLS_SERVER,                /* the destination: it listens */
} migration_tls_role;

typedef struct migration_tls_config {
    const char *x509_dir;                /* NULL: MIGRATION_TLS_DEFAULT_DIR */
    const char *hostname;                /* client: the name the server's certificate
                                          * must carry; NULL: not checked */
    bool verify_peer;                    /* server: require a trusted client certificate */
} migration_tls_config;

typedef struct migration_tls migration_tls;

/*
 * Load the credentials and run the handshake on the connected socket @fd
 * within @timeout_ms (0: 30 s).  @fd is made non-blocking and stays
 * owned by the caller.  Errors name the file, the peer's certificate
 * problem (not trusted, expired, wrong host name, ...) and what to do:
 *   G_IO_ERROR_NOT_FOUND, _PERMISSION_DENIED  a file cannot be read
 *   G_IO_ERROR_FAILED        a file does not load; a certificate either
 *                            side refused; the peer does not speak TLS
 *   G_IO_ERROR_TIMED_OUT     no handshake within @timeout_ms
 *   G_IO_ERROR_CONNECTION_CLOSED  the peer closed without a word
 * When this side refuses the peer it sends the peer an alert that says
 * why and shuts @fd down for writing: the connection is spent.
 * In TLS 1.3 the client's handshake ends before the server has checked
 * the client's certificate: a refusal of it reaches the client at its
 * first read or write, as G_IO_ERROR_FAILED (or _CONNECTION_CLOSED),
 * with the same advice.
 */
migration_tls *migration_tls__handshake(int fd, migration_tls_role role,
                                        const migration_tls_config *cfg,
                                        guint timeout_ms, GError **error);

/*
 * Send all of @buf, waiting at most @timeout_ms (0: 30 s) each time for
 * the peer to take data.  Errors: G_IO_ERROR_TIMED_OUT,
 * G_IO_ERROR_CONNECTION_CLOSED (the peer went away: EOF, ECONNRESET,
 * EPIPE; never SIGPIPE), G_IO_ERROR_FAILED (a TLS error: gnutls's text),
 * another G_IO_ERROR from errno.  After an error the session is spent:
 * free it (no close_notify is sent after a failed write).
 */
gboolean migration_tls__write_all(migration_tls *t, const void *buf, gsize len,
                                  guint timeout_ms, GError **error);
/*
 * Read at most @len bytes, waiting at most @timeout_ms (0: 30 s) for
 * any.  Returns the count, 0 at a clean end of the session (the peer's
 * close_notify), -1 with @error as above: an EOF without close_notify
 * is G_IO_ERROR_CONNECTION_CLOSED, since it may be a truncation.  A
 * G_IO_ERROR_TIMED_OUT read may be retried.
 * A session is for one thread at a time.
 */
gssize migration_tls__read(migration_tls *t, void *buf, gsize len,
                           guint timeout_ms, GError **error);

/* The negotiated protocol and cipher, e.g. "TLS1.3-AES-256-GCM", for
 * progress output; owned by @t. */
const char *migration_tls__description(migration_tls *t);

/* Send close_notify (best effort, bounded by the handshake timeout) and
 * free the session; @fd is not closed. */
void migration_tls__free(migration_tls *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(migration_tls, migration_tls__free);

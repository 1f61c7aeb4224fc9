/*
 * migration_tls.h: the migration stream over TLS, with gnutls and X.509
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
 * problem (not trusted, expired, wrong host name, ...) and what to do.
 */
migration_tls *migration_tls__handshake(int fd, migration_tls_role role,
                                        const migration_tls_config *cfg,
                                        guint timeout_ms, GError **error);

/*
 * Send all of @buf, waiting at most @timeout_ms for the peer to take
 * data.  Errors: G_IO_ERROR_TIMED_OUT, G_IO_ERROR_CONNECTION_CLOSED (the
 * peer went away), G_IO_ERROR_FAILED (a TLS error: gnutls's text).
 */
gboolean migration_tls__write_all(migration_tls *t, const void *buf, gsize len,
                                  guint timeout_ms, GError **error);
/*
 * Read at most @len bytes, waiting at most @timeout_ms for any.  Returns
 * the count, 0 at a clean end of the session (close_notify or EOF), -1
 * with @error as above.
 */
gssize migration_tls__read(migration_tls *t, void *buf, gsize len,
                           guint timeout_ms, GError **error);

/* The negotiated protocol and cipher, e.g. "TLS1.3-AES-256-GCM", for
 * progress output. */
const char *migration_tls__description(migration_tls *t);

/* Send close_notify (best effort, bounded by the handshake timeout) and
 * free the session; @fd is not closed. */
void migration_tls__free(migration_tls *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(migration_tls, migration_tls__free);

/*
 * migration/tls_priv.h: the TLS session's state, private to the two
 * halves of migration/tls.h's API: migration/tls_creds.c (the
 * credentials and what is wrong with a certificate, after QEMU's
 * crypto/tlscredsx509.c) and migration/tls_session.c (the handshake and
 * the records, after QEMU's crypto/tlssession.c).
 */
#pragma once

#include <glib.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>

#include "migration/tls.h"

struct migration_tls {
    int fd;
    migration_tls_role role;
    bool verify_peer;                    /* server: a client certificate is required */
    bool own_cert;                       /* client: client-cert.pem was loaded */
    bool open;                           /* handshake done and no fatal error since */
    guint timeout_ms;                    /* the handshake's, also bounds close_notify */
    guint64 received;                    /* application bytes read */
    char *dir;
    char *hostname;                      /* client: the name the server's certificate must carry */
    char *who;                           /* "the migration destination 127.0.0.1:4567" */
    char *desc;
    gnutls_certificate_credentials_t creds;
    gnutls_session_t session;
    /* The errno of the last failed send and recv: gnutls only says
     * PUSH_ERROR or PULL_ERROR. */
    int push_errno, pull_errno;
    /* The verify callback's findings, for the message. */
    bool cert_checked;
    int cert_error;
    unsigned cert_status;
};

/* In migration/tls_creds.c, for the session's handshake and I/O. */
gboolean tls__load_creds(migration_tls *t, GError **error);
gboolean tls__cert_error(migration_tls *t, GError **error);
gboolean tls__alert_error(migration_tls *t, GError **error);
gnutls_alert_description_t tls__cert_alert(unsigned status);

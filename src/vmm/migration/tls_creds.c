/*
 * migration/tls_creds.c: the X.509 side of the migration stream's TLS,
 * after QEMU's crypto/tlscredsx509.c: loading the CA, the CRL and this
 * side's certificate, the verify callback the handshake runs, and the
 * words for a certificate either side refused (crypto/tlssession.c's
 * wording) with what to do about it.
 */
#include "migration/tls_priv.h"

#include <errno.h>
#include <gio/gio.h>
#include <gnutls/x509.h>
#include <time.h>
#include <unistd.h>

#include "dmg_i18n.h"

/* ------------------------------------------------------------------ */
/* Credentials                                                          */

/* Why @path cannot be read, or NULL: a missing file is named with
 * errno's words, which say more than gnutls's "Error while reading file". */
static const char *
tls__unreadable(const char *path, int *err)
{
    if (access(path, R_OK) == 0)
        return NULL;
    *err = errno;
    return g_strerror(*err);
}

static gboolean
tls__load_ca(migration_tls *t, GError **error)
{
    g_autofree char *ca = g_build_filename(t->dir, "ca-cert.pem", NULL);
    int err = 0, r = 0;
    const char *why = tls__unreadable(ca, &err);

    if (!why) {
        r = gnutls_certificate_set_x509_trust_file(t->creds, ca, GNUTLS_X509_FMT_PEM);
        if (r > 0)
            return TRUE;
        why = r == 0 ? _("it holds no certificate") : gnutls_strerror(r);
    }
    g_set_error(error, G_IO_ERROR, err ? g_io_error_from_errno(err) : G_IO_ERROR_FAILED,
                _("cannot load the CA certificate %s: %s; migrate --tls needs ca-cert.pem in %s"),
                ca, why, t->dir);
    return FALSE;
}

/* ca-crl.pem is optional, as in QEMU; a broken one is an error. */
static gboolean
tls__load_crl(migration_tls *t, GError **error)
{
    g_autofree char *crl = g_build_filename(t->dir, "ca-crl.pem", NULL);
    int r;

    if (access(crl, F_OK) != 0)
        return TRUE;
    r = gnutls_certificate_set_x509_crl_file(t->creds, crl, GNUTLS_X509_FMT_PEM);
    if (r >= 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                _("cannot load the certificate revocation list %s: %s; remove it or replace it with a valid one"),
                crl, gnutls_strerror(r));
    return FALSE;
}

static gboolean
tls__own_error(migration_tls *t, const char *file, const char *why, int err, GError **error)
{
    g_set_error(error, G_IO_ERROR, err ? g_io_error_from_errno(err) : G_IO_ERROR_FAILED,
                t->role == MIGRATION_TLS_SERVER
                    ? _("cannot load the server certificate %s: %s; migrate --tls needs server-cert.pem and server-key.pem in %s")
                    : _("cannot load the client certificate %s: %s; migrate --tls needs client-cert.pem and client-key.pem in %s"),
                file, why, t->dir);
    return FALSE;
}

/* This side's certificate and key.  The client's are optional, as in
 * QEMU: a server without verify_peer does not ask for them. */
static gboolean
tls__load_own(migration_tls *t, GError **error)
{
    bool server = t->role == MIGRATION_TLS_SERVER;
    g_autofree char *cert = g_build_filename(t->dir, server ? "server-cert.pem" : "client-cert.pem", NULL);
    g_autofree char *key = g_build_filename(t->dir, server ? "server-key.pem" : "client-key.pem", NULL);
    int err = 0, r;
    const char *why;

    if (!server && access(cert, F_OK) != 0 && access(key, F_OK) != 0)
        return TRUE;
    if ((why = tls__unreadable(cert, &err)))
        return tls__own_error(t, cert, why, err, error);
    if ((why = tls__unreadable(key, &err)))
        return tls__own_error(t, key, why, err, error);
    r = gnutls_certificate_set_x509_key_file(t->creds, cert, key, GNUTLS_X509_FMT_PEM);
    if (r < 0) {
        g_autofree char *both = g_strdup_printf("%s (%s)", cert, key);

        return tls__own_error(t, both, gnutls_strerror(r), 0, error);
    }
    t->own_cert = true;
    return TRUE;
}

/* Runs inside the handshake when the peer's certificate arrives.
 * Failing here fails the handshake with our findings kept in @t, for
 * the message and for the alert to the peer (tls__alert_send). */
static int
tls__verify_cb(gnutls_session_t s)
{
    migration_tls *t = gnutls_session_get_ptr(s);
    unsigned status = 0;
    int r;

    if (t->role == MIGRATION_TLS_SERVER && !t->verify_peer)
        return 0;
    r = t->hostname ? gnutls_certificate_verify_peers3(s, t->hostname, &status)
                    : gnutls_certificate_verify_peers2(s, &status);
    t->cert_checked = true;
    t->cert_error = r;
    t->cert_status = status;
    return r < 0 || status ? -1 : 0;
}

gboolean
tls__load_creds(migration_tls *t, GError **error)
{
    int r = gnutls_certificate_allocate_credentials(&t->creds);

    if (r < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("cannot set up TLS: %s"), gnutls_strerror(r));
        return FALSE;
    }
    gnutls_certificate_set_verify_function(t->creds, tls__verify_cb);
    return tls__load_ca(t, error) && tls__load_crl(t, error) && tls__load_own(t, error);
}

/* ------------------------------------------------------------------ */
/* The peer's certificate, in words                                     */

typedef struct cert_problem {
    unsigned flag;
    const char *what;                    /* QEMU's crypto/tlssession.c wording */
} cert_problem;

/* Most telling first: the first one present picks the advice. */
static const cert_problem cert_problems[] = {
    { GNUTLS_CERT_SIGNER_NOT_FOUND, N_("The certificate hasn't got a known issuer") },
    { GNUTLS_CERT_SIGNER_NOT_CA, N_("The certificate's issuer is not a CA") },
    { GNUTLS_CERT_REVOKED, N_("The certificate has been revoked") },
    { GNUTLS_CERT_EXPIRED, N_("The certificate has expired") },
    { GNUTLS_CERT_NOT_ACTIVATED, N_("The certificate is not yet activated") },
    { GNUTLS_CERT_INSECURE_ALGORITHM, N_("The certificate uses an insecure algorithm") },
    { GNUTLS_CERT_PURPOSE_MISMATCH, N_("The certificate is not meant for this use (extended key usage)") },
    { GNUTLS_CERT_UNEXPECTED_OWNER, NULL },   /* with the host name, below */
};

/* "The certificate has expired; Certificate does not match ..." */
static char *
tls__cert_problems(migration_tls *t, unsigned *first)
{
    GString *s = g_string_new(NULL);

    *first = 0;
    for (gsize i = 0; i < G_N_ELEMENTS(cert_problems); i++) {
        if (!(t->cert_status & cert_problems[i].flag))
            continue;
        if (s->len)
            g_string_append(s, "; ");
        if (cert_problems[i].what)
            g_string_append(s, _(cert_problems[i].what));
        else
            g_string_append_printf(s, _("Certificate does not match the hostname %s"), t->hostname);
        *first = *first ? *first : cert_problems[i].flag;
    }
    if (!s->len)
        g_string_append(s, _("The certificate is not trusted"));
    return g_string_free(s, FALSE);
}

/* The peer's certificate's subject, issuer and end of validity, to show
 * which certificate it was: "subject 'CN=x', issued by 'CN=y'". */
static char *
tls__cert_names(migration_tls *t, time_t *expires)
{
    unsigned n = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(t->session, &n);
    gnutls_x509_crt_t crt;
    gnutls_datum_t dn = { 0 }, issuer = { 0 };
    char *s = NULL;

    *expires = (time_t)-1;
    if (!raw || n == 0 || gnutls_x509_crt_init(&crt) < 0)
        return NULL;
    if (gnutls_x509_crt_import(crt, &raw[0], GNUTLS_X509_FMT_DER) >= 0 &&
        gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0 &&
        gnutls_x509_crt_get_issuer_dn3(crt, &issuer, 0) >= 0) {
        s = g_strdup_printf(_("subject '%s', issued by '%s'"), dn.data, issuer.data);
        *expires = gnutls_x509_crt_get_expiration_time(crt);
    }
    gnutls_free(dn.data);
    gnutls_free(issuer.data);
    gnutls_x509_crt_deinit(crt);
    return s;
}

static char *
tls__date(time_t when)
{
    g_autoptr(GDateTime) d = g_date_time_new_from_unix_utc(when);

    return d ? g_date_time_format(d, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

/* What to do about @problem, the first one found. */
static char *
tls__cert_advice(migration_tls *t, unsigned problem, time_t expires)
{
    bool client = t->role == MIGRATION_TLS_CLIENT;
    g_autofree char *ca = g_build_filename(t->dir, "ca-cert.pem", NULL);
    g_autofree char *crl = g_build_filename(t->dir, "ca-crl.pem", NULL);
    g_autofree char *when = NULL;

    switch (problem) {
    case GNUTLS_CERT_EXPIRED:
        when = tls__date(expires);
        return g_strdup_printf(client ? _("it expired on %s: renew the destination's server-cert.pem")
                                      : _("it expired on %s: renew the source's client-cert.pem"), when);
    case GNUTLS_CERT_NOT_ACTIVATED:
        return g_strdup(_("check the clocks of both hosts"));
    case GNUTLS_CERT_UNEXPECTED_OWNER:
        return g_strdup_printf(_("migrate to the name the destination's certificate carries (libvirt's --tls-destination), or issue the destination a server-cert.pem for %s"),
                               t->hostname);
    case GNUTLS_CERT_REVOKED:
        return g_strdup_printf(client ? _("%s lists it: issue the destination a new server-cert.pem")
                                      : _("%s lists it: issue the source a new client-cert.pem"), crl);
    case GNUTLS_CERT_INSECURE_ALGORITHM:
        return g_strdup(client ? _("reissue the destination's server-cert.pem with a SHA-256 or stronger signature")
                               : _("reissue the source's client-cert.pem with a SHA-256 or stronger signature"));
    default:
        return g_strdup_printf(client ? _("check that %s holds the CA that issued the destination's server-cert.pem: both sides' certificates must come from the same CA")
                                      : _("check that %s holds the CA that issued the source's client-cert.pem: both sides' certificates must come from the same CA"),
                               ca);
    }
}

gboolean
tls__cert_error(migration_tls *t, GError **error)
{
    g_autofree char *problems = NULL, *names = NULL, *advice = NULL;
    unsigned first;
    time_t expires;

    if (t->cert_error < 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("cannot verify the certificate of %s: %s"), t->who, gnutls_strerror(t->cert_error));
        return FALSE;
    }
    problems = tls__cert_problems(t, &first);
    names = tls__cert_names(t, &expires);
    advice = tls__cert_advice(t, first, expires);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                _("the certificate of %s was rejected: %s (%s); %s"),
                t->who, problems, names ? names : _("unreadable"), advice);
    return FALSE;
}

/* ------------------------------------------------------------------ */
/* Alerts about certificates                                            */

/* What the peer's alert says about this side's certificate @mine. */
static char *
tls__alert_advice(migration_tls *t, gnutls_alert_description_t a, const char *mine)
{
    switch (a) {
    case GNUTLS_A_UNKNOWN_CA:
        return g_strdup_printf(_("%s is not from a CA it trusts: both sides' certificates must come from the same CA"), mine);
    case GNUTLS_A_CERTIFICATE_EXPIRED:
        return g_strdup_printf(_("%s has expired, or the two hosts' clocks disagree"), mine);
    case GNUTLS_A_CERTIFICATE_REVOKED:
        return g_strdup_printf(_("%s has been revoked: issue a new one"), mine);
    case GNUTLS_A_BAD_CERTIFICATE:
        return g_strdup_printf(t->role == MIGRATION_TLS_SERVER
                                   ? _("it does not accept %s: check its log; the source checks that it carries the host name it migrates to")
                                   : _("it does not accept %s: check its log"), mine);
    default:
        return g_strdup(_("check its log, and that both sides' certificates come from the same CA"));
    }
}

gboolean
tls__alert_error(migration_tls *t, GError **error)
{
    gnutls_alert_description_t a = gnutls_alert_get(t->session);
    const char *name = gnutls_alert_get_name(a) ? gnutls_alert_get_name(a) : "?";
    g_autofree char *mine = g_build_filename(t->dir, t->role == MIGRATION_TLS_SERVER ? "server-cert.pem"
                                                                                     : "client-cert.pem", NULL);
    g_autofree char *advice = NULL;

    if (a == GNUTLS_A_CERTIFICATE_REQUIRED || (!t->own_cert && a == GNUTLS_A_HANDSHAKE_FAILURE)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("%s requires a client certificate (alert '%s'): put client-cert.pem and client-key.pem in %s"),
                    t->who, name, t->dir);
        return FALSE;
    }
    advice = tls__alert_advice(t, a, mine);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                _("%s refused the TLS handshake with the alert '%s': %s"), t->who, name, advice);
    return FALSE;
}

/* The alert that tells the peer what was wrong with its certificate. */
gnutls_alert_description_t
tls__cert_alert(unsigned status)
{
    if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA))
        return GNUTLS_A_UNKNOWN_CA;
    if (status & GNUTLS_CERT_REVOKED)
        return GNUTLS_A_CERTIFICATE_REVOKED;
    if (status & GNUTLS_CERT_EXPIRED)
        return GNUTLS_A_CERTIFICATE_EXPIRED;
    return GNUTLS_A_BAD_CERTIFICATE;
}

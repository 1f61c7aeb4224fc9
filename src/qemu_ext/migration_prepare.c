/*
 * migration_prepare.c: the prepare exchange before the migration stream
 * (the format is in migration_prepare.h).  Plain I/O waits with poll()
 * and never blocks past the timeout; over TLS the session's own calls do.
 */
#include "migration_prepare.h"

#include <errno.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "le_bytes.h"
#include "dmg_i18n.h"
#include "migration.h"
#include "xml_read.h"

#define PREP_DEFAULT_TIMEOUT_MS 30000u
#define PREP_MAGIC_LEN 8u
#define PREP_HDR_LEN 8u                  /* {u32 type, u32 length} */
#define PREP_FIXED_LEN 16u               /* {u32 accel, u32 vcpus, u64 memory} */
#define PREP_SHOW_MAX 48u                /* bytes of garbage quoted in a message */

G_STATIC_ASSERT(sizeof(DMG_PREPARE_MAGIC) - 1 == PREP_MAGIC_LEN);

enum {
    PREP_PREPARE = 1,
    PREP_ACCEPT,
    PREP_REFUSE,
};

enum {
    PREP_ACCEL_KVM = 0,
    PREP_ACCEL_SOFT = 1,
};

void
dmg_migration_prepare_clear(dmg_migration_prepare *p)
{
    g_free(p->xml);
    memset(p, 0, sizeof(*p));
}





/* Bytes from the peer, printable: "GARBAGE\x0a..." */
static char *
prep_escape(const guint8 *b, gsize n)
{
    GString *s = g_string_new(NULL);

    for (gsize i = 0; i < MIN(n, PREP_SHOW_MAX); i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\' && b[i] != '"')
            g_string_append_c(s, b[i]);
        else
            g_string_append_printf(s, "\\x%02x", b[i]);
    }
    if (n > PREP_SHOW_MAX)
        g_string_append(s, "...");
    return g_string_free(s, FALSE);
}

/* ------------------------------------------------------------------ */
/* I/O                                                                 */

static guint
prep_ms(const dmg_migration_link *l)
{
    return l->timeout_ms ? l->timeout_ms : PREP_DEFAULT_TIMEOUT_MS;
}

static gboolean
prep_wait(const dmg_migration_link *l, short events, GError **error)
{
    struct pollfd pfd = { .fd = l->fd, .events = events };
    int r;

    do
        r = poll(&pfd, 1, (int)MIN(prep_ms(l), (guint)G_MAXINT));
    while (r < 0 && errno == EINTR);
    if (r > 0)
        return TRUE;
    if (r == 0)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    events == POLLIN ? _("no answer from %s for %u ms in the prepare exchange")
                                     : _("%s took no data for %u ms in the prepare exchange"),
                    l->peer, prep_ms(l));
    else
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("waiting for %s failed: %s"), l->peer, g_strerror(errno));
    return FALSE;
}

static gboolean
prep_errno(const dmg_migration_link *l, int err, bool writing, GError **error)
{
    if (err == EPIPE || err == ECONNRESET || err == ENOTCONN)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    _("%s went away in the prepare exchange: %s"), l->peer, g_strerror(err));
    else
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                    writing ? _("sending to %s failed: %s") : _("receiving from %s failed: %s"),
                    l->peer, g_strerror(err));
    return FALSE;
}

static gboolean
prep_write(const dmg_migration_link *l, const guint8 *buf, gsize len, GError **error)
{
    gsize off = 0;

    if (l->tls)
        return migration_tls__write_all(l->tls, buf, len, prep_ms(l), error);
    while (off < len) {
        gssize r;

        if (!prep_wait(l, POLLOUT, error))
            return FALSE;
        r = send(l->fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (r < 0)
            return prep_errno(l, errno, true, error);
        off += r;
    }
    return TRUE;
}

/* Exactly @len bytes, or fewer in *@got at the end of the connection
 * (returns TRUE then too: the caller says what was cut short). */
static gboolean
prep_read(const dmg_migration_link *l, guint8 *buf, gsize len, gsize *got, GError **error)
{
    *got = 0;
    while (*got < len) {
        gssize r;

        if (l->tls) {
            if ((r = migration_tls__read(l->tls, buf + *got, len - *got, prep_ms(l), error)) < 0)
                return FALSE;
        } else if (!prep_wait(l, POLLIN, error)) {
            return FALSE;
        } else {
            r = recv(l->fd, buf + *got, len - *got, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                continue;
            /* a reset before anything arrived is a peer that went away */
            if (r < 0 && errno == ECONNRESET)
                r = 0;
            if (r < 0)
                return prep_errno(l, errno, false, error);
        }
        if (r == 0)
            return TRUE;
        *got += r;
    }
    return TRUE;
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */

static gboolean
prep_send(const dmg_migration_link *l, guint32 type, const guint8 *fixed, gsize fixed_len,
          const void *data, gsize data_len, GError **error)
{
    gsize len = PREP_MAGIC_LEN + PREP_HDR_LEN + fixed_len + data_len;
    g_autofree guint8 *b = g_malloc(len);

    memcpy(b, DMG_PREPARE_MAGIC, PREP_MAGIC_LEN);
    le_put32(b + PREP_MAGIC_LEN, type);
    le_put32(b + PREP_MAGIC_LEN + 4, (guint32)(fixed_len + data_len));
    if (fixed_len)
        memcpy(b + PREP_MAGIC_LEN + PREP_HDR_LEN, fixed, fixed_len);
    if (data_len)
        memcpy(b + PREP_MAGIC_LEN + PREP_HDR_LEN + fixed_len, data, data_len);
    return prep_write(l, b, len, error);
}

/* The magic and header of the next message: what did arrive instead,
 * in words.  @what: "the prepare message" or "an answer". */
static gboolean
prep_bad_magic(const dmg_migration_link *l, const guint8 *b, gsize n, const char *what,
               GError **error)
{
    g_autofree char *seen = prep_escape(b, n);

    if (n >= 6 && !memcmp(b, MIGRATION_MAGIC, 6))
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("%s started the migration stream without %s: it is not a virt-dmaguard with the prepare exchange (virt-dmaguard migrate / incoming)"),
                    l->peer, what);
    /* a TLS record: handshake (0x16) from a client, alert (0x15) from a
     * server that gave up on our plain bytes */
    else if (n >= 2 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("%s speaks TLS, this side does not: use --tls on both sides or on neither"),
                    l->peer);
    else
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("%s is not a virt-dmaguard migration peer: it sent \"%s\" instead of %s"),
                    l->peer, seen, what);
    return FALSE;
}

/* Read magic and header; *@type and *@len.  @what names the message
 * expected, for errors; @eof_hint explains a connection closed before it. */
static gboolean
prep_read_header(const dmg_migration_link *l, const char *what, const char *eof_hint,
                 guint32 *type, guint32 *len, GError **error)
{
    guint8 b[PREP_MAGIC_LEN + PREP_HDR_LEN];
    gsize got;

    if (!prep_read(l, b, PREP_MAGIC_LEN, &got, error))
        return FALSE;
    if (got == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    _("%s closed the connection before sending %s%s"), l->peer, what, eof_hint);
        return FALSE;
    }
    if (memcmp(b, DMG_PREPARE_MAGIC, MIN(got, PREP_MAGIC_LEN)) != 0)
        return prep_bad_magic(l, b, got, what, error);
    if (got == PREP_MAGIC_LEN && !prep_read(l, b + PREP_MAGIC_LEN, PREP_HDR_LEN, &got, error))
        return FALSE;
    if (got < PREP_HDR_LEN) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                    _("%s closed the connection in the middle of %s"), l->peer, what);
        return FALSE;
    }
    *type = le_get32(b + PREP_MAGIC_LEN);
    *len = le_get32(b + PREP_MAGIC_LEN + 4);
    return TRUE;
}

static guint8 *
prep_read_payload(const dmg_migration_link *l, guint32 len, const char *what, GError **error)
{
    g_autofree guint8 *b = g_malloc(len + 1);
    gsize got;

    if (!prep_read(l, b, len, &got, error))
        return NULL;
    if (got < len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                    _("%s closed the connection after %zu of the %u bytes of %s"),
                    l->peer, got, len, what);
        return NULL;
    }
    b[len] = '\0';
    return g_steal_pointer(&b);
}

/* ------------------------------------------------------------------ */
/* The source                                                          */

gboolean
dmg_migration_prepare_send(const dmg_migration_link *l, const dmg_migration_prepare *p,
                           GError **error)
{
    guint8 fixed[PREP_FIXED_LEN];

    if (p->xml_len > DMG_DOMAIN_XML_MAX) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("the domain XML has %zu bytes; a migration carries at most %u"),
                    p->xml_len, (unsigned)DMG_DOMAIN_XML_MAX);
        return FALSE;
    }
    le_put32(fixed, p->accel == VM_ACCEL_SOFT ? PREP_ACCEL_SOFT : PREP_ACCEL_KVM);
    le_put32(fixed + 4, p->vcpus);
    le_put64(fixed + 8, p->memory);
    return prep_send(l, PREP_PREPARE, fixed, sizeof(fixed), p->xml, p->xml_len, error);
}

gboolean
dmg_migration_prepare_wait_answer(const dmg_migration_link *l, GError **error)
{
    const char *what = _("an answer to the prepare message");
    g_autofree guint8 *reason = NULL;
    g_autofree char *shown = NULL;
    guint32 type, len;

    if (!prep_read_header(l, what,
                          _(": it refused the connection (does it expect --tls? see its output)"),
                          &type, &len, error))
        return FALSE;
    if (type == PREP_ACCEPT && len == 0)
        return TRUE;
    if (type != PREP_REFUSE || len > DMG_PREPARE_REASON_MAX) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("%s answered the prepare message with a message of type %u and %u bytes; expected ACCEPT or REFUSE"),
                    l->peer, type, len);
        return FALSE;
    }
    if (!(reason = prep_read_payload(l, len, what, error)))
        return FALSE;
    /* the reason is the peer's text: shown, never trusted */
    shown = g_utf8_make_valid((const char *)reason, len);
    for (char *c = shown; *c; c++)
        if ((guchar)*c < 0x20 && *c != '\n')
            *c = ' ';
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                _("%s refused the domain: %s"), l->peer, shown);
    return FALSE;
}

/* ------------------------------------------------------------------ */
/* The destination                                                     */

static gboolean
prep_invalid(const dmg_migration_link *l, GError **error, const char *msg)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("%s sent an invalid prepare message: %s"), l->peer, msg);
    return FALSE;
}

gboolean
dmg_migration_prepare_receive(const dmg_migration_link *l, dmg_migration_prepare *p,
                              GError **error)
{
    const char *what = _("the prepare message");
    g_autofree guint8 *b = NULL;
    g_autofree char *msg = NULL;
    guint32 type, len, accel;
    gsize xml_len;

    dmg_migration_prepare_clear(p);
    if (!prep_read_header(l, what, "", &type, &len, error))
        return FALSE;
    if (type != PREP_PREPARE) {
        msg = g_strdup_printf(_("message type %u where PREPARE (%u) comes first"), type, PREP_PREPARE);
        return prep_invalid(l, error, msg);
    }
    if (len < PREP_FIXED_LEN || len - PREP_FIXED_LEN > DMG_DOMAIN_XML_MAX) {
        msg = g_strdup_printf(_("a length of %u bytes; it is %u bytes and at most %u bytes of domain XML"),
                              len, PREP_FIXED_LEN, (unsigned)DMG_DOMAIN_XML_MAX);
        return prep_invalid(l, error, msg);
    }
    if (!(b = prep_read_payload(l, len, what, error)))
        return FALSE;
    accel = le_get32(b);
    p->vcpus = le_get32(b + 4);
    p->memory = le_get64(b + 8);
    xml_len = len - PREP_FIXED_LEN;
    if (accel != PREP_ACCEL_KVM && accel != PREP_ACCEL_SOFT) {
        msg = g_strdup_printf(_("accelerator %u (0 is kvm, 1 soft)"), accel);
        return prep_invalid(l, error, msg);
    }
    if (p->vcpus < 1 || p->vcpus > DMG_PREPARE_MAX_VCPUS) {
        msg = g_strdup_printf(_("%u vCPUs (1 to %u)"), p->vcpus, DMG_PREPARE_MAX_VCPUS);
        return prep_invalid(l, error, msg);
    }
    if (p->memory == 0 || p->memory % 4096) {
        msg = g_strdup_printf(_("guest memory of %" PRIu64 " bytes (whole pages, not none)"),
                              p->memory);
        return prep_invalid(l, error, msg);
    }
    if (xml_len == 0 || memchr(b + PREP_FIXED_LEN, '\0', xml_len) ||
        !g_utf8_validate((const char *)b + PREP_FIXED_LEN, xml_len, NULL))
        return prep_invalid(l, error, _("the domain XML is empty, holds a NUL byte or is not UTF-8"));
    p->accel = accel == PREP_ACCEL_SOFT ? VM_ACCEL_SOFT : VM_ACCEL_KVM;
    p->xml = g_strndup((const char *)b + PREP_FIXED_LEN, xml_len);
    p->xml_len = xml_len;
    return TRUE;
}

gboolean
dmg_migration_prepare_answer(const dmg_migration_link *l, const char *refusal, GError **error)
{
    const char *end;
    gsize len;

    if (!refusal)
        return prep_send(l, PREP_ACCEPT, NULL, 0, NULL, 0, error);
    len = strlen(refusal);
    if (len > DMG_PREPARE_REASON_MAX) {
        g_utf8_validate(refusal, DMG_PREPARE_REASON_MAX, &end);
        len = end - refusal;
    }
    return prep_send(l, PREP_REFUSE, NULL, 0, refusal, len, error);
}

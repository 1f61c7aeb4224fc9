/*
 * migration_prepare.c: the prepare exchange before the migration stream
 * (the format is in migration_prepare.h), on the migration channel
 * (migration/channel.h), which never blocks past its timeout.
 */
#include "migration_prepare.h"

#include <gio/gio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/uio.h>

#include "migration/le_bytes.h"
#include "dmg_i18n.h"
#include "migration/migration.h"
#include "xml_read.h"

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
/* I/O: the channel's, its errors said to be in the prepare exchange   */

static gboolean
prep_io_failed(GError **error)
{
    g_prefix_error(error, _("in the prepare exchange: "));
    return FALSE;
}

/* Exactly @len bytes, or fewer in *@got at the end of the connection
 * (returns TRUE then too: the caller says what was cut short). */
static gboolean
prep_read(dmg_migration_link *l, guint8 *buf, gsize len, gsize *got, GError **error)
{
    return mig_chan__read_upto(&l->ch, buf, len, got, error) || prep_io_failed(error);
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */

static gboolean
prep_send(dmg_migration_link *l, guint32 type, const guint8 *fixed, gsize fixed_len,
          const void *data, gsize data_len, GError **error)
{
    guint8 hdr[PREP_MAGIC_LEN + PREP_HDR_LEN];
    struct iovec iov[3] = { { hdr, sizeof(hdr) } };
    int n = 1;

    memcpy(hdr, DMG_PREPARE_MAGIC, PREP_MAGIC_LEN);
    le_put32(hdr + PREP_MAGIC_LEN, type);
    le_put32(hdr + PREP_MAGIC_LEN + 4, (guint32)(fixed_len + data_len));
    if (fixed_len)
        iov[n++] = (struct iovec){ (void *)fixed, fixed_len };
    if (data_len)
        iov[n++] = (struct iovec){ (void *)data, data_len };
    return mig_chan__writev(&l->ch, iov, n, error) || prep_io_failed(error);
}

/* The magic and header of the next message: what did arrive instead,
 * in words.  @what: "the prepare message" or "an answer". */
static gboolean
prep_bad_magic(dmg_migration_link *l, const guint8 *b, gsize n, const char *what,
               GError **error)
{
    g_autofree char *seen = prep_escape(b, n);

    if (n >= 6 && !memcmp(b, MIGRATION_MAGIC, 6))
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration %s started the migration stream without %s: it is not a virt-dmaguard with the prepare exchange (virt-dmaguard migrate / incoming)"),
                    l->ch.peer, what);
    /* a TLS record: handshake (0x16) from a client, alert (0x15) from a
     * server that gave up on our plain bytes */
    else if (n >= 2 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration %s speaks TLS, this side does not: use --tls on both sides or on neither"),
                    l->ch.peer);
    else
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("the migration %s is not a virt-dmaguard migration peer: it sent \"%s\" instead of %s"),
                    l->ch.peer, seen, what);
    return FALSE;
}

/* Read magic and header; *@type and *@len.  @what names the message
 * expected, for errors; @eof_hint explains a connection closed before it. */
static gboolean
prep_read_header(dmg_migration_link *l, const char *what, const char *eof_hint,
                 guint32 *type, guint32 *len, GError **error)
{
    guint8 b[PREP_MAGIC_LEN + PREP_HDR_LEN];
    gsize got;

    if (!prep_read(l, b, PREP_MAGIC_LEN, &got, error))
        return FALSE;
    if (got == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    _("the migration %s closed the connection before sending %s%s"),
                    l->ch.peer, what, eof_hint);
        return FALSE;
    }
    if (memcmp(b, DMG_PREPARE_MAGIC, MIN(got, PREP_MAGIC_LEN)) != 0)
        return prep_bad_magic(l, b, got, what, error);
    if (got == PREP_MAGIC_LEN && !prep_read(l, b + PREP_MAGIC_LEN, PREP_HDR_LEN, &got, error))
        return FALSE;
    if (got < PREP_HDR_LEN) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                    _("the migration %s closed the connection in the middle of %s"),
                    l->ch.peer, what);
        return FALSE;
    }
    *type = le_get32(b + PREP_MAGIC_LEN);
    *len = le_get32(b + PREP_MAGIC_LEN + 4);
    return TRUE;
}

static guint8 *
prep_read_payload(dmg_migration_link *l, guint32 len, const char *what, GError **error)
{
    g_autofree guint8 *b = g_malloc(len + 1);
    gsize got;

    if (!prep_read(l, b, len, &got, error))
        return NULL;
    if (got < len) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                    _("the migration %s closed the connection after %zu of the %u bytes of %s"),
                    l->ch.peer, got, len, what);
        return NULL;
    }
    b[len] = '\0';
    return g_steal_pointer(&b);
}

/* ------------------------------------------------------------------ */
/* The source                                                          */

gboolean
dmg_migration_prepare_send(dmg_migration_link *l, const dmg_migration_prepare *p,
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
dmg_migration_prepare_wait_answer(dmg_migration_link *l, GError **error)
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
                    _("the migration %s answered the prepare message with a message of type %u and %u bytes; expected ACCEPT or REFUSE"),
                    l->ch.peer, type, len);
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
                _("the migration %s refused the domain: %s"), l->ch.peer, shown);
    return FALSE;
}

/* ------------------------------------------------------------------ */
/* The destination                                                     */

static gboolean
prep_invalid(dmg_migration_link *l, GError **error, const char *msg)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("the migration %s sent an invalid prepare message: %s"), l->ch.peer, msg);
    return FALSE;
}

gboolean
dmg_migration_prepare_receive(dmg_migration_link *l, dmg_migration_prepare *p,
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
dmg_migration_prepare_answer(dmg_migration_link *l, const char *refusal, GError **error)
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

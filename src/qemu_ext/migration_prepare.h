/*
 * migration_prepare.h: the prepare exchange that comes before the
 * migration stream (migration/migration.h), on the same connection, plain or TLS.
 * It plays libvirt's Begin and Prepare phases: the source sends the
 * domain XML and the shape of the VM it runs in; the destination parses
 * and realizes the domain, creates the VM, and answers whether it takes
 * the guest.  Only after an ACCEPT does the source start the stream.
 *
 * Messages, little endian: the magic "DMGPREP1", an 8-byte header
 * {u32 type, u32 payload length}, the payload.
 *   PREPARE  source -> destination: {u32 accel (0 kvm, 1 soft),
 *            u32 vCPUs, u64 guest memory in bytes}, then the domain XML:
 *            UTF-8 without NUL, at most DMG_DOMAIN_XML_MAX bytes
 *   ACCEPT   destination -> source: empty
 *   REFUSE   destination -> source: the reason, UTF-8 text of at most
 *            DMG_PREPARE_REASON_MAX bytes
 * Anything else (another magic, type or length) fails the exchange with
 * a message that shows what arrived; nothing is read past a message, so
 * the migration stream that follows starts on its first byte.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "migration/channel.h"
#include "vm.h"

#define DMG_PREPARE_MAGIC "DMGPREP1"
#define DMG_PREPARE_REASON_MAX 4096u
#define DMG_PREPARE_MAX_VCPUS 64u

/* The connection: a channel (migration/channel.h) on the socket, over
 * the TLS session when the handshake was made on it, each wait bounded by
 * its timeout.  Its peer names the other side as the channel's messages
 * do, after "the migration ": "destination 127.0.0.1:4567".  Errors of
 * the channel come prefixed with "in the prepare exchange: ". */
typedef struct dmg_migration_link {
    mig_chan ch;
} dmg_migration_link;

typedef struct dmg_migration_prepare {
    vm_accel accel;
    guint vcpus;
    guint64 memory;                      /* pc.ram, bytes */
    char *xml;                           /* NUL-terminated */
    gsize xml_len;
} dmg_migration_prepare;

void dmg_migration_prepare_clear(dmg_migration_prepare *p);

/* The source: send PREPARE, then wait for the answer.  A REFUSE is
 * G_IO_ERROR_PERMISSION_DENIED carrying the destination's reason. */
gboolean dmg_migration_prepare_send(dmg_migration_link *l,
                                    const dmg_migration_prepare *p, GError **error);
gboolean dmg_migration_prepare_wait_answer(dmg_migration_link *l, GError **error);

/* The destination: read PREPARE into @p (cleared first).  Garbage is
 * G_IO_ERROR_INVALID_DATA, a connection that ends early
 * G_IO_ERROR_PARTIAL_INPUT or G_IO_ERROR_CONNECTION_CLOSED. */
gboolean dmg_migration_prepare_receive(dmg_migration_link *l,
                                       dmg_migration_prepare *p, GError **error);
/* Answer ACCEPT (@refusal NULL) or REFUSE with @refusal (cut to
 * DMG_PREPARE_REASON_MAX bytes on a character boundary). */
gboolean dmg_migration_prepare_answer(dmg_migration_link *l, const char *refusal,
                                      GError **error);

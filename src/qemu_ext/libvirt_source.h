/*
 * libvirt_source.h: domain XML from a libvirt connection.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>
#include <stdbool.h>

typedef struct {
    char *name;
    char *xml;                   /* NULL when @error is set */
    gsize len;                   /* of @xml: a file may hold NULs (UTF-16) */
    GError *error;               /* this domain could not be read */
} dmgDomainXML;

void dmg_domain_xml_free(dmgDomainXML *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgDomainXML, dmg_domain_xml_free);

/* The example node, and the host profile with the drivers bound to its
 * node devices (libvirt's test driver keeps no <driver>), both in
 * examples/ or installed in $datadir/dmaguard. */
#define DMG_EXAMPLE_NODE_XML "dmaguard-node.xml"
#define DMG_EXAMPLE_NODE_PROFILE "dmaguard-node.conf"

/* The default connection: libvirt's embedded test driver loaded with the
 * example node (examples/dmaguard-node.xml).  Caller frees. */
char *dmg_default_uri(void);

/* The deadlines of libvirt calls (docs/libvirt.rst).  Keepalive of
 * remote connections: a daemon or host that does not answer for
 * DMG_KEEPALIVE_INTERVAL * (DMG_KEEPALIVE_COUNT + 1) = 20 s fails the
 * pending call.  Opening, before keepalive runs: DMG_LIBVIRT_OPEN_TIMEOUT
 * seconds. */
#define DMG_KEEPALIVE_INTERVAL 5
#define DMG_KEEPALIVE_COUNT 3
#define DMG_LIBVIRT_OPEN_TIMEOUT 30

/* libvirt's last error message in this thread.  Caller frees. */
char *dmg_libvirt_last_message(void);

/* A libvirt call that libvirt may let wait without a deadline of its own
 * (an open before keepalive runs, a QEMU monitor command): @fn(@data)
 * runs in a thread of its own, and the caller waits at most @timeout_s
 * seconds.  TRUE: @fn returned, and @data is the caller's again.  FALSE:
 * @fn still waits; @data is then the thread's, which calls
 * @abandon(@data) if @fn ever returns. */
typedef void (*dmg_libvirt_fn)(gpointer data);
gboolean dmg_libvirt_call_within(dmg_libvirt_fn fn, gpointer data,
                                 GDestroyNotify abandon, guint timeout_s);

/* Open (read-only unless @readwrite) within DMG_LIBVIRT_OPEN_TIMEOUT,
 * with keepalive where the driver has it; libvirt's own error printing is
 * silenced and its message carried in @error. */
virConnectPtr dmg_libvirt_open(const char *uri, gboolean readwrite, GError **error);

/* Store @element (dmg_verdict_metadata_xml) under dmaguard's namespace in
 * the metadata of domain @name: in its persistent configuration, and live
 * when it runs (virDomainSetMetadata).  @make_element builds it from the
 * metadata already there, so per-device settings survive. */
typedef char *(*dmg_metadata_fn)(const char *existing, gpointer data);
gboolean dmg_libvirt_write_metadata(virConnectPtr conn, const char *name,
                                    dmg_metadata_fn make_element, gpointer data,
                                    GError **error);

/* @names NULL: every domain (virConnectListAllDomains), sorted by name.
 * Returns a GPtrArray of dmgDomainXML, or NULL with @error. */
GPtrArray *dmg_libvirt_domains(virConnectPtr conn, char **names, GError **error);
/* The same for a batch: a domain that cannot be read (an unknown name, a
 * dump that fails) is an entry with its error, and the others are still
 * read.  Fails as a whole only when the domains cannot be listed. */
GPtrArray *dmg_libvirt_domains_batch(virConnectPtr conn, char **names, GError **error);

/* The QEMU at the other end of @conn, as "X.Y" in *@version (caller
 * frees): virConnectGetVersion() of a connection whose hypervisor is QEMU
 * (virConnectGetType() "QEMU"), which is the version of the host's default
 * emulator.  *@version stays NULL for another hypervisor, such as
 * libvirt's test driver: its host has no QEMU to ask. */
gboolean dmg_libvirt_qemu_version(virConnectPtr conn, const char *uri,
                                  char **version, GError **error);

/* Whether @conn reaches another host: its URI (virConnectGetURI(), else
 * @uri) names a server, as qemu+ssh://HOST/system or qemu+tcp://HOST/
 * do.  qemu:///system, qemu+unix:///system and test:///... are local. */
bool dmg_libvirt_uri_is_remote(virConnectPtr conn, const char *uri);

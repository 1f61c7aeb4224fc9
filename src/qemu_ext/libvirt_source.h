/*
 * libvirt_source.h: domain XML from a libvirt connection.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

typedef struct {
    char *name;
    char *xml;
} dmgDomainXML;

void dmg_domain_xml_free(dmgDomainXML *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgDomainXML, dmg_domain_xml_free);

/* The default connection: libvirt's embedded test driver loaded with the
 * example node (examples/dmaguard-node.xml).  Caller frees. */
char *dmg_default_uri(void);

/* Open (read-only unless @readwrite); libvirt's own error printing is
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

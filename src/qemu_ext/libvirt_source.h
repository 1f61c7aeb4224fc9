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

/* Open read-only; libvirt's own error printing is silenced and its
 * message carried in @error. */
virConnectPtr dmg_libvirt_open(const char *uri, GError **error);

/* @names NULL: every domain (virConnectListAllDomains), sorted by name.
 * Returns a GPtrArray of dmgDomainXML, or NULL with @error. */
GPtrArray *dmg_libvirt_domains(virConnectPtr conn, char **names, GError **error);

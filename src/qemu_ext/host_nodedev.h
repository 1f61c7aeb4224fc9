/*
 * host_nodedev.h: host devices from the node devices of a libvirt
 * connection, so that a domain on another host is judged with that host's
 * IOMMU groups and drivers, never with this machine's /sys.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

#include "host_profile.h"

/* A node device's XML is a few KiB; a PF listing its VFs or mdev types a
 * few tens.  The caps keep a hostile or broken daemon cheap. */
#define DMG_NODEDEV_XML_MAX (1024 * 1024)
#define DMG_NODEDEV_TOTAL_MAX (64 * 1024 * 1024)
#define DMG_NODEDEV_COUNT_MAX 65536

typedef struct {
    char *name;                  /* the node device's name, as libvirt gives it */
    char *xml;                   /* virNodeDeviceGetXMLDesc() */
} dmgNodedevXML;

void dmg_nodedev_xml_free(dmgNodedevXML *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgNodedevXML, dmg_nodedev_xml_free);

/* Take @profile's host devices from the PCI and mdev node devices of
 * @conn (virConnectListAllNodeDevices): their addresses or UUIDs, IOMMU
 * groups, bound drivers, mdev types and parents.  On error @profile is
 * unchanged. */
gboolean dmg_host_profile_read_nodedev(dmgHostProfile *profile, virConnectPtr conn,
                                       const char *uri, GError **error);

/* The same from node device XML already fetched (@xmls holds
 * dmgNodedevXML *): the parser, for tests. */
gboolean dmg_host_profile_from_nodedev_xml(dmgHostProfile *profile, const char *uri,
                                           GPtrArray *xmls, GError **error);

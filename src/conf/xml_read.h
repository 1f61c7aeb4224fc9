/*
 * xml_read.h: read untrusted domain XML with libxml2, safely and cheaply.
 */
#pragma once

#include <glib.h>
#include <libxml/tree.h>

/* Domain XML is a few KiB; a generous cap keeps hostile input cheap. */
#define DMG_DOMAIN_XML_MAX (16 * 1024 * 1024)

/* Parse @xml: no network, no DTD (so no entity expansion of any kind),
 * the first error with its line.  Children of /domain/devices whose
 * names are not in the NULL-terminated @keep_devices are dropped while
 * parsing.  Returns NULL and sets @error on any problem. */
xmlDocPtr dmg_xml_read(const char *xml, gsize len, const char *source,
                       const char *const *keep_devices, GError **error);

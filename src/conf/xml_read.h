/*
 * xml_read.h: read untrusted domain XML with libxml2, safely and cheaply.
 */
#pragma once

#include <glib.h>
#include <libxml/tree.h>
#include <stdbool.h>

/* Domain XML is a few KiB; a generous cap keeps hostile input cheap. */
#define DMG_DOMAIN_XML_MAX (16 * 1024 * 1024)

/* A child of /domain/devices the reader builds nodes for. */
typedef struct {
    const char *name;            /* the element's name, in no namespace */
    /* NULL: the whole subtree.  Otherwise only the nested elements of
     * this name (a <disk>'s chain of <backingStore>s), not the rest. */
    const char *only_child;
    /* NULL, or whether to keep this one, from its attributes (SAX2's
     * localname/prefix/URI/value/end quintuples; dmg_sax_attr()). */
    bool (*wanted)(const xmlChar **attributes, int nb_attributes);
} dmgKeepDevice;

/* The value of the attribute @name (in no namespace) among SAX2's
 * @attributes, its length in *@len; NULL when absent. */
const char *dmg_sax_attr(const xmlChar **attributes, int nb_attributes,
                         const char *name, size_t *len);

/* Parse @xml: no network, no DTD (so no entity expansion of any kind),
 * the first error with its line.  Children of /domain/devices that no
 * entry of @keep_devices (ended by one whose name is NULL) keeps are
 * dropped while parsing.  Returns NULL and sets @error on any problem. */
xmlDocPtr dmg_xml_read(const char *xml, gsize len, const char *source,
                       const dmgKeepDevice *keep_devices, GError **error);

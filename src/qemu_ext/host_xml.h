/*
 * host_xml.h: read the XML a libvirt daemon describes its host with (node
 * devices, domain capabilities).  It is untrusted: another host's daemon,
 * or something that is not libvirt, may send anything.
 */
#pragma once

#include <glib.h>
#include <libxml/tree.h>

typedef enum {
    DMG_HOST_XML_OK,
    DMG_HOST_XML_TOO_LONG,       /* more than the caller's @max bytes */
    DMG_HOST_XML_DOCTYPE,        /* a <!DOCTYPE>, which neither ever has */
    DMG_HOST_XML_MALFORMED,      /* not well-formed: *@line, from 1 */
} dmgHostXmlProblem;

/* Parse @len bytes of @xml: no DTD (so no entity expansion of any kind),
 * no network, nothing printed, blanks dropped.  NULL with *@problem (and
 * *@line) when it is refused; the caller words the message, which never
 * quotes the document.  Safe in any thread. */
xmlDocPtr dmg_host_xml_read(const char *xml, gsize len, gsize max,
                            dmgHostXmlProblem *problem, long *line);

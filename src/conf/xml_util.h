/*
 * xml_util.h: one helper per attribute type, in the spirit of libvirt's
 * virXMLPropEnum / virXMLPropUInt / virXMLPropTristateBool
 * (src/util/virxml.c).  Every helper reports a bad value with the source,
 * line, element, attribute and value, so a user can find and fix it.
 *
 * Helpers return 1 when the attribute was found and parsed, 0 when it is
 * absent (out untouched), and -1 with @error set when it is invalid.
 */
#pragma once

#include <glib.h>
#include <libxml/tree.h>

#include "conf_error.h"
#include "dmg_enum.h"

typedef struct {
    const char *source;          /* file or domain name for messages */
} dmgXmlCtx;

typedef int (*dmgEnumFromString)(const char *str);

/* First element child named @name in no namespace, or NULL. */
xmlNodePtr dmg_xml_child(xmlNodePtr node, const char *name);
/* First element child in namespace @ns, or NULL. */
xmlNodePtr dmg_xml_child_ns(xmlNodePtr node, const char *ns, const char *name);
bool dmg_xml_is(xmlNodePtr node, const char *ns, const char *name);

/* g_malloc'd copy of the attribute value, or NULL. */
char *dmg_xml_prop(xmlNodePtr node, const char *name);
/* g_malloc'd, whitespace-stripped element text. */
char *dmg_xml_text(xmlNodePtr node);

int dmg_xml_prop_enum(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                      dmgEnumFromString from_string, const char *expected,
                      int *out, GError **error);
/* yes/no, as libvirt's virTristateBool */
int dmg_xml_prop_yes_no(const dmgXmlCtx *ctx, xmlNodePtr node,
                        const char *name, dmgTristate *out, GError **error);
/* on/off, as libvirt's virTristateSwitch */
int dmg_xml_prop_on_off(const dmgXmlCtx *ctx, xmlNodePtr node,
                        const char *name, dmgTristate *out, GError **error);
/* Unsigned integer; base 0 accepts libvirt's 0x-prefixed PCI addresses. */
int dmg_xml_prop_uint(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                      unsigned base, unsigned max, unsigned *out,
                      GError **error);
/* The same for a 64-bit value (libvirt's virXMLPropULongLong). */
int dmg_xml_prop_uint64(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                        unsigned base, guint64 *out, GError **error);

/* An element holding a scaled size: <memory unit='GiB'>8</memory>.
 * @default_scale applies without a unit (libvirt uses KiB).  Result in
 * bytes, as libvirt's virDomainParseScaledValue. */
int dmg_xml_scaled_value(const dmgXmlCtx *ctx, xmlNodePtr node,
                         guint64 default_scale, guint64 *bytes,
                         GError **error);
/* An attribute holding a scaled size, with its unit in another:
 * <cell memory='1048576' unit='KiB'/>.  0 when absent. */
int dmg_xml_prop_scaled(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                        const char *unit_name, guint64 default_scale, guint64 *bytes,
                        GError **error);
/* "512M", "4GiB", "1048576" (with @default_scale): libvirt's units, as
 * virsh setmem takes them. */
gboolean dmg_size_parse(const char *str, guint64 default_scale, guint64 *bytes);

/* An element holding a plain unsigned integer: <vcpu>4</vcpu>. */
int dmg_xml_uint_text(const dmgXmlCtx *ctx, xmlNodePtr node, unsigned max,
                      unsigned *out, GError **error);

/* Error helpers; all messages are translated. */
void dmg_xml_error_invalid(const dmgXmlCtx *ctx, xmlNodePtr node,
                           const char *attr, const char *value,
                           const char *expected, GError **error);
void dmg_xml_error_missing(const dmgXmlCtx *ctx, xmlNodePtr node,
                           const char *what, GError **error);
/* A value shortened for a message: a 10 MB attribute must not become a
 * 10 MB error line. */
char *dmg_xml_value_for_message(const char *value);

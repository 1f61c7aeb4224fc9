/*
 * xml_util.c: typed attribute helpers with clear errors.
 */
#include "xml_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dmg_i18n.h"

#define DMG_MESSAGE_VALUE_MAX 64


bool
dmg_xml_is(xmlNodePtr node, const char *ns, const char *name)
{
    if (!node || node->type != XML_ELEMENT_NODE)
        return false;
    if (strcmp((const char *)node->name, name) != 0)
        return false;
    if (!ns)
        return node->ns == NULL;
    return node->ns && node->ns->href &&
           strcmp((const char *)node->ns->href, ns) == 0;
}

xmlNodePtr
dmg_xml_child_ns(xmlNodePtr node, const char *ns, const char *name)
{
    for (xmlNodePtr cur = node ? node->children : NULL; cur; cur = cur->next) {
        if (dmg_xml_is(cur, ns, name))
            return cur;
    }
    return NULL;
}

xmlNodePtr
dmg_xml_child(xmlNodePtr node, const char *name)
{
    return dmg_xml_child_ns(node, NULL, name);
}

char *
dmg_xml_prop(xmlNodePtr node, const char *name)
{
    xmlChar *val = xmlGetNoNsProp(node, (const xmlChar *)name);
    char *ret;

    if (!val)
        return NULL;
    ret = g_strdup((const char *)val);
    xmlFree(val);
    return ret;
}

char *
dmg_xml_text(xmlNodePtr node)
{
    xmlChar *val = xmlNodeGetContent(node);
    char *ret = g_strdup(val ? (const char *)val : "");

    xmlFree(val);
    return g_strstrip(ret);
}

char *
dmg_xml_value_for_message(const char *value)
{
    gsize len = strlen(value);

    if (len <= DMG_MESSAGE_VALUE_MAX && g_utf8_validate(value, -1, NULL))
        return g_strdup(value);
    return g_strdup_printf(_("%.*s... (%zu bytes)"),
                           DMG_MESSAGE_VALUE_MAX / 2, value, len);
}

/* "hostdev", or "dmaguard:hostdev" for an element in a namespace, so a
 * message never confuses dmaguard's elements with libvirt's. */
static char *
dmg_xml_element_name(xmlNodePtr node)
{
    if (node->ns && node->ns->prefix)
        return g_strdup_printf("%s:%s", node->ns->prefix, node->name);
    return g_strdup((const char *)node->name);
}

void
dmg_xml_error_invalid(const dmgXmlCtx *ctx, xmlNodePtr node, const char *attr,
                      const char *value, const char *expected, GError **error)
{
    g_autofree char *shown = dmg_xml_value_for_message(value);
    g_autofree char *elem = dmg_xml_element_name(node);

    if (attr) {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_INVALID,
                    _("%s:%ld: invalid value '%s' for attribute '%s' of element <%s>: expected %s"),
                    ctx->source, xmlGetLineNo(node), shown, attr, elem, expected);
    } else {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_INVALID,
                    _("%s:%ld: invalid value '%s' in element <%s>: expected %s"),
                    ctx->source, xmlGetLineNo(node), shown, elem, expected);
    }
}

void
dmg_xml_error_missing(const dmgXmlCtx *ctx, xmlNodePtr node, const char *what,
                      GError **error)
{
    g_autofree char *elem = dmg_xml_element_name(node);

    g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_MISSING,
                _("%s:%ld: element <%s> is missing %s"),
                ctx->source, xmlGetLineNo(node), elem, what);
}

int
dmg_xml_prop_enum(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                  dmgEnumFromString from_string, const char *expected,
                  int *out, GError **error)
{
    g_autofree char *val = dmg_xml_prop(node, name);
    int v;

    if (!val)
        return 0;
    if ((v = from_string(val)) < 0) {
        dmg_xml_error_invalid(ctx, node, name, val, expected, error);
        return -1;
    }
    *out = v;
    return 1;
}

static int
dmg_xml_prop_pair(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                  const char *on, const char *off, dmgTristate *out,
                  GError **error)
{
    g_autofree char *val = dmg_xml_prop(node, name);
    g_autofree char *expected = NULL;

    if (!val)
        return 0;
    if (strcmp(val, on) == 0) {
        *out = DMG_TRISTATE_ON;
        return 1;
    }
    if (strcmp(val, off) == 0) {
        *out = DMG_TRISTATE_OFF;
        return 1;
    }
    expected = g_strdup_printf(_("'%s' or '%s'"), on, off);
    dmg_xml_error_invalid(ctx, node, name, val, expected, error);
    return -1;
}

int
dmg_xml_prop_yes_no(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                    dmgTristate *out, GError **error)
{
    return dmg_xml_prop_pair(ctx, node, name, "yes", "no", out, error);
}

int
dmg_xml_prop_on_off(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                    dmgTristate *out, GError **error)
{
    return dmg_xml_prop_pair(ctx, node, name, "on", "off", out, error);
}

/* Strict unsigned parse: digits only (plus 0x in base 0), no sign, no
 * trailing junk, no overflow. */
static bool
dmg_parse_uint64(const char *str, unsigned base, guint64 *out)
{
    char *end = NULL;
    guint64 v;

    if (!str || !*str || !(g_ascii_isdigit(*str)))
        return false;
    errno = 0;
    v = g_ascii_strtoull(str, &end, base);
    if (errno != 0 || !end || *end != '\0')
        return false;
    *out = v;
    return true;
}

int
dmg_xml_prop_uint(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                  unsigned base, unsigned max, unsigned *out, GError **error)
{
    g_autofree char *val = dmg_xml_prop(node, name);
    g_autofree char *expected = NULL;
    guint64 v;

    if (!val)
        return 0;
    if (!dmg_parse_uint64(val, base, &v) || v > max) {
        expected = g_strdup_printf(_("an unsigned integer no larger than %u"),
                                   max);
        dmg_xml_error_invalid(ctx, node, name, val, expected, error);
        return -1;
    }
    *out = (unsigned)v;
    return 1;
}

int
dmg_xml_prop_uint64(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                    unsigned base, guint64 *out, GError **error)
{
    g_autofree char *val = dmg_xml_prop(node, name);

    if (!val)
        return 0;
    if (!dmg_parse_uint64(val, base, out)) {
        dmg_xml_error_invalid(ctx, node, name, val,
                              base == 16 ? _("a 64-bit hexadecimal number")
                                         : _("a 64-bit unsigned integer"),
                              error);
        return -1;
    }
    return 1;
}

int
dmg_xml_uint_text(const dmgXmlCtx *ctx, xmlNodePtr node, unsigned max,
                  unsigned *out, GError **error)
{
    g_autofree char *text = dmg_xml_text(node);
    g_autofree char *expected = NULL;
    guint64 v;

    if (!dmg_parse_uint64(text, 10, &v) || v > max) {
        expected = g_strdup_printf(_("an unsigned integer no larger than %u"),
                                   max);
        dmg_xml_error_invalid(ctx, node, NULL, text, expected, error);
        return -1;
    }
    *out = (unsigned)v;
    return 1;
}

/* libvirt's virScaleInteger: b/bytes, k/KiB = 1024, KB = 1000, ... E. */
static bool
dmg_unit_scale(const char *unit, guint64 default_scale, guint64 *scale)
{
    static const char powers[] = "kmgtpe";
    const char *p;
    guint64 base;

    if (!unit || !*unit) {
        *scale = default_scale;
        return true;
    }
    if (g_ascii_strcasecmp(unit, "b") == 0 ||
        g_ascii_strcasecmp(unit, "byte") == 0 ||
        g_ascii_strcasecmp(unit, "bytes") == 0) {
        *scale = 1;
        return true;
    }
    if (!unit[1] || strcmp(unit + 1, "iB") == 0)
        base = 1024;
    else if (g_ascii_tolower(unit[1]) == 'b' && !unit[2])
        base = 1000;
    else
        return false;
    if (!(p = strchr(powers, g_ascii_tolower(unit[0]))))
        return false;
    *scale = 1;
    for (int i = 0; i <= p - powers; i++)
        *scale *= base;
    return true;
}

gboolean
dmg_size_parse(const char *str, guint64 default_scale, guint64 *bytes)
{
    g_autofree char *num = g_strdup(str);
    char *unit = num;
    guint64 scale, v;

    while (*unit && g_ascii_isdigit(*unit))
        unit++;
    if (!dmg_unit_scale(*unit ? unit : NULL, default_scale, &scale))
        return FALSE;
    *unit = '\0';
    if (!dmg_parse_uint64(num, 10, &v) || v > G_MAXUINT64 / scale)
        return FALSE;
    *bytes = v * scale;
    return TRUE;
}

int
dmg_xml_prop_scaled(const dmgXmlCtx *ctx, xmlNodePtr node, const char *name,
                    const char *unit_name, guint64 default_scale, guint64 *bytes,
                    GError **error)
{
    g_autofree char *unit = dmg_xml_prop(node, unit_name);
    g_autofree char *val = dmg_xml_prop(node, name);
    guint64 scale, v;

    if (!val)
        return 0;
    if (!dmg_unit_scale(unit, default_scale, &scale)) {
        dmg_xml_error_invalid(ctx, node, unit_name, unit,
                              _("a libvirt size unit such as 'KiB', 'MiB' or 'GiB'"),
                              error);
        return -1;
    }
    if (!dmg_parse_uint64(val, 10, &v)) {
        dmg_xml_error_invalid(ctx, node, name, val, _("an unsigned integer size"), error);
        return -1;
    }
    if (v > G_MAXUINT64 / scale) {
        dmg_xml_error_invalid(ctx, node, name, val,
                              _("a size that fits in 64 bits of bytes"), error);
        return -1;
    }
    *bytes = v * scale;
    return 1;
}

int
dmg_xml_scaled_value(const dmgXmlCtx *ctx, xmlNodePtr node,
                     guint64 default_scale, guint64 *bytes, GError **error)
{
    g_autofree char *unit = dmg_xml_prop(node, "unit");
    g_autofree char *text = dmg_xml_text(node);
    guint64 scale, v;

    if (!dmg_unit_scale(unit, default_scale, &scale)) {
        dmg_xml_error_invalid(ctx, node, "unit", unit,
                              _("a libvirt size unit such as 'KiB', 'MiB' or 'GiB'"),
                              error);
        return -1;
    }
    if (!dmg_parse_uint64(text, 10, &v)) {
        dmg_xml_error_invalid(ctx, node, NULL, text,
                              _("an unsigned integer size"), error);
        return -1;
    }
    if (v > G_MAXUINT64 / scale) {
        dmg_xml_error_invalid(ctx, node, NULL, text,
                              _("a size that fits in 64 bits of bytes"), error);
        return -1;
    }
    *bytes = v * scale;
    return 1;
}

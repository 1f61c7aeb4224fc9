/*
 * xml_read.c: the libxml2 reader behind the domain parser.
 *
 * A real domain is mostly disks, controllers, consoles and graphics that
 * dmaguard never looks at.  Building, walking and freeing their nodes was
 * three quarters of `check`'s time (bench/), so the SAX callbacks drop
 * those subtrees before libxml2 allocates them: the devices the parser
 * does not read, and those of the devices it does not need (of a <disk>
 * all but its <backingStore> chain; the PCIe controllers of a q35 guest).
 * Well-formedness is still checked for the whole document.
 */
#include "xml_read.h"

#include <libxml/SAX2.h>
#include <libxml/parser.h>
#include <string.h>

#include "conf_error.h"
#include "dmg_i18n.h"

typedef struct {
    char *first_error;
    long first_line;
    bool doctype;
    const dmgKeepDevice *keep_devices;
    int depth;                   /* of the element being parsed; root = 1 */
    int skip_depth;              /* dropping the subtree at this depth */
    bool in_devices;             /* inside /domain/devices */
    const char *only_child;      /* of the device being built, or NULL */
} dmgParseState;

static dmgParseState *
dmg_sax_state(void *userdata)
{
    return ((xmlParserCtxtPtr)userdata)->_private;
}

/* Domain XML never carries a DTD.  Refusing any DOCTYPE closes the door on
 * entity expansion (billion laughs) and external entities (XXE) before
 * libxml2 looks at a single declaration. */
static void
dmg_sax_internal_subset(void *userdata, const xmlChar *name,
                        const xmlChar *external_id, const xmlChar *system_id)
{
    dmg_sax_state(userdata)->doctype = true;
    xmlStopParser(userdata);
}

static void
dmg_sax_error(void *userdata, const xmlError *err)
{
    dmgParseState *st = dmg_sax_state(userdata);

    if (st->first_error || !err || err->level < XML_ERR_ERROR)
        return;
    st->first_error = g_strstrip(g_strdup(err->message ? err->message : "?"));
    st->first_line = err->line;
}

const char *
dmg_sax_attr(const xmlChar **attributes, int nb_attributes, const char *name,
             size_t *len)
{
    for (int i = 0; i < nb_attributes; i++) {
        const xmlChar **a = attributes + 5 * i;

        if (!a[2] && strcmp((const char *)a[0], name) == 0) {
            *len = (size_t)(a[4] - a[3]);
            return (const char *)a[3];
        }
    }
    return NULL;
}

/* The entry of @keep that keeps the device element @name with these
 * @attributes, or NULL. */
static const dmgKeepDevice *
dmg_keep_entry(const dmgKeepDevice *keep, const char *name,
               const xmlChar **attributes, int nb_attributes)
{
    for (; keep->name; keep++) {
        if (strcmp(keep->name, name) == 0)
            return !keep->wanted || keep->wanted(attributes, nb_attributes) ? keep : NULL;
    }
    return NULL;
}

static void
dmg_sax_start_element(void *userdata, const xmlChar *localname,
                      const xmlChar *prefix, const xmlChar *uri,
                      int nb_namespaces, const xmlChar **namespaces,
                      int nb_attributes, int nb_defaulted,
                      const xmlChar **attributes)
{
    dmgParseState *st = dmg_sax_state(userdata);

    st->depth++;
    if (st->skip_depth)
        return;
    if (st->in_devices && st->depth == 3) {
        const dmgKeepDevice *k = uri ? NULL : dmg_keep_entry(st->keep_devices, (const char *)localname,
                                                             attributes, nb_attributes);

        /* An element in a namespace is none of libvirt's devices: it is
         * kept whole. */
        if (!uri && !k) {
            st->skip_depth = st->depth;
            return;
        }
        st->only_child = k ? k->only_child : NULL;
    } else if (st->in_devices && st->depth > 3 && st->only_child &&
               (uri || strcmp((const char *)localname, st->only_child) != 0)) {
        st->skip_depth = st->depth;
        return;
    }
    if (st->depth == 2 && !uri && strcmp((const char *)localname, "devices") == 0)
        st->in_devices = true;
    xmlSAX2StartElementNs(userdata, localname, prefix, uri, nb_namespaces,
                          namespaces, nb_attributes, nb_defaulted, attributes);
}

static void
dmg_sax_end_element(void *userdata, const xmlChar *localname,
                    const xmlChar *prefix, const xmlChar *uri)
{
    dmgParseState *st = dmg_sax_state(userdata);

    if (st->skip_depth) {
        if (st->depth-- == st->skip_depth)
            st->skip_depth = 0;
        return;
    }
    if (st->depth-- == 2)
        st->in_devices = false;
    xmlSAX2EndElementNs(userdata, localname, prefix, uri);
}

static void
dmg_sax_characters(void *userdata, const xmlChar *ch, int len)
{
    if (!dmg_sax_state(userdata)->skip_depth)
        xmlSAX2Characters(userdata, ch, len);
}

/* libxml2 prints encoding errors straight to stderr, past NOERROR; they
 * reach the user through the structured handler instead. */
static void
dmg_xml_generic_error_quiet(void *ctx, const char *msg, ...)
{
}

/* libxml2 checks an element's attributes pairwise for duplicates and
 * grows its namespace table per declaration, so one element with 100k
 * attributes (a 1 MB file) took 15 s, 200k xmlns declarations 19 s
 * (issue 14).  libvirt's elements have a handful.  One linear pass over
 * the bytes, before libxml2 sees them, counts each start tag's attributes
 * (namespace declarations are attributes there), skipping comments,
 * CDATA, processing instructions and quoted values. */
#define DMG_XML_MAX_ATTRIBUTES 256
#define DMG_XML_MAX_ELEMENTS (1024 * 1024)

static gboolean
dmg_xml_prescan(const char *xml, gsize len, const char *source, GError **error)
{
    const char *p = xml, *end = xml + len;
    gsize elements = 0;
    long line = 1;

    while (p < end) {
        const char *lt = memchr(p, '<', end - p);
        unsigned attrs = 0;
        char quote = 0;

        for (const char *q = p; q < (lt ? lt : end); q++)
            line += *q == '\n';
        if (!lt)
            break;
        p = lt + 1;
        if (end - p >= 3 && memcmp(p, "!--", 3) == 0) {
            const char *close = g_strstr_len(p + 3, end - p - 3, "-->");

            for (const char *q = p; q < (close ? close : end); q++)
                line += *q == '\n';
            p = close ? close + 3 : end;
            continue;
        }
        if (end - p >= 8 && memcmp(p, "![CDATA[", 8) == 0) {
            const char *close = g_strstr_len(p + 8, end - p - 8, "]]>");

            for (const char *q = p; q < (close ? close : end); q++)
                line += *q == '\n';
            p = close ? close + 3 : end;
            continue;
        }
        if (p < end && (*p == '?' || *p == '!' || *p == '/'))
            continue;
        if (++elements > DMG_XML_MAX_ELEMENTS) {
            g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_XML,
                        _("%s:%ld: more than %d elements, the most dmaguard reads of a domain; a libvirt domain has a few hundred"),
                        source, line, DMG_XML_MAX_ELEMENTS);
            return FALSE;
        }
        for (; p < end; p++) {
            if (quote) {
                if (*p == quote)
                    quote = 0;
            } else if (*p == '"' || *p == '\'') {
                quote = *p;
            } else if (*p == '=') {
                if (++attrs > DMG_XML_MAX_ATTRIBUTES) {
                    g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_XML,
                                _("%s:%ld: an element has more than %d attributes (namespace declarations included), the most dmaguard reads; libvirt's elements have a few"),
                                source, line, DMG_XML_MAX_ATTRIBUTES);
                    return FALSE;
                }
            } else if (*p == '>') {
                p++;
                break;
            }
            line += *p == '\n';
        }
    }
    return TRUE;
}

xmlDocPtr
dmg_xml_read(const char *xml, gsize len, const char *source,
             const dmgKeepDevice *keep_devices, GError **error)
{
    dmgParseState st = { .keep_devices = keep_devices };
    xmlParserCtxtPtr pctxt;
    xmlDocPtr doc;

    if (len > DMG_DOMAIN_XML_MAX) {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_XML,
                    _("%s: domain XML is %zu bytes, more than the %d bytes allowed"),
                    source, len, DMG_DOMAIN_XML_MAX);
        return NULL;
    }
    if (!dmg_xml_prescan(xml, len, source, error))
        return NULL;
    xmlSetGenericErrorFunc(NULL, dmg_xml_generic_error_quiet);
    if (!(pctxt = xmlNewParserCtxt()))
        g_error("out of memory");
    pctxt->_private = &st;
    pctxt->sax->internalSubset = dmg_sax_internal_subset;
    pctxt->sax->serror = (xmlStructuredErrorFunc)dmg_sax_error;
    pctxt->sax->startElementNs = dmg_sax_start_element;
    pctxt->sax->endElementNs = dmg_sax_end_element;
    pctxt->sax->characters = dmg_sax_characters;
    pctxt->sax->initialized = XML_SAX2_MAGIC;
    doc = xmlCtxtReadMemory(pctxt, xml, (int)len, source, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING | XML_PARSE_NOCDATA |
                            XML_PARSE_NOBLANKS);
    if (st.doctype) {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_XML,
                    _("%s: a <!DOCTYPE> declaration is not allowed in domain XML (entities are never expanded); remove it"),
                    source);
        g_clear_pointer(&doc, xmlFreeDoc);
    } else if (!doc || !pctxt->wellFormed || st.first_error) {
        g_set_error(error, DMG_CONF_ERROR, DMG_CONF_ERROR_XML,
                    _("%s:%ld: malformed XML: %s"), source, st.first_line,
                    st.first_error ? st.first_error : _("document is empty or truncated"));
        g_clear_pointer(&doc, xmlFreeDoc);
    }
    g_free(st.first_error);
    xmlFreeParserCtxt(pctxt);
    return doc;
}

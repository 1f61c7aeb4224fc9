/*
 * host_xml.c: the libxml2 reader of host descriptions from libvirt
 * (host_nodedev.c, host_domcaps.c).  libxml2 keeps its error handlers per
 * thread, and each call has its own parser context.
 */
#include "host_xml.h"

#include <libxml/parser.h>
#include <stdbool.h>

typedef struct {
    bool doctype;
    long first_line;
} dmgHostXmlParse;

/* Neither node device XML nor domain capabilities carry a DTD: refusing
 * one closes the door on entity expansion and external entities before a
 * declaration is read. */
static void
dmg_host_xml_internal_subset(void *userdata, const xmlChar *name,
                             const xmlChar *external_id, const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = userdata;

    ((dmgHostXmlParse *)ctxt->_private)->doctype = true;
    xmlStopParser(ctxt);
}

static void
dmg_host_xml_error(void *userdata, const xmlError *err)
{
    dmgHostXmlParse *st = ((xmlParserCtxtPtr)userdata)->_private;

    if (!st->first_line && err && err->level >= XML_ERR_ERROR)
        st->first_line = err->line > 0 ? err->line : 1;
}

/* libxml2 prints encoding errors straight to stderr, past NOERROR. */
static void
dmg_host_xml_generic_error_quiet(void *ctx, const char *msg, ...)
{
}

xmlDocPtr
dmg_host_xml_read(const char *xml, gsize len, gsize max,
                  dmgHostXmlProblem *problem, long *line)
{
    dmgHostXmlParse st = { 0 };
    xmlParserCtxtPtr pctxt;
    xmlDocPtr doc;

    *problem = DMG_HOST_XML_OK;
    *line = 0;
    if (len > max || len > G_MAXINT) {
        *problem = DMG_HOST_XML_TOO_LONG;
        return NULL;
    }
    xmlSetGenericErrorFunc(NULL, dmg_host_xml_generic_error_quiet);
    if (!(pctxt = xmlNewParserCtxt()))
        g_error("out of memory");
    pctxt->_private = &st;
    pctxt->sax->internalSubset = dmg_host_xml_internal_subset;
    pctxt->sax->serror = (xmlStructuredErrorFunc)dmg_host_xml_error;
    doc = xmlCtxtReadMemory(pctxt, xml, (int)len, NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR |
                            XML_PARSE_NOWARNING | XML_PARSE_NOCDATA |
                            XML_PARSE_NOBLANKS);
    if (st.doctype) {
        *problem = DMG_HOST_XML_DOCTYPE;
        g_clear_pointer(&doc, xmlFreeDoc);
    } else if (!doc || !pctxt->wellFormed || st.first_line) {
        *problem = DMG_HOST_XML_MALFORMED;
        *line = st.first_line ? st.first_line : 1;
        g_clear_pointer(&doc, xmlFreeDoc);
    }
    xmlFreeParserCtxt(pctxt);
    return doc;
}

/*
 * conf_error.h: the error domain of the XML layer, below both the reader
 * and the model, as libvirt keeps VIR_ERR_XML_ERROR in src/util/virerror.h.
 */
#pragma once

#include <glib.h>

#define DMG_CONF_ERROR (dmg_conf_error_quark())
GQuark dmg_conf_error_quark(void);

typedef enum {
    DMG_CONF_ERROR_XML,          /* not well-formed, DTD, entities */
    DMG_CONF_ERROR_INVALID,      /* a value of the wrong type or range */
    DMG_CONF_ERROR_MISSING,      /* a required element or attribute */
    DMG_CONF_ERROR_UNSUPPORTED,  /* valid libvirt XML that we refuse */
} dmgConfError;

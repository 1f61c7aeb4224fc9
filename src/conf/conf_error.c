/*
 * conf_error.c: the XML layer's error quark.
 */
#include "conf_error.h"

G_DEFINE_QUARK(dmg-conf-error-quark, dmg_conf_error)

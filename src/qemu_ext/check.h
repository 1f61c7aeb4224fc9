/*
 * check.h: the whole dry run for one domain: parse, realize, read off.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "host_profile.h"
#include "qemu_profile.h"

/* Returns the verdict, or NULL with @error when the XML is not a valid
 * domain (exit status 2 material). */
JsonNode *dmg_check_xml(const char *xml, gsize len, const char *source,
                        dmgHostProfile *host, const dmgQemuProfile *qemu,
                        GError **error);

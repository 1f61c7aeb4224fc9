/*
 * check.h: the whole dry run for one domain: parse, realize, read off.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "domain_conf.h"
#include "host_profile.h"
#include "qemu_profile.h"

/* Returns the verdict, or NULL with @error when the XML is not a valid
 * domain or its emulator cannot be probed (exit status 2 material).  The
 * domain is judged for @qemu, or for its own emulator when @qemu has a
 * prober (dmg_qemu_profile_for_domain); the verdict's "qemu" member says
 * which. */
JsonNode *dmg_check_xml(const char *xml, gsize len, const char *source,
                        dmgHostProfile *host, const dmgQemuProfile *qemu,
                        GError **error);

/* The same for a domain already parsed.  Thread-safe: realize runs under
 * one lock (the VMM's memory API is global); @host and @qemu belong to the
 * calling thread. */
JsonNode *dmg_check_def(const dmgDomainDef *def, const char *source,
                        dmgHostProfile *host, const dmgQemuProfile *qemu,
                        GError **error);

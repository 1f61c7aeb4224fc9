/*
 * verdict.h: read a domain's verdict off its realized machine.  The result
 * is the JSON object that `check --json` prints for the domain (format
 * version 1, docs/json.rst); the text report renders the same object.
 */
#pragma once

#include <json-glib/json-glib.h>

#include "domain_conf.h"
#include "host_profile.h"
#include "machine.h"
#include "qemu_profile.h"

#define DMG_VERDICT_FORMAT_VERSION 1

JsonNode *dmg_verdict_build(const dmgDomainDef *def, vmm_machine *m,
                            dmgHostProfile *host, const dmgQemuProfile *qemu);

bool dmg_verdict_has_errors(JsonNode *verdict);

/* A digest of what a verdict says (codes, groups, devices; not the
 * wording of messages, which changes with language and release). */
char *dmg_verdict_digest(JsonNode *verdict);
/* Short words for people: "effective", "partial", "inert", "none";
 * "allowed", "blocked". */
const char *dmg_verdict_balloon_word(JsonNode *verdict);
const char *dmg_verdict_migration_word(JsonNode *verdict);

/* The <dmaguard:domain> element to store with virDomainSetMetadata: the
 * per-device settings already in @existing (an element, or NULL) plus a
 * fresh <verdict/>. */
char *dmg_verdict_metadata_xml(JsonNode *verdict, const char *existing,
                               const char *qemu_version);

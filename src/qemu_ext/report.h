/*
 * report.h: render verdicts for people (text) and programs (JSON).
 */
#pragma once

#include <json-glib/json-glib.h>

#include "host_profile.h"
#include "qemu_profile.h"

/* One block per domain; each finding on its own line with device, IOMMU
 * group, reason and what to do instead. */
void dmg_report_text(GString *out, JsonNode *verdict);

/* The members of a report document, into @b's open object: profile (when
 * not NULL), domains, and not_analyzed (JsonNode * {name, message}; left
 * out when NULL).  A fleet's host objects use it too. */
void dmg_report_members(JsonBuilder *b, GPtrArray *verdicts, JsonNode *profile,
                        GPtrArray *not_analyzed);

/* {"version":1,"profile":{...},"domains":[...]} */
char *dmg_report_json(GPtrArray *verdicts, JsonNode *profile, gboolean pretty);

/* A verdict's "qemu" member: the QEMU one domain was judged for. */
JsonNode *dmg_report_qemu(const dmgQemuProfile *qemu);
/* The "qemu" member every verdict of @verdicts has, or NULL when they
 * differ or there are none. */
JsonObject *dmg_report_common_qemu(GPtrArray *verdicts);
/* What the verdicts were judged for: QEMU version and features (those of
 * the domains when they agree, else @qemu's), sysfs. */
JsonNode *dmg_report_profile(const dmgHostProfile *host, const dmgQemuProfile *qemu,
                             GPtrArray *verdicts);

/*
 * report.h: render verdicts for people (text) and programs (JSON).
 */
#pragma once

#include <json-glib/json-glib.h>

/* One block per domain; each finding on its own line with device, IOMMU
 * group, reason and what to do instead. */
void dmg_report_text(GString *out, JsonNode *verdict);

/* {"version":1,"domains":[...]}; takes the verdict nodes as they are. */
char *dmg_report_json(GPtrArray *verdicts, gboolean pretty);

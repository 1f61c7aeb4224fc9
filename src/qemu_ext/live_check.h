/*
 * live_check.h: QEMU's own answer for a running domain.  libvirt's
 * qemuDomainGetMigrationBlockers() asks QEMU `query-migrate` and reads
 * `blocked-reasons` (qemuMonitorJSONGetMigrationBlockers(), libvirt 9.0);
 * this asks the same question through the public API
 * (virDomainQemuMonitorCommand) and compares the answer with the
 * qemu-layer blockers the verdict predicts.  The verdict's
 * migration.live member holds the result (docs/json.rst).
 */
#pragma once

#include <json-glib/json-glib.h>
#include <libvirt/libvirt.h>

/* Seconds to wait for one domain's QEMU when none is given. */
#define DMG_LIVE_TIMEOUT_DEFAULT 10

/* The reasons in a `query-migrate` reply, as libvirt reads them: an
 * `error` member or a missing or non-object `return` is an error; no
 * `blocked-reasons` array means none.  Returns a NULL-terminated vector
 * (empty when nothing blocks), or NULL with @error. */
char **dmg_live_parse_blockers(const char *reply, GError **error);

/* "X.Y.Z" from a `query-version` reply, with @major and @minor, or NULL
 * with @error. */
char *dmg_live_parse_version(const char *reply, int *major, int *minor,
                             GError **error);

/* Record @reasons, the answer of QEMU @qemu_version, in @verdict's
 * migration.live and compare them with the predicted qemu-layer
 * blockers; a difference adds the live-blockers-differ warning. */
void dmg_live_record(JsonNode *verdict, const char *qemu_version,
                     char *const *reasons);

/* Record that QEMU was not asked, and why (NULL: nothing to ask). */
void dmg_live_record_unchecked(JsonNode *verdict, const char *why);

/* Ask the QEMU of domain @name on @conn, if the domain runs, and record
 * the answer in @verdict.  The monitor commands get @timeout_s seconds
 * in all; a failure or no answer is recorded as "not checked". */
void dmg_live_check_domain(virConnectPtr conn, const char *name,
                           guint timeout_s, JsonNode *verdict);

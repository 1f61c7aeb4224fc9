/*
 * migration/blocker.h: the registry QEMU keeps with migrate_add_blocker()
 * (migration/migration.c), extended with libvirt's own refusals and with
 * run-time conditions that cancel a migration already under way.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef enum {
    MIGRATION_LAYER_LIBVIRT,
    MIGRATION_LAYER_QEMU,
} migration_layer;

typedef struct migration_blocker {
    migration_layer layer;
    char *code;
    char *device;                /* alias, or NULL for a machine-wide blocker */
    char *message;               /* what it means and what to do */
    /* The layer's own words: the Error QEMU lists in query-migrate's
     * blocked-reasons, or the text of libvirt's refusal. */
    char *reason;
} migration_blocker;

typedef struct migration_condition {
    char *code;
    char *message;
} migration_condition;

typedef struct migration_blockers {
    GPtrArray *blockers;         /* migration_blocker * */
    GPtrArray *conditions;       /* migration_condition * */
    /* "code\x1fdevice" -> the first blocker with them: find() is called
     * once per device realized (issue 14: near-linear analysis) */
    GHashTable *index;
    bool shared_keys;            /* two blockers have had one key */
} migration_blockers;

void migration_blockers__init(migration_blockers *reg);
void migration_blockers__destroy(migration_blockers *reg);

migration_blocker *migration_blockers__add(migration_blockers *reg,
                                           migration_layer layer,
                                           const char *code,
                                           const char *device,
                                           const char *message,
                                           const char *reason);
void migration_blockers__del(migration_blockers *reg, migration_blocker *b);
migration_blocker *migration_blockers__find(migration_blockers *reg,
                                            const char *code,
                                            const char *device);
bool migration_blockers__empty(const migration_blockers *reg);

void migration_blockers__add_condition(migration_blockers *reg,
                                       const char *code, const char *message);
const char *migration_layer__to_string(migration_layer layer);

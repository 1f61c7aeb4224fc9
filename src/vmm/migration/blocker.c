/*
 * migration/blocker.c: the migration blocker registry.
 */
#include "migration/blocker.h"

#include "dmg_array.h"

static void
migration_blocker__free(migration_blocker *b)
{
    g_free(b->code);
    g_free(b->device);
    g_free(b->message);
    g_free(b->reason);
    g_free(b);
}

static void
migration_condition__free(migration_condition *c)
{
    g_free(c->code);
    g_free(c->message);
    g_free(c);
}

void
migration_blockers__init(migration_blockers *reg)
{
    reg->blockers = g_ptr_array_new_with_free_func((GDestroyNotify)migration_blocker__free);
    reg->conditions = g_ptr_array_new_with_free_func((GDestroyNotify)migration_condition__free);
    reg->index = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static char *
migration_blockers__key(const char *code, const char *device)
{
    return g_strdup_printf("%s\x1f%c%s", code ? code : "", device ? 'D' : '-',
                           device ? device : "");
}

void
migration_blockers__destroy(migration_blockers *reg)
{
    g_clear_pointer(&reg->index, g_hash_table_unref);
    g_clear_pointer(&reg->blockers, g_ptr_array_unref);
    g_clear_pointer(&reg->conditions, g_ptr_array_unref);
}

migration_blocker *
migration_blockers__add(migration_blockers *reg, migration_layer layer,
                        const char *code, const char *device,
                        const char *message, const char *reason)
{
    migration_blocker *b = g_new0(migration_blocker, 1);
    g_autofree char *key = NULL;

    b->layer = layer;
    b->code = g_strdup(code);
    b->device = g_strdup(device);
    b->message = g_strdup(message);
    b->reason = g_strdup(reason ? reason : message);
    g_ptr_array_add(reg->blockers, b);
    key = migration_blockers__key(code, device);
    if (!g_hash_table_contains(reg->index, key))
        g_hash_table_insert(reg->index, g_steal_pointer(&key), b);
    else
        reg->shared_keys = true;
    return b;
}

void
migration_blockers__del(migration_blockers *reg, migration_blocker *b)
{
    g_autofree char *key = migration_blockers__key(b->code, b->device);

    if (g_hash_table_lookup(reg->index, key) == b) {
        g_hash_table_remove(reg->index, key);
        /* Another blocker with the same code and device takes its place
         * (rare: a scan only when two ever shared a key). */
        for (guint i = 0; reg->shared_keys && i < reg->blockers->len; i++) {
            migration_blocker *o = g_ptr_array_index(reg->blockers, i);

            if (o != b && g_strcmp0(o->code, b->code) == 0 &&
                g_strcmp0(o->device, b->device) == 0) {
                g_hash_table_insert(reg->index, g_steal_pointer(&key), o);
                break;
            }
        }
    }
    dmg_ptr_array_remove_from_end(reg->blockers, b);
}

migration_blocker *
migration_blockers__find(migration_blockers *reg, const char *code,
                         const char *device)
{
    g_autofree char *key = migration_blockers__key(code, device);

    return g_hash_table_lookup(reg->index, key);
}

bool
migration_blockers__empty(const migration_blockers *reg)
{
    return reg->blockers->len == 0;
}

void
migration_blockers__add_condition(migration_blockers *reg, const char *code,
                                  const char *message)
{
    migration_condition *c = g_new0(migration_condition, 1);

    c->code = g_strdup(code);
    c->message = g_strdup(message);
    g_ptr_array_add(reg->conditions, c);
}

const char *
migration_layer__to_string(migration_layer layer)
{
    return layer == MIGRATION_LAYER_LIBVIRT ? "libvirt" : "qemu";
}

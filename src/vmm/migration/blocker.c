/*
 * migration/blocker.c: the migration blocker registry.
 */
#include "migration/blocker.h"

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
}

void
migration_blockers__destroy(migration_blockers *reg)
{
    g_clear_pointer(&reg->blockers, g_ptr_array_unref);
    g_clear_pointer(&reg->conditions, g_ptr_array_unref);
}

migration_blocker *
migration_blockers__add(migration_blockers *reg, migration_layer layer,
                        const char *code, const char *device,
                        const char *message, const char *reason)
{
    migration_blocker *b = g_new0(migration_blocker, 1);

    b->layer = layer;
    b->code = g_strdup(code);
    b->device = g_strdup(device);
    b->message = g_strdup(message);
    b->reason = g_strdup(reason ? reason : message);
    g_ptr_array_add(reg->blockers, b);
    return b;
}

void
migration_blockers__del(migration_blockers *reg, migration_blocker *b)
{
    g_ptr_array_remove(reg->blockers, b);
}

migration_blocker *
migration_blockers__find(migration_blockers *reg, const char *code,
                         const char *device)
{
    for (guint i = 0; i < reg->blockers->len; i++) {
        migration_blocker *b = g_ptr_array_index(reg->blockers, i);

        if (g_strcmp0(b->code, code) == 0 && g_strcmp0(b->device, device) == 0)
            return b;
    }
    return NULL;
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

/*
 * migration/savevm.c: the machine's list of device state handlers (migration/savevm.h).
 */
#include "migration/savevm.h"

#include <string.h>

#include "machine_state.h"

void
savevm_entry__free(savevm_entry *e)
{
    if (!e)
        return;
    g_free(e->id);
    g_free(e);
}

void
savevm__register(vmm_machine *m, const char *id, const savevm_ops *ops, void *opaque)
{
    savevm_entry *e = g_new0(savevm_entry, 1);

    /* QEMU refuses a duplicate idstr at realize; ours come from unique
     * aliases, so a duplicate is a programming error. */
    g_return_if_fail(!savevm__find(m, id));
    e->id = g_strdup(id);
    e->ops = ops;
    e->opaque = opaque;
    g_ptr_array_add(m->savevm, e);
}

void
savevm__unregister(vmm_machine *m, void *opaque)
{
    for (guint i = m->savevm->len; i-- > 0;) {
        savevm_entry *e = g_ptr_array_index(m->savevm, i);

        if (e->opaque == opaque)
            g_ptr_array_remove_index(m->savevm, i);
    }
}

savevm_entry *
savevm__find(vmm_machine *m, const char *id)
{
    for (guint i = 0; i < m->savevm->len; i++) {
        savevm_entry *e = g_ptr_array_index(m->savevm, i);

        if (strcmp(e->id, id) == 0)
            return e;
    }
    return NULL;
}

void
savevm__vm_running(vmm_machine *m, bool running)
{
    for (guint n = 0; n < m->savevm->len; n++) {
        guint i = running ? n : m->savevm->len - 1 - n;
        savevm_entry *e = g_ptr_array_index(m->savevm, i);

        if (e->ops->vm_running)
            e->ops->vm_running(e->opaque, running);
    }
}

/*
 * virtio/discard_manager.c: the four RAM discard counters of QEMU 6.0
 * (softmmu/physmem.c, "ram_block_discard_*"), plus a list of holders.
 */
#include "virtio/discard_manager.h"
#include "dmg_array.h"

#include <errno.h>

void
discard_manager__init(discard_manager *dm)
{
    *dm = (discard_manager){ 0 };
    g_mutex_init(&dm->lock);
    dm->inhibitors = g_ptr_array_new();
}

void
discard_manager__destroy(discard_manager *dm)
{
    g_ptr_array_unref(dm->inhibitors);
    g_mutex_clear(&dm->lock);
}

void
discard_inhibitor__init(discard_inhibitor *who, const char *code, int group)
{
    who->code = code;
    who->group = group;
    who->devices = g_ptr_array_new_with_free_func(g_free);
}

void
discard_inhibitor__clear(discard_inhibitor *who)
{
    g_clear_pointer(&who->devices, g_ptr_array_unref);
}

static void
discard_manager__track(discard_manager *dm, bool state, discard_inhibitor *who)
{
    if (!who)
        return;
    if (state)
        g_ptr_array_add(dm->inhibitors, who);
    else
        dmg_ptr_array_remove_from_end(dm->inhibitors, who);
}

/* ram_block_discard_disable(): a hard disable refuses while anybody, even
 * virtio-mem, requires discard. */
int
discard_manager__disable(discard_manager *dm, bool state, discard_inhibitor *who)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&dm->lock);

    if (!state) {
        g_return_val_if_fail(dm->discard_disabled > 0, -EINVAL);
        dm->discard_disabled--;
    } else if (dm->discard_required || dm->coordinated_discard_required) {
        return -EBUSY;
    } else {
        dm->discard_disabled++;
    }
    discard_manager__track(dm, state, who);
    return 0;
}

/* ram_block_uncoordinated_discard_disable(): VFIO type1 only refuses the
 * balloon's blind madvise(); virtio-mem's coordinated discard stays legal. */
int
discard_manager__uncoordinated_disable(discard_manager *dm, bool state,
                                       discard_inhibitor *who)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&dm->lock);

    if (!state) {
        g_return_val_if_fail(dm->uncoordinated_discard_disabled > 0, -EINVAL);
        dm->uncoordinated_discard_disabled--;
    } else if (dm->discard_required) {
        return -EBUSY;
    } else {
        dm->uncoordinated_discard_disabled++;
    }
    discard_manager__track(dm, state, who);
    return 0;
}

/* ram_block_discard_require() */
int
discard_manager__require(discard_manager *dm, bool state)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&dm->lock);

    if (!state) {
        g_return_val_if_fail(dm->discard_required > 0, -EINVAL);
        dm->discard_required--;
    } else if (dm->discard_disabled || dm->uncoordinated_discard_disabled) {
        return -EBUSY;
    } else {
        dm->discard_required++;
    }
    return 0;
}

/* ram_block_coordinated_discard_require(): only a hard disable conflicts. */
int
discard_manager__coordinated_require(discard_manager *dm, bool state)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&dm->lock);

    if (!state) {
        g_return_val_if_fail(dm->coordinated_discard_required > 0, -EINVAL);
        dm->coordinated_discard_required--;
    } else if (dm->discard_disabled) {
        return -EBUSY;
    } else {
        dm->coordinated_discard_required++;
    }
    return 0;
}

bool
discard_manager__is_disabled(discard_manager *dm)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&dm->lock);

    return dm->discard_disabled || dm->uncoordinated_discard_disabled;
}

bool
discard_manager__is_required(discard_manager *dm)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&dm->lock);

    return dm->discard_required || dm->coordinated_discard_required;
}

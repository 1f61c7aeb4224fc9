/*
 * dmg_array.h: GPtrArray helpers every layer shares.
 */
#pragma once

#include <glib.h>

/* Remove @p from @a, looking from the end: teardown removes the newest
 * first, so this is O(1) there where g_ptr_array_remove() scans the whole
 * array, which made freeing tens of thousands of devices quadratic
 * (issue 14).  Keeps the order.  FALSE when @p is not in @a. */
static inline gboolean
dmg_ptr_array_remove_from_end(GPtrArray *a, gpointer p)
{
    for (guint i = a->len; i-- > 0;) {
        if (g_ptr_array_index(a, i) == p) {
            g_ptr_array_remove_index(a, i);
            return TRUE;
        }
    }
    return FALSE;
}

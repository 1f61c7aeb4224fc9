/*
 * test-paths.c: files of the source tree, for the unit tests.
 */
#include "test-paths.h"

#include <stdarg.h>

char *
source_path(const char *first, ...)
{
    const char *root = g_getenv("DMAGUARD_SOURCE_ROOT");
    g_autofree char *dist = NULL;
    g_autoptr(GPtrArray) parts = g_ptr_array_new();
    va_list ap;

    if (!root)
        root = dist = g_test_build_filename(G_TEST_DIST, "..", NULL);
    g_ptr_array_add(parts, (char *)root);
    va_start(ap, first);
    for (const char *p = first; p; p = va_arg(ap, const char *))
        g_ptr_array_add(parts, (char *)p);
    va_end(ap);
    g_ptr_array_add(parts, NULL);
    return g_build_filenamev((char **)parts->pdata);
}

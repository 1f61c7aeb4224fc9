#include "dmg_enum.h"

#include <string.h>

int
dmg_enum_from_string(const char *const *table, int n, const char *str)
{
    if (!str)
        return -1;
    for (int i = 0; i < n; i++) {
        if (table[i] && strcmp(table[i], str) == 0)
            return i;
    }
    return -1;
}

const char *
dmg_enum_to_string(const char *const *table, int n, int val)
{
    if (val < 0 || val >= n)
        return NULL;
    return table[val];
}

/*
 * host_driver_caps.c: one VFIO driver's migration capabilities, as the
 * host profile keeps them (host_profile.c) and a profile file changes
 * them (host_profile_file.c).
 */
#include "host_driver_caps.h"

dmgDriverCaps *
dmg_driver_caps_new(const char *driver, bool migration,
                    bool dirty_tracking, bool p2p)
{
    dmgDriverCaps *caps = g_new0(dmgDriverCaps, 1);

    caps->driver = g_strdup(driver);
    caps->migration = migration;
    caps->dirty_tracking = dirty_tracking;
    caps->p2p = p2p;
    return caps;
}


void
dmg_driver_caps_free(dmgDriverCaps *caps)
{
    if (!caps)
        return;
    g_free(caps->driver);
    g_free(caps);
}


/* The hash table's key is caps->driver, so replacing an entry must go
 * through g_hash_table_replace to keep the key alive with its value. */
void
dmg_driver_caps_set(GHashTable *table, dmgDriverCaps *caps)
{
    g_hash_table_replace(table, caps->driver, caps);
}

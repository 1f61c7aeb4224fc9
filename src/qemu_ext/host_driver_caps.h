/*
 * host_driver_caps.h: what a VFIO driver can do for live migration.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct {
    char *driver;
    bool migration;
    bool dirty_tracking;         /* device dirty tracking */
    bool p2p;
} dmgDriverCaps;

dmgDriverCaps *dmg_driver_caps_new(const char *driver, bool migration,
                                   bool dirty_tracking, bool p2p);
void dmg_driver_caps_free(dmgDriverCaps *caps);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgDriverCaps, dmg_driver_caps_free);

/* Insert or replace in a table keyed by driver name; the key is
 * caps->driver, so the entry's key lives as long as its value. */
void dmg_driver_caps_set(GHashTable *table, dmgDriverCaps *caps);

/*
 * dmg_enum.h: enum <-> string tables, in the style of libvirt's
 * VIR_ENUM_DECL / VIR_ENUM_IMPL (src/util/virenum.h).
 */
#pragma once

#include <glib.h>

int dmg_enum_from_string(const char *const *table, int n, const char *str);
const char *dmg_enum_to_string(const char *const *table, int n, int val);

#define DMG_ENUM_DECL(name) \
    const char *name##TypeToString(int type); \
    int name##TypeFromString(const char *str)

/* The static assertion keeps every table as long as its enum, as libvirt's
 * VIR_ENUM_IMPL does, so a new enum value cannot be left without a name. */
#define DMG_ENUM_IMPL(name, lastVal, ...) \
    static const char *const name##TypeList[] = { __VA_ARGS__ }; \
    G_STATIC_ASSERT(G_N_ELEMENTS(name##TypeList) == (lastVal)); \
    const char *name##TypeToString(int type) \
    { return dmg_enum_to_string(name##TypeList, (lastVal), type); } \
    int name##TypeFromString(const char *str) \
    { return dmg_enum_from_string(name##TypeList, (lastVal), str); }

/* libvirt's virTristateBool / virTristateSwitch share this shape
 * (src/util/virenum.h). */
typedef enum {
    DMG_TRISTATE_ABSENT = 0,
    DMG_TRISTATE_ON,
    DMG_TRISTATE_OFF,
    DMG_TRISTATE_LAST
} dmgTristate;

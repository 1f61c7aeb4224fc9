/*
 * migration/le_bytes.h: little-endian fields of the byte streams the VMM writes
 * and reads (the migration stream, the prepare exchange, device state),
 * at any alignment.
 */
#pragma once

#include <glib.h>
#include <string.h>

static inline void
le_put32(guint8 *p, guint32 v)
{
    v = GUINT32_TO_LE(v);
    memcpy(p, &v, 4);
}

static inline void
le_put64(guint8 *p, guint64 v)
{
    v = GUINT64_TO_LE(v);
    memcpy(p, &v, 8);
}

static inline guint32
le_get32(const guint8 *p)
{
    guint32 v;

    memcpy(&v, p, 4);
    return GUINT32_FROM_LE(v);
}

static inline guint64
le_get64(const guint8 *p)
{
    guint64 v;

    memcpy(&v, p, 8);
    return GUINT64_FROM_LE(v);
}

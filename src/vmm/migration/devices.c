/*
 * migration/devices.c: device sections of a migration (migration/devices.h).
 */
#include "migration/devices.h"

#include <gio/gio.h>
#include <string.h>

#include "dmg_i18n.h"
#include "machine_state.h"

#define MIG_DEVICE_HDR 8u
#define MIG_DEVICE_ID_MAX 256u

static savevm_entry *
entry_at(vmm_machine *m, guint i)
{
    return g_ptr_array_index(m->savevm, i);
}

/* Cleanup takes the entries that were set up: the first @n. */
static void
mig_devices__save_cleanup_n(vmm_machine *m, guint n, bool failed)
{
    for (guint i = MIN(n, m->savevm->len); i-- > 0;)
        if (entry_at(m, i)->ops->save_cleanup)
            entry_at(m, i)->ops->save_cleanup(entry_at(m, i)->opaque, failed);
}

gboolean
mig_devices__save_setup(vmm_machine *m, GError **error)
{
    for (guint i = 0; i < m->savevm->len; i++) {
        savevm_entry *e = entry_at(m, i);

        if (e->ops->save_setup && !e->ops->save_setup(e->opaque, error)) {
            g_prefix_error(error, _("device %s: "), e->id);
            mig_devices__save_cleanup_n(m, i, true);
            return FALSE;
        }
    }
    return TRUE;
}

static GByteArray *
payload__new(const savevm_entry *e, bool complete)
{
    GByteArray *b = g_byte_array_new();
    guint32 hdr[2] = { GUINT32_TO_LE(strlen(e->id)),
                       GUINT32_TO_LE(complete ? MIG_DEVICE_COMPLETE : 0) };

    g_byte_array_append(b, (guint8 *)hdr, sizeof(hdr));
    g_byte_array_append(b, (const guint8 *)e->id, strlen(e->id));
    return b;
}

gboolean
mig_devices__save(vmm_machine *m, bool complete, GPtrArray *out, GError **error)
{
    for (guint i = 0; i < m->savevm->len; i++) {
        savevm_entry *e = entry_at(m, i);
        gboolean (*save)(void *, GByteArray *, GError **) =
            complete ? e->ops->save_complete : e->ops->save_iterate;
        g_autoptr(GByteArray) b = NULL;
        guint hdr_len;

        if (!save)
            continue;
        b = payload__new(e, complete);
        hdr_len = b->len;
        if (!save(e->opaque, b, error)) {
            g_prefix_error(error, _("saving the state of device %s failed: "), e->id);
            return FALSE;
        }
        if (b->len > MIG_DEVICE_MAX_LEN) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                        _("device %s has %u bytes of state, more than a migration record carries"),
                        e->id, b->len);
            return FALSE;
        }
        /* An empty precopy chunk is not sent; stop-and-copy always is, so
         * the destination knows the device finished. */
        if (b->len > hdr_len || complete)
            g_ptr_array_add(out, g_steal_pointer(&b));
    }
    return TRUE;
}

gboolean
mig_devices__sync_dirty(vmm_machine *m, savevm_dirty_fn mark, void *opaque,
                        GError **error)
{
    for (guint i = 0; i < m->savevm->len; i++) {
        savevm_entry *e = entry_at(m, i);

        if (e->ops->sync_dirty && !e->ops->sync_dirty(e->opaque, mark, opaque, error)) {
            g_prefix_error(error, _("reading the pages device %s wrote failed: "), e->id);
            return FALSE;
        }
    }
    return TRUE;
}

void
mig_devices__save_cleanup(vmm_machine *m, bool failed)
{
    mig_devices__save_cleanup_n(m, m->savevm->len, failed);
}

/* ---- destination ---------------------------------------------------- */

gboolean
mig_devices__load_setup(vmm_machine *m, GError **error)
{
    for (guint i = 0; i < m->savevm->len; i++) {
        savevm_entry *e = entry_at(m, i);

        if (e->ops->load_setup && !e->ops->load_setup(e->opaque, error)) {
            g_prefix_error(error, _("device %s: "), e->id);
            for (guint j = i; j-- > 0;)
                if (entry_at(m, j)->ops->load_cleanup)
                    entry_at(m, j)->ops->load_cleanup(entry_at(m, j)->opaque, true);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
mig_devices__load(vmm_machine *m, const guint8 *payload, gsize len, GError **error)
{
    guint32 id_len, flags;
    g_autofree char *id = NULL;
    savevm_entry *e;

    if (len < MIG_DEVICE_HDR)
        goto err_format;
    memcpy(&id_len, payload, 4);
    memcpy(&flags, payload + 4, 4);
    id_len = GUINT32_FROM_LE(id_len);
    flags = GUINT32_FROM_LE(flags);
    if (!id_len || id_len > MIG_DEVICE_ID_MAX || id_len > len - MIG_DEVICE_HDR ||
        (flags & ~MIG_DEVICE_COMPLETE))
        goto err_format;
    id = g_utf8_make_valid((const char *)payload + MIG_DEVICE_HDR, id_len);
    /* qemu_loadvm_section_start_full() */
    if (!(e = savevm__find(m, id))) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    _("the migration stream carries state for device '%s', which this destination does not have; define the same devices on both sides"),
                    id);
        return FALSE;
    }
    if (!e->ops->load_state) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    _("device '%s' takes no migrated state"), id);
        return FALSE;
    }
    payload += MIG_DEVICE_HDR + id_len;
    len -= MIG_DEVICE_HDR + id_len;
    if (!e->ops->load_state(e->opaque, payload, len, error)) {
        g_prefix_error(error, _("loading the state of device %s failed: "), id);
        return FALSE;
    }
    return TRUE;

err_format:
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("malformed device state record of %" G_GSIZE_FORMAT " bytes"), len);
    return FALSE;
}

gboolean
mig_devices__load_complete(vmm_machine *m, GError **error)
{
    for (guint i = 0; i < m->savevm->len; i++) {
        savevm_entry *e = entry_at(m, i);

        if (e->ops->load_complete && !e->ops->load_complete(e->opaque, error)) {
            g_prefix_error(error, _("device %s could not take its migrated state: "), e->id);
            return FALSE;
        }
    }
    return TRUE;
}

void
mig_devices__load_cleanup(vmm_machine *m, bool failed)
{
    for (guint i = m->savevm->len; i-- > 0;)
        if (entry_at(m, i)->ops->load_cleanup)
            entry_at(m, i)->ops->load_cleanup(entry_at(m, i)->opaque, failed);
}

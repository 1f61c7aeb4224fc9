/*
 * libvirt_migration.c: the migration refusals libvirt raises itself, and
 * which layer refuses first.
 *
 * qemuMigrationSrcIsAllowed() (src/qemu/qemu_migration.c): from libvirt
 * 8.6, with a QEMU that reports query-migrate's blocked-reasons (6.0),
 * libvirt asks QEMU and refuses with "cannot migrate domain: REASONS"
 * (VIR_ERR_OPERATION_INVALID), and runs no hostdev check of its own.
 * Otherwise qemuMigrationSrcIsAllowedHostdev() refuses every hostdev but
 * USB and a transient teaming VF, with the first one it meets
 * (VIR_ERR_OPERATION_UNSUPPORTED); a QEMU blocker then shows only when
 * QEMU's own `migrate` fails (migration_is_blocked(), the newest blocker,
 * as libvirt's qemuMonitorJSONCheckError() words it).
 */
#include "domain_realize.h"

#include "dmg_i18n.h"

static void
dmg_libvirt_block(vmm_machine *m, const dmgHostdevDef *h, const char *code,
                  const char *advice)
{
    const char *type = dmgHostdevSubsysTypeToString(h->type);
    g_autofree char *msg = g_strdup_printf(_("%s: cannot migrate a domain with <hostdev mode='subsystem' type='%s'>; %s"),
                                           h->alias, type, advice);
    /* libvirt's own words; an <interface type='hostdev'> is named as the
     * interface (virDomainNetGetActualType()). */
    g_autofree char *reason = h->is_interface
        ? g_strdup("cannot migrate a domain with <interface type='hostdev'>")
        : g_strdup_printf("cannot migrate a domain with <hostdev mode='subsystem' type='%s'>", type);

    migration_blockers__add(&m->migration, MIGRATION_LAYER_LIBVIRT, code,
                            h->alias, msg, reason);
}

void
dmg_libvirt_migration_check(const dmgDomainDef *def, const dmgHostProfile *host,
                            const dmgQemuProfile *qemu, vmm_machine *m)
{
    if (dmg_libvirt_asks_qemu_blockers(&host->libvirt, qemu))
        return;
    for (guint i = 0; i < def->hostdevs->len; i++) {
        const dmgHostdevDef *h = g_ptr_array_index(def->hostdevs, i);

        switch ((dmgHostdevSubsysType)h->type) {
        case DMG_HOSTDEV_SUBSYS_USB:
            /* USB devices can be "migrated": libvirt re-attaches them. */
            break;
        case DMG_HOSTDEV_SUBSYS_SCSI:
        case DMG_HOSTDEV_SUBSYS_SCSI_HOST:
            dmg_libvirt_block(m, h, "libvirt-hostdev-scsi",
                              _("detach it before migrating (virsh detach-device --live)"));
            break;
        case DMG_HOSTDEV_SUBSYS_MDEV:
            dmg_libvirt_block(m, h, "libvirt-hostdev-mdev",
                              _("detach the mediated device before migrating and re-attach one on the destination"));
            break;
        case DMG_HOSTDEV_SUBSYS_PCI:
            /* A transient teaming device is unplugged by QEMU during the
             * migration, with the persistent virtio-net taking over. */
            if (h->teaming == DMG_TEAMING_TRANSIENT)
                break;
            dmg_libvirt_block(m, h, "libvirt-hostdev-pci",
                              _("detach it before migrating, or for a network VF pair it with a virtio interface using <teaming type='transient' persistent='ALIAS'/>"));
            break;
        case DMG_HOSTDEV_SUBSYS_LAST:
            break;
        }
    }
}

char *
dmg_libvirt_migration_refusal(const dmgHostProfile *host, const dmgQemuProfile *qemu,
                              vmm_machine *m, migration_layer *layer)
{
    GPtrArray *bl = m->migration.blockers;
    g_autoptr(GString) reasons = g_string_new(NULL);
    const migration_blocker *newest = NULL;

    if (migration_blockers__empty(&m->migration))
        return NULL;
    if (dmg_libvirt_asks_qemu_blockers(&host->libvirt, qemu)) {
        /* fill_source_migration_info(): the blockers in the order they
         * were added; g_strjoinv("; ", blockers) in libvirt. */
        for (guint i = 0; i < bl->len; i++) {
            const migration_blocker *b = g_ptr_array_index(bl, i);

            g_string_append_printf(reasons, "%s%s", reasons->len ? "; " : "", b->reason);
        }
        *layer = MIGRATION_LAYER_QEMU;
        /* virErrorMsg(VIR_ERR_OPERATION_INVALID) */
        return g_strdup_printf("Requested operation is not valid: cannot migrate domain: %s",
                               reasons->str);
    }
    for (guint i = 0; i < bl->len; i++) {
        const migration_blocker *b = g_ptr_array_index(bl, i);

        if (b->layer == MIGRATION_LAYER_LIBVIRT) {
            *layer = MIGRATION_LAYER_LIBVIRT;
            /* virErrorMsg(VIR_ERR_OPERATION_UNSUPPORTED) */
            return g_strdup_printf("Operation not supported: %s", b->reason);
        }
        newest = b;
    }
    /* migrate_add_blocker() prepends, migration_is_blocked() reports the
     * head: the newest blocker. */
    *layer = MIGRATION_LAYER_QEMU;
    return g_strdup_printf("internal error: unable to execute QEMU command 'migrate': %s",
                           newest->reason);
}

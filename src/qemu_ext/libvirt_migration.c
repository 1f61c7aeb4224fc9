/*
 * libvirt_migration.c: the migration refusals libvirt raises itself,
 * before QEMU is asked (qemuMigrationSrcIsAllowedHostdev, libvirt 9.0).
 */
#include "domain_realize.h"

#include "dmg_i18n.h"

static void
dmg_libvirt_block(vmm_machine *m, const dmgHostdevDef *h, const char *code,
                  const char *advice)
{
    g_autofree char *msg = g_strdup_printf(_("%s: cannot migrate a domain with <hostdev mode='subsystem' type='%s'>; %s"),
                                           h->alias,
                                           dmgHostdevSubsysTypeToString(h->type),
                                           advice);

    migration_blockers__add(&m->migration, MIGRATION_LAYER_LIBVIRT, code,
                            h->alias, msg);
}

void
dmg_libvirt_migration_check(const dmgDomainDef *def, vmm_machine *m)
{
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

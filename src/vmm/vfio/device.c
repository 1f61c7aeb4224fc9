/*
 * device.c: VFIO devices: realize, the discard opt-in and the migration
 * blockers (after QEMU hw/vfio/pci.c vfio_realize() and
 * hw/vfio/migration.c vfio_migration_realize()).
 */
#include "vfio/device.h"
#include "dmg_array.h"

#include <errno.h>
#include <string.h>

#include "dmg_i18n.h"
#include "vfio/container.h"
#include "vfio/listener.h"
#include "vfio/migration_v2.h"
#include "viommu.h"

/* ------------------------------------------------------------------ */
/* Devices: discard opt-in                                             */

/* vfio_get_device(): the opt-in must agree across a group; the first
 * device decides, and an opted-in group drops its disable (seed 002,
 * patch 4/4). */
static bool
vfio_device__attach_group(vmm_machine *m, vfio_device *dev, vfio_group *group,
                          GError **error)
{
    if (dev->ram_block_discard_allowed != group->ram_block_discard_allowed) {
        if (group->devices->len > 0) {
            vfio_device *first = g_ptr_array_index(group->devices, 0);

            g_set_error(error, VMM_ERROR, VMM_ERR_BALLOON_OPTIN_INCONSISTENT_GROUP,
                        _("%s: inconsistent setting of support for discarding RAM (e.g., balloon) within IOMMU group %d: %s has x-balloon-allowed=%s; set the same value on every device of the group"),
                        dev->alias, group->id, first->alias,
                        first->ram_block_discard_allowed ? "on" : "off");
            return false;
        }
        group->ram_block_discard_allowed = true;
        vfio_group__discard_disable(m, group, false, NULL);
    }
    dev->group = group;
    g_ptr_array_add(group->devices, dev);
    g_ptr_array_add(group->inhibitor.devices, g_strdup(dev->alias));
    return true;
}

static void
vfio_device__detach_group(vfio_device *dev)
{
    vfio_group *group = dev->group;

    for (guint i = 0; i < group->inhibitor.devices->len; i++) {
        if (g_strcmp0(g_ptr_array_index(group->inhibitor.devices, i), dev->alias) == 0) {
            g_ptr_array_remove_index(group->inhibitor.devices, i);
            break;
        }
    }
    g_ptr_array_remove(group->devices, dev);
    dev->group = NULL;
}

/* ------------------------------------------------------------------ */
/* Devices: migration (vfio_migration_realize, hw/vfio/migration.c)    */

/* The Error vfio_migration_realize() (hw/vfio/migration.c) hands to
 * migrate_add_blocker(), word for word: query-migrate's blocked-reasons
 * lists it, and libvirt >= 8.6 shows it to the user.  QEMU 7.2's
 * vfio_migration_probe() and 8.0's vfio_migration_realize() say "VFIO
 * device doesn't support migration" for every cause; 8.1 reworked it to
 * name the cause and the device (vbasedev->name: the host PCI address or
 * the mdev UUID).  Not translated: QEMU's errors are English. */
static char *
vfio_device__qemu_reason(vmm_machine *m, vfio_device *dev, const char *code)
{
    bool names = m->cfg.compat.vfio_blocker_names_device;

    if (!names)
        return g_strdup(strcmp(code, "vfio-viommu") == 0
                        ? "Migration is currently not supported with vIOMMU enabled"
                        : "VFIO device doesn't support migration");
    if (strcmp(code, "vfio-migration-disabled") == 0)
        return g_strdup_printf("%s: Migration is disabled for VFIO device", dev->host);
    if (strcmp(code, "vfio-no-dirty-tracking") == 0)
        return g_strdup_printf("%s: VFIO device doesn't support device dirty tracking", dev->host);
    if (strcmp(code, "vfio-viommu") == 0)
        return g_strdup_printf("%s: Migration is currently not supported with vIOMMU enabled", dev->host);
    /* vfio_migration_init() fails with ENOTTY: the driver has no
     * VFIO_DEVICE_FEATURE_MIGRATION. */
    return g_strdup_printf("%s: VFIO migration is not supported in kernel", dev->host);
}

static void
vfio_device__block(vmm_machine *m, vfio_device *dev, const char *code,
                   const char *message)
{
    g_autofree char *reason = vfio_device__qemu_reason(m, dev, code);

    dev->blocker = migration_blockers__add(&m->migration, MIGRATION_LAYER_QEMU,
                                           code, dev->alias, message, reason);
}

static unsigned
vfio_devices__migratable(vmm_machine *m, bool *all_p2p)
{
    unsigned n = 0;

    *all_p2p = true;
    /* Most domains have no migratable device: no scan per device. */
    if (!m->vfio_migratable)
        return 0;
    for (guint i = 0; i < m->devices->len; i++) {
        vfio_device *d = g_ptr_array_index(m->devices, i);

        if (d->migration) {
            n++;
            *all_p2p &= d->p2p;
        }
        /* Two, one of them without P2P: blocked whatever the rest is
         * (called per device realized, so no full scan when not needed). */
        if (n > 1 && !*all_p2p)
            break;
    }
    return n;
}

/* vfio_block_multiple_devices_migration(): one machine-wide blocker. */
static void
vfio_devices__check_multiple(vmm_machine *m)
{
    migration_blocker *b = migration_blockers__find(&m->migration,
                                                    "vfio-multiple-devices", NULL);
    bool all_p2p;
    unsigned n = vfio_devices__migratable(m, &all_p2p);
    bool blocked = n > 1 && !(m->cfg.compat.vfio_multi_device_p2p && all_p2p);

    if (blocked && !b) {
        /* hw/vfio/common.c's multiple_devices_migration_blocker, 8.0 and
         * 8.1 words. */
        migration_blockers__add(&m->migration, MIGRATION_LAYER_QEMU,
                                "vfio-multiple-devices", NULL,
                                m->cfg.compat.vfio_multi_device_p2p
                                ? _("several VFIO devices can migrate together only if all of them support P2P migration, and one does not; use drivers with P2P support (VFIO_MIGRATION_P2P) or pass through one device")
                                : _("this QEMU supports migration with only one VFIO device; QEMU 8.1 or later migrates several devices when all support P2P"),
                                m->cfg.compat.vfio_multi_device_p2p
                                ? "Multiple VFIO devices migration is supported only if all of them support P2P migration"
                                : "Migration is currently not supported with multiple VFIO devices");
    } else if (!blocked && b) {
        migration_blockers__del(&m->migration, b);
    }
}

static void
vfio_device__block_viommu(vmm_machine *m, vfio_device *dev)
{
    g_autofree char *msg = NULL;
    const char *dma_off = viommu__dma_translation_off(m->iommu)
        ? _(" intel-iommu dma-translation=off does not lift this blocker in upstream QEMU: the series that relaxed it was never merged.")
        : "";

    msg = g_strdup_printf(_("%s: Migration is currently not supported with vIOMMU enabled.%s Remove the <iommu>, or on a QEMU with the downstream x-migration-iommu-pt feature set it on every VFIO device if the guest uses the vIOMMU only for interrupt remapping (seed 004)"),
                          dev->alias, dma_off);
    vfio_device__block(m, dev, "vfio-viommu", msg);
}

static void
vfio_device__migration_realize(vmm_machine *m, vfio_device *dev,
                               const vfio_device_config *cfg)
{
    const vmm_compat *compat = &m->cfg.compat;
    g_autofree char *msg = NULL;

    if (dev->enable_migration == VFIO_MIGRATION_OFF) {
        msg = g_strdup_printf(_("%s: Migration is disabled for VFIO device (enable-migration=off); remove the override to let QEMU decide"),
                              dev->alias);
        vfio_device__block(m, dev, "vfio-migration-disabled", msg);
        return;
    }
    if (!compat->vfio_migration || !cfg->caps_migration) {
        msg = !compat->vfio_migration
            ? g_strdup_printf(_("%s: VFIO device migration needs QEMU 8.0 or later; this QEMU blocks migration of every VFIO device. Upgrade QEMU or detach the device before migrating"),
                              dev->alias)
            : dev->kind == VFIO_KIND_MDEV_PCI
            ? g_strdup_printf(_("%s: this mediated device's vendor driver does not support VFIO migration, so QEMU adds a migration blocker; detach the device before migrating"),
                              dev->alias)
            : g_strdup_printf(_("%s: driver %s does not support VFIO migration, so QEMU adds a migration blocker; bind a variant driver with migration support (e.g. mlx5_vfio_pci) or detach the device before migrating"),
                              dev->alias, cfg->driver ? cfg->driver : "?");
        vfio_device__block(m, dev, "vfio-migration-unsupported", msg);
        return;
    }
    dev->migration = true;
    m->vfio_migratable++;
    dev->device_dirty_tracking = cfg->caps_dirty_tracking && !cfg->iommu_dirty_tracking;
    if (!cfg->caps_dirty_tracking && !cfg->iommu_dirty_tracking) {
        if (compat->vfio_enable_migration_onoff && dev->enable_migration == VFIO_MIGRATION_ON) {
            msg = g_strdup_printf(_("%s: VFIO device doesn't support device and IOMMU dirty tracking; enable-migration=on forces migration, and QEMU will treat all guest memory as dirty during it"),
                                  dev->alias);
            vmm_findings__warn(&m->findings, "vfio-no-dirty-tracking-forced", dev->alias, msg);
        } else {
            msg = compat->vfio_enable_migration_onoff
                ? g_strdup_printf(_("%s: VFIO device doesn't support device and IOMMU dirty tracking; use <driver iommufd='yes'/> on a host whose IOMMU tracks dirty pages, or set enable-migration=on to migrate with every page treated as dirty"),
                                  dev->alias)
                : g_strdup_printf(_("%s: VFIO device doesn't support device and IOMMU dirty tracking; use <driver iommufd='yes'/> on a host whose IOMMU tracks dirty pages (QEMU 8.1 adds enable-migration=on to force migration)"),
                                  dev->alias);
            vfio_device__block(m, dev, "vfio-no-dirty-tracking", msg);
            return;
        }
    }
    vfio_devices__check_multiple(m);
    if (!vfio_device__viommu_present(dev))
        return;
    if (compat->viommu_blocks_device_dirty_only && !dev->device_dirty_tracking)
        return;
    /* seed 004: with every device in passthrough the blocker becomes a
     * run-time cancel; the condition is recorded in vmm_machine__done(). */
    if (compat->x_migration_iommu_pt && vfio_devices__all_iommu_passthrough(m))
        return;
    vfio_device__block_viommu(m, dev);
}

/* vfio-ccw and vfio-ap register an unmigratable vmstate (hw/vfio/ccw.c
 * vfio_ccw_vmstate, hw/vfio/ap.c vfio_ap_vmstate); QEMU lists it as
 * "non-migratable device: IDSTR" (qemu_savevm_non_migratable_list(),
 * migration/savevm.c).  The idstr starts with the device's qdev path,
 * which depends on the CSS bus and is not modelled: the reason carries
 * the vmstate's name only. */
static void
vfio_device__block_unmigratable(vmm_machine *m, vfio_device *dev)
{
    g_autofree char *msg = g_strdup_printf(_("%s: vfio-ccw and vfio-ap devices are not migratable (their vmstate is unmigratable); detach the device before migrating"),
                                           dev->alias);
    g_autofree char *reason = g_strdup_printf("non-migratable device: %s",
                                              dev->kind == VFIO_KIND_CCW ? "vfio-ccw" : "vfio-ap");

    dev->blocker = migration_blockers__add(&m->migration, MIGRATION_LAYER_QEMU,
                                           "vfio-migration-unsupported", dev->alias,
                                           msg, reason);
}

/* ------------------------------------------------------------------ */
/* Devices: realize                                                    */

static void
vfio_device__free(vfio_device *dev)
{
    g_free(dev->alias);
    g_free(dev->host);
    g_free(dev->driver);
    g_free(dev);
}

static vfio_device *
vfio_device__new(const vfio_device_config *cfg)
{
    vfio_device *dev = g_new0(vfio_device, 1);

    dev->alias = g_strdup(cfg->alias);
    dev->host = g_strdup(cfg->host);
    dev->driver = g_strdup(cfg->driver);
    dev->kind = cfg->kind;
    dev->enable_migration = cfg->enable_migration;
    dev->iommu_passthrough = cfg->iommu_passthrough;
    dev->p2p = cfg->caps_p2p;
    dev->guest = cfg->guest;
    dev->display = cfg->display;
    dev->ramfb = cfg->ramfb;
    dev->balloon_allowed_prop = cfg->balloon_allowed;
    /* vfio-ccw and vfio-ap opt in always: their vendor drivers pin only
     * what the guest driver uses (hw/vfio/ccw.c, hw/vfio/ap.c). */
    dev->ram_block_discard_allowed = cfg->kind == VFIO_KIND_CCW ||
                                     cfg->kind == VFIO_KIND_AP ||
                                     cfg->balloon_allowed;
    return dev;
}

static vfio_address_space *
vfio_device__address_space(vmm_machine *m, const vfio_device_config *cfg)
{
    g_autofree char *name = NULL;

    /* pci_device_iommu_address_space(): a vIOMMU gives each PCI device
     * its own DMA address space; ccw and ap devices are not PCI. */
    if (!m->iommu || cfg->kind == VFIO_KIND_CCW || cfg->kind == VFIO_KIND_AP)
        return g_ptr_array_index(m->address_spaces, 0);
    name = g_strdup_printf("%s-dma-%s", viommu__name(m->iommu), cfg->alias);
    return vfio_address_space__get(m, name, true);
}

/* A backend error says what failed; the user also needs to know which
 * device it was for (QEMU prefixes "vfio <host>: "). */
static void
vfio_device__error_context(const vfio_device_config *cfg, GError **error)
{
    if (error && *error && g_error_matches(*error, VMM_ERROR, VMM_ERR_VFIO_BACKEND))
        g_prefix_error(error, "%s (%s, IOMMU group %d): ", cfg->alias, cfg->host, cfg->group);
}

vfio_device *
vfio_device__realize(vmm_machine *m, const vfio_device_config *cfg,
                     GError **error)
{
    vfio_device *dev;
    vfio_group *group;

    /* vfio_realize(), hw/vfio/pci.c: mdev vendor drivers might stay in
     * sync with the guest's working set, a physical function never does. */
    if (cfg->balloon_allowed && cfg->kind == VFIO_KIND_PCI) {
        g_set_error(error, VMM_ERROR, VMM_ERR_BALLOON_OPTIN_NOT_MDEV,
                    _("%s (%s): x-balloon-allowed only potentially compatible with mdev devices; QEMU refuses to start. Remove the opt-in, or use virtio-mem to resize guest memory with VFIO"),
                    cfg->alias, cfg->host);
        return NULL;
    }
    if (!(group = vfio_group__get(m, cfg->group, vfio_device__address_space(m, cfg),
                                  cfg->alias, error))) {
        vfio_device__error_context(cfg, error);
        return NULL;
    }
    dev = vfio_device__new(cfg);
    if (!vfio_device__attach_group(m, dev, group, error))
        goto err_put;
    /* A running machine maps its memory now; mediated devices pin only
     * what their vendor driver uses (an external IOMMU domain), and behind
     * a vIOMMU the guest's own mappings come through the vIOMMU. */
    if (!vfio_container__listen(m, group->container,
                                cfg->kind != VFIO_KIND_PCI || group->container->space->viommu,
                                error)) {
        vfio_device__error_context(cfg, error);
        vfio_device__detach_group(dev);
        goto err_put;
    }
    g_ptr_array_add(m->devices, dev);
    /* Teaming: QEMU unplugs a failover device before migrating instead
     * of migrating it (vfio_realize skips vfio_migration_realize when
     * failover_pair_id is set). */
    if (!cfg->failover_pair &&
        (cfg->kind == VFIO_KIND_PCI || cfg->kind == VFIO_KIND_MDEV_PCI))
        vfio_device__migration_realize(m, dev, cfg);
    else if (cfg->kind == VFIO_KIND_CCW || cfg->kind == VFIO_KIND_AP)
        vfio_device__block_unmigratable(m, dev);
    /* vfio_migration_init(): on the soft backend the device is a soft
     * function with real migration state (vfio/migration_v2_savevm.c). */
    if (dev->migration)
        vfio_migration__realize(m, dev, cfg);
    return dev;

 err_put:
    vfio_device__free(dev);
    vfio_group__put(m, group);
    return NULL;
}

void
vfio_device__unrealize(vmm_machine *m, vfio_device *dev)
{
    vfio_group *group = dev->group;

    /* vfio_migration_exit(): quiesce the soft function before the
     * container (and its IOMMU) can go. */
    vfio_migration__unrealize(m, dev);
    if (dev->blocker)
        migration_blockers__del(&m->migration, dev->blocker);
    dmg_ptr_array_remove_from_end(m->devices, dev);
    if (dev->migration)
        m->vfio_migratable--;
    vfio_device__detach_group(dev);
    vfio_devices__check_multiple(m);
    vfio_device__free(dev);
    vfio_group__put(m, group);
}


/*
 * test-rules.c: one test per balloon, migration, memlock and configuration
 * rule.  Each realizes a test domain on the VMM model against the sysfs
 * fixture host and asserts what is read off it.  The test name says the
 * seed or QEMU/libvirt function the rule comes from.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#include "qemu_postparse.h"
#include "check.h"
#include "domain_conf.h"
#include "domain_realize.h"
#include "verdict.h"
#include "machine.h"
#include "vfio/device.h"

#define GIB (1024LL * 1024 * 1024)

typedef struct {
    const char *qemu_version;
    const char *feature;
    const char *sysfs;           /* fixture tree, default host1 */
    const char *libvirt_version; /* default 9.0, Debian 12's */
    int kvm_sync_mmu;            /* 0 or 1 */
    bool iommu_dirty;
    bool iommu_dirty_sysfs;      /* keep what the tree's class/iommu says */
} check_env;

static dmgHostProfile *
fixture_host(const check_env *env)
{
    g_autofree char *root = g_test_build_filename(G_TEST_DIST, "sysfs",
                                                  env->sysfs ? env->sysfs : "host1", NULL);
    dmgHostProfile *host = dmg_host_profile_new(root);

    dmg_host_profile_read_sysfs(host);
    /* Fixed, not probed: the rules must not depend on this machine. */
    host->kvm_sync_mmu = env->kvm_sync_mmu;
    host->kvm_nr_memslots = 509;
    if (!env->iommu_dirty_sysfs)
        host->iommu_dirty_tracking = env->iommu_dirty;
    g_assert_true(dmg_libvirt_profile_set_version(&host->libvirt,
                                                  env->libvirt_version ? env->libvirt_version : "9.0",
                                                  NULL));
    return host;
}

static JsonNode *
check_file_env(const char *dir, const char *name, const check_env *env)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, dir, name, NULL);
    g_autoptr(dmgHostProfile) host = fixture_host(env);
    g_autoptr(dmgQemuProfile) qemu = dmg_qemu_profile_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *xml = NULL;
    gsize len;
    JsonNode *v;

    g_assert_true(dmg_qemu_profile_set_version(qemu, env->qemu_version ? env->qemu_version : "9.1", NULL));
    if (env->feature)
        g_assert_true(dmg_qemu_profile_add_feature(qemu, env->feature, NULL));
    g_assert_true(g_file_get_contents(path, &xml, &len, NULL));
    v = dmg_check_xml(xml, len, name, host, qemu, &err);
    g_assert_no_error(err);
    return v;
}

static JsonNode *
check_file(const char *name, const char *qemu_version)
{
    check_env env = { .qemu_version = qemu_version, .kvm_sync_mmu = 1 };

    return check_file_env("domains", name, &env);
}

static vmm_machine *
realize_file(const char *name)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "domains", name, NULL);
    check_env env = { .kvm_sync_mmu = 1 };
    g_autoptr(dmgHostProfile) host = fixture_host(&env);
    g_autoptr(dmgQemuProfile) qemu = dmg_qemu_profile_new();
    g_autoptr(dmgDomainDef) def = dmg_domain_def_parse_file(path, NULL);

    g_assert_nonnull(def);
    dmg_qemu_domain_def_prepare(def);
    return dmg_domain_realize(def, host, qemu, NULL);
}

static JsonObject *
member(JsonNode *v, const char *name)
{
    return json_object_get_object_member(json_node_get_object(v), name);
}

/* Count entries of @array (inside object @obj or the domain) with @code,
 * and optionally @device. */
static guint
count_code(JsonObject *obj, const char *array, const char *code, const char *device)
{
    JsonArray *arr = json_object_get_array_member(obj, array);
    guint n = 0;

    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *o = json_array_get_object_element(arr, i);

        if (g_strcmp0(json_object_get_string_member(o, "code"), code) != 0)
            continue;
        if (device && (json_object_get_null_member(o, "device") ||
                       g_strcmp0(json_object_get_string_member(o, "device"), device) != 0))
            continue;
        n++;
    }
    return n;
}

/* A string member of the migration verdict, NULL when null. */
static const char *
migration_str(JsonNode *v, const char *name)
{
    JsonObject *m = member(v, "migration");

    return json_object_get_null_member(m, name) ? NULL : json_object_get_string_member(m, name);
}

static guint
n_blockers(JsonNode *v, const char *code, const char *device)
{
    return count_code(member(v, "migration"), "blockers", code, device);
}

static guint
n_errors(JsonNode *v, const char *code)
{
    return count_code(json_node_get_object(v), "errors", code, NULL);
}

static guint
n_warnings(JsonNode *v, const char *code)
{
    return count_code(json_node_get_object(v), "warnings", code, NULL);
}

static bool
balloon_effective(JsonNode *v)
{
    return json_object_get_boolean_member(member(v, "balloon"), "effective");
}

static bool
migration_allowed(JsonNode *v)
{
    return json_object_get_boolean_member(member(v, "migration"), "allowed");
}

static JsonObject *
inhibitor(JsonNode *v, guint i)
{
    return json_array_get_object_element(json_object_get_array_member(member(v, "balloon"),
                                                                      "inhibitors"), i);
}

static guint
n_inhibitors(JsonNode *v)
{
    return json_array_get_length(json_object_get_array_member(member(v, "balloon"), "inhibitors"));
}

static gint64
memlock(JsonNode *v)
{
    return json_object_get_int_member(json_node_get_object(v), "memlock_bytes");
}

/* ------------------------------------------------------------------ */
/* Balloon                                                             */

/* seed 000: vfio_connect_container() inhibits once per group, so a GPU
 * and its audio function in group 1 are one inhibitor. */
static void
test_seed000_one_inhibitor_per_group(void)
{
    g_autoptr(JsonNode) v = check_file("pci-gpu-audio-shared-group.xml", NULL);
    JsonArray *devs;

    g_assert_false(balloon_effective(v));
    g_assert_cmpuint(n_inhibitors(v), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(inhibitor(v, 0), "code"), ==, "vfio-group");
    g_assert_cmpint(json_object_get_int_member(inhibitor(v, 0), "group"), ==, 1);
    devs = json_object_get_array_member(inhibitor(v, 0), "devices");
    g_assert_cmpuint(json_array_get_length(devs), ==, 2);
    /* The counter itself, not only the report: one disable for group 1. */
    {
        g_autoptr(vmm_machine) m = realize_file("pci-gpu-audio-shared-group.xml");

        g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, 1);
        g_assert_cmpuint(m->groups->len, ==, 1);
        g_assert_cmpuint(((vfio_group *)g_ptr_array_index(m->groups, 0))->devices->len, ==, 2);
    }
}

/* seed 000: "whether the container is used individually or shared": two
 * groups sharing one container are still two inhibitors. */
static void
test_seed000_shared_container_counts_groups(void)
{
    g_autoptr(vmm_machine) m = realize_file("multi-vf-p2p.xml");
    vfio_address_space *mem = g_ptr_array_index(m->address_spaces, 0);

    g_assert_cmpuint(mem->containers->len, ==, 1);
    g_assert_cmpuint(m->groups->len, ==, 2);
    g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, 2);
    g_assert_cmpuint(m->discard.inhibitors->len, ==, 2);
}

/* seed 002 patch 4/4: vfio-pci opts in with x-balloon-allowed on an mdev,
 * through <qemu:override> or through dmaguard's metadata. */
static void
test_seed002_mdev_optin(void)
{
    const char *files[] = { "mdev-optin-override.xml", "mdev-optin-metadata.xml",
                            "metadata-generated-alias.xml" };

    for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autoptr(JsonNode) v = check_file(files[i], NULL);

        g_test_message("%s", files[i]);
        g_assert_true(balloon_effective(v));
        g_assert_cmpuint(n_inhibitors(v), ==, 0);
        g_assert_cmpuint(n_errors(v, "balloon-optin-not-mdev"), ==, 0);
    }
}

/* The same mdev without the opt-in inhibits: the default is to inhibit. */
static void
test_seed002_mdev_without_optin_inhibits(void)
{
    g_autoptr(JsonNode) v = check_file("mdev-no-optin.xml", NULL);

    g_assert_false(balloon_effective(v));
    g_assert_cmpuint(n_inhibitors(v), ==, 1);
    g_assert_cmpint(json_object_get_int_member(inhibitor(v, 0), "group"), ==, 30);
}

/* seed 002 patch 4/4: vfio-ccw and vfio-ap always opt in. */
static void
test_seed002_ccw_ap_always_optin(void)
{
    g_autoptr(JsonNode) ccw = check_file("mdev-ccw.xml", NULL);
    g_autoptr(JsonNode) ap = check_file("mdev-ap.xml", NULL);

    g_assert_true(balloon_effective(ccw));
    g_assert_true(balloon_effective(ap));
}

/* hw/vfio/pci.c vfio_realize(): "x-balloon-allowed only potentially
 * compatible with mdev devices" — QEMU refuses to start. */
static void
test_vfio_realize_optin_not_mdev(void)
{
    g_autoptr(JsonNode) v = check_file("pci-optin-not-mdev.xml", NULL);

    g_assert_cmpuint(n_errors(v, "balloon-optin-not-mdev"), ==, 1);
    /* Analyzed as if the opt-in were removed: the group inhibits. */
    g_assert_false(balloon_effective(v));
}

/* hw/vfio/common.c vfio_get_device(): devices of one group must agree.
 * Two mdev functions in one group (a fixture built for it) disagree. */
static void
test_vfio_get_device_inconsistent_group(void)
{
    vmm_machine_config cfg = { .type = VMM_MACHINE_Q35, .kvm = true, .kvm_sync_mmu = true };
    g_autoptr(vmm_machine) m = vmm_machine__new(&cfg);
    vfio_device_config a = { .alias = "a", .host = "u1", .kind = VFIO_KIND_MDEV_PCI,
                             .group = 40, .balloon_allowed = true };
    vfio_device_config b = a;
    g_autoptr(GError) err = NULL;

    b.alias = "b";
    b.balloon_allowed = false;
    g_assert_nonnull(vfio_device__realize(m, &a, NULL));
    /* The opted-in group holds no disable. */
    g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, 0);
    g_assert_null(vfio_device__realize(m, &b, &err));
    g_assert_error(err, VMM_ERROR, VMM_ERR_BALLOON_OPTIN_INCONSISTENT_GROUP);
    g_assert_nonnull(strstr(err->message, "group 40"));
    /* The failed device left the group as it was. */
    g_assert_cmpuint(m->groups->len, ==, 1);
    g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, 0);
}

/* seed 002 patch 2/4, kvm_init(): KVM without a synchronous MMU inhibits;
 * TCG (type='qemu') has no KVM and does not. */
static void
test_seed002_kvm_no_sync_mmu(void)
{
    check_env env = { .kvm_sync_mmu = 0 };
    g_autoptr(JsonNode) v = check_file_env("domains", "no-hostdev.xml", &env);
    g_autoptr(JsonNode) ok = check_file("no-hostdev.xml", NULL);

    g_assert_false(balloon_effective(v));
    g_assert_cmpuint(n_inhibitors(v), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(inhibitor(v, 0), "code"), ==, "kvm-no-sync-mmu");
    g_assert_true(balloon_effective(ok));
}

/* madvise(MADV_DONTNEED) fails on mlock()ed memory: <locked/> makes the
 * balloon inert and the memlock limit unlimited (libvirt). */
static void
test_memory_locked(void)
{
    g_autoptr(JsonNode) v = check_file("locked-memory.xml", NULL);

    g_assert_false(balloon_effective(v));
    g_assert_cmpstr(json_object_get_string_member(inhibitor(v, 0), "code"), ==, "memory-locked");
    g_assert_true(json_object_get_null_member(json_node_get_object(v), "memlock_bytes"));
}

/* virtio-balloon balloon_inflate_page(): huge pages are freed only when
 * fully inflated: effective but partial. */
static void
test_hugepage_partial(void)
{
    g_autoptr(JsonNode) v = check_file("hugepages.xml", NULL);
    g_autoptr(JsonNode) plain = check_file("no-hostdev.xml", NULL);

    g_assert_true(balloon_effective(v));
    g_assert_true(json_object_get_boolean_member(member(v, "balloon"), "partial"));
    g_assert_cmpuint(n_warnings(v, "hugepage-partial-discard"), ==, 1);
    g_assert_false(json_object_get_boolean_member(member(plain, "balloon"), "partial"));
}

/* virtio-mem is coordinated discard (ram_block_coordinated_discard_require)
 * and coexists with VFIO's uncoordinated disable. */
static void
test_virtio_mem_coordinated(void)
{
    g_autoptr(JsonNode) v = check_file("virtio-mem.xml", NULL);

    g_assert_true(json_object_get_boolean_member(member(v, "balloon"), "coordinated_discard"));
    g_assert_cmpuint(n_errors(v, "discard-busy"), ==, 0);
}

/* vfio_ram_discard_register_listener(): "possibly running out of DMA
 * mappings" when size/block + max_memslots - 1 > dma_entry_limit.
 * 64 GiB / 2 MiB = 32768 blocks: over a limit of 1000, under 65535. */
static void
test_virtio_mem_dma_entry_limit(void)
{
    check_env small = { .sysfs = "smalllimit", .kvm_sync_mmu = 1 };
    g_autoptr(JsonNode) over = check_file_env("domains", "virtio-mem-dma-limit.xml", &small);
    g_autoptr(JsonNode) under = check_file("virtio-mem-dma-limit.xml", NULL);

    g_assert_cmpuint(n_warnings(over, "dma-entry-limit"), ==, 1);
    g_assert_cmpuint(n_warnings(under, "dma-entry-limit"), ==, 0);
}

/* The balloon verdict with no balloon device. */
static void
test_no_balloon(void)
{
    g_autoptr(JsonNode) v = check_file("no-balloon.xml", NULL);

    g_assert_false(balloon_effective(v));
    g_assert_true(json_object_get_null_member(member(v, "balloon"), "device"));
}

/* ------------------------------------------------------------------ */
/* Migration: libvirt layer (qemuMigrationSrcIsAllowedHostdev)         */

/* libvirt < 8.6 (or a QEMU without blocked-reasons) refuses every
 * hostdev but USB itself, with the first one it meets. */
static void
test_libvirt_hostdev_migration(void)
{
    check_env env = { .kvm_sync_mmu = 1, .libvirt_version = "8.5" };
    g_autoptr(JsonNode) pci = check_file_env("domains", "pci-gpu-audio-shared-group.xml", &env);
    g_autoptr(JsonNode) mdev = check_file_env("domains", "mdev-no-optin.xml", &env);
    g_autoptr(JsonNode) scsi = check_file_env("domains", "scsi-hostdev.xml", &env);
    g_autoptr(JsonNode) scsi_host = check_file_env("domains", "scsi-host-hostdev.xml", &env);
    g_autoptr(JsonNode) usb = check_file_env("domains", "usb-hostdev.xml", &env);
    g_autoptr(JsonNode) iface = check_file_env("domains", "interface-hostdev.xml", &env);

    g_assert_cmpuint(n_blockers(pci, "libvirt-hostdev-pci", NULL), ==, 2);
    g_assert_cmpuint(n_blockers(mdev, "libvirt-hostdev-mdev", NULL), ==, 1);
    g_assert_cmpuint(n_blockers(scsi, "libvirt-hostdev-scsi", NULL), ==, 1);
    g_assert_cmpuint(n_blockers(scsi_host, "libvirt-hostdev-scsi", NULL), ==, 1);
    g_assert_true(migration_allowed(usb));
    /* What virsh prints: VIR_ERR_OPERATION_UNSUPPORTED and the first
     * hostdev, in libvirt's words. */
    g_assert_cmpstr(migration_str(pci, "refused_by"), ==, "libvirt");
    g_assert_cmpstr(migration_str(pci, "virsh_error"), ==,
                    "Operation not supported: cannot migrate a domain with <hostdev mode='subsystem' type='pci'>");
    g_assert_cmpstr(migration_str(scsi_host, "virsh_error"), ==,
                    "Operation not supported: cannot migrate a domain with <hostdev mode='subsystem' type='scsi_host'>");
    g_assert_cmpstr(migration_str(iface, "virsh_error"), ==,
                    "Operation not supported: cannot migrate a domain with <interface type='hostdev'>");
    g_assert_true(json_object_get_null_member(member(usb, "migration"), "virsh_error"));
}

/* libvirt 8.6 asks QEMU (query-migrate blocked-reasons) and runs no
 * hostdev check of its own: the boundary on both sides, and QEMU's own
 * words for what it blocks. */
static void
test_libvirt_blocked_reasons(void)
{
    check_env v85 = { .kvm_sync_mmu = 1, .libvirt_version = "8.5.9" };
    check_env v86 = { .kvm_sync_mmu = 1, .libvirt_version = "8.6.0" };
    check_env v86_q72 = { .kvm_sync_mmu = 1, .libvirt_version = "8.6", .qemu_version = "7.2" };
    g_autoptr(JsonNode) p85 = check_file_env("domains", "pci-gpu-audio-shared-group.xml", &v85);
    g_autoptr(JsonNode) p86 = check_file_env("domains", "pci-gpu-audio-shared-group.xml", &v86);
    g_autoptr(JsonNode) p72 = check_file_env("domains", "pci-gpu-audio-shared-group.xml", &v86_q72);
    g_autoptr(JsonNode) mdev = check_file_env("domains", "mdev-no-optin.xml", &v86);
    g_autoptr(JsonNode) scsi = check_file_env("domains", "scsi-hostdev.xml", &v86);

    g_assert_cmpuint(n_blockers(p85, "libvirt-hostdev-pci", NULL), ==, 2);
    g_assert_cmpuint(n_blockers(p86, "libvirt-hostdev-pci", NULL), ==, 0);
    g_assert_cmpuint(n_blockers(mdev, "libvirt-hostdev-mdev", NULL), ==, 0);
    /* scsi-generic has a vmstate: QEMU blocks nothing, so it migrates. */
    g_assert_true(migration_allowed(scsi));
    /* QEMU 9.1 (8.1's words): each device names itself. */
    g_assert_cmpstr(migration_str(p86, "refused_by"), ==, "qemu");
    g_assert_cmpstr(migration_str(p86, "virsh_error"), ==,
                    "Requested operation is not valid: cannot migrate domain: "
                    "0000:01:00.0: VFIO migration is not supported in kernel; "
                    "0000:01:00.1: VFIO migration is not supported in kernel");
    /* QEMU 7.2: vfio_migration_probe()'s one sentence per device. */
    g_assert_cmpstr(migration_str(p72, "virsh_error"), ==,
                    "Requested operation is not valid: cannot migrate domain: "
                    "VFIO device doesn't support migration; VFIO device doesn't support migration");
}

/* A VF on a variant driver with migration support: libvirt 9.0 with QEMU
 * 8.1 migrates it; libvirt 8.5 refuses it whatever the driver. */
static void
test_libvirt_variant_driver_migrates(void)
{
    check_env v90 = { .kvm_sync_mmu = 1, .qemu_version = "8.1" };
    check_env v85 = { .kvm_sync_mmu = 1, .qemu_version = "8.1", .libvirt_version = "8.5" };
    g_autoptr(JsonNode) ok = check_file_env("domains", "multi-vf-p2p.xml", &v90);
    g_autoptr(JsonNode) old = check_file_env("domains", "multi-vf-p2p.xml", &v85);

    g_assert_true(migration_allowed(ok));
    g_assert_true(json_object_get_null_member(member(ok, "migration"), "refused_by"));
    g_assert_false(migration_allowed(old));
    g_assert_cmpstr(migration_str(old, "refused_by"), ==, "libvirt");
}

/* <teaming type='transient'>: libvirt lets it migrate and QEMU skips
 * vfio_migration_realize for a failover device. */
static void
test_libvirt_teaming_transient(void)
{
    g_autoptr(JsonNode) v = check_file("pci-teaming-transient.xml", NULL);

    g_assert_true(migration_allowed(v));
}

/* ------------------------------------------------------------------ */
/* Migration: qemu layer (vfio_migration_realize order)                */

/* 1. enable-migration=off */
static void
test_vfio_migration_disabled(void)
{
    g_autoptr(JsonNode) v = check_file("enable-migration-off.xml", NULL);

    g_assert_cmpuint(n_blockers(v, "vfio-migration-disabled", NULL), ==, 1);
}

/* 2. no migration before QEMU 8.0, and none for plain vfio-pci */
static void
test_vfio_migration_unsupported(void)
{
    g_autoptr(JsonNode) old = check_file("intel-iommu-valid.xml", "7.2");
    g_autoptr(JsonNode) plain = check_file("pci-gpu-audio-shared-group.xml", "9.1");

    g_assert_cmpuint(n_blockers(old, "vfio-migration-unsupported", NULL), ==, 1);
    g_assert_cmpuint(n_blockers(old, "vfio-viommu", NULL), ==, 0);
    g_assert_cmpuint(n_blockers(plain, "vfio-migration-unsupported", NULL), ==, 2);
}

/* 3. neither device nor IOMMU dirty tracking */
static void
test_vfio_no_dirty_tracking(void)
{
    check_env with_iommu_dirty = { .kvm_sync_mmu = 1, .iommu_dirty = true };
    g_autoptr(JsonNode) hisi = check_file("hisi-no-dirty.xml", NULL);
    g_autoptr(JsonNode) iommufd = check_file_env("domains-newer", "iommufd.xml", &with_iommu_dirty);
    g_autoptr(JsonNode) iommufd_no = check_file_env("domains-newer", "iommufd.xml",
                                                    &(check_env){ .kvm_sync_mmu = 1 });

    g_assert_cmpuint(n_blockers(hisi, "vfio-no-dirty-tracking", NULL), ==, 1);
    g_assert_cmpuint(n_blockers(iommufd, "vfio-no-dirty-tracking", NULL), ==, 0);
    g_assert_cmpuint(n_blockers(iommufd_no, "vfio-no-dirty-tracking", NULL), ==, 1);
}

/* 3b. the same rule end to end, with the host IOMMU's dirty tracking read
 * from the fixture trees' class/iommu instead of set by hand.  Only a
 * hostdev on iommufd can use it (QEMU's IOMMU dirty tracking is an
 * iommufd feature), so the legacy container stays blocked on any host. */
static void
test_vfio_no_dirty_tracking_sysfs(void)
{
    static const struct {
        const char *sysfs;
        guint iommufd;           /* blockers for the iommufd hostdev */
    } hosts[] = {
        { "intel-dirty",        0 },
        { "amd-dirty",          0 },
        { "amd-dirty-efr-only", 0 },
        { "intel-mixed",        1 },   /* one unit lacks SSADS */
        { "amd-nodirty",        1 },
        { "host1",              1 },   /* no class/iommu */
    };
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(hosts); i++) {
        check_env env = { .sysfs = hosts[i].sysfs, .kvm_sync_mmu = 1,
                          .iommu_dirty_sysfs = true };
        g_autoptr(JsonNode) iommufd = check_file_env("domains-newer", "iommufd.xml", &env);
        g_autoptr(JsonNode) legacy = check_file_env("domains", "hisi-no-dirty.xml", &env);

        g_test_message("%s", hosts[i].sysfs);
        g_assert_cmpuint(n_blockers(iommufd, "vfio-no-dirty-tracking", "ua-acc0"), ==,
                         hosts[i].iommufd);
        g_assert_cmpuint(n_blockers(legacy, "vfio-no-dirty-tracking", "ua-acc0"), ==, 1);
        /* The device is on every tree with its driver: no other reason. */
        g_assert_cmpuint(n_blockers(iommufd, "vfio-migration-unsupported", NULL), ==, 0);
        g_assert_cmpuint(count_code(json_node_get_object(iommufd), "warnings",
                                    "device-not-on-host", NULL), ==, 0);
    }
}

/* 4. several devices: always blocked before 8.1, from 8.1 only without P2P */
static void
test_vfio_multiple_devices(void)
{
    g_autoptr(JsonNode) v80 = check_file("multi-vf-p2p.xml", "8.0");
    g_autoptr(JsonNode) v81 = check_file("multi-vf-p2p.xml", "8.1");

    g_assert_cmpuint(n_blockers(v80, "vfio-multiple-devices", NULL), ==, 1);
    g_assert_cmpuint(n_blockers(v81, "vfio-multiple-devices", NULL), ==, 0);
    /* hw/vfio/common.c's machine-wide blocker, in 8.0's words. */
    g_assert_cmpstr(migration_str(v80, "virsh_error"), ==,
                    "Requested operation is not valid: cannot migrate domain: "
                    "Migration is currently not supported with multiple VFIO devices");
    /* libvirt 9.0 asks QEMU, which has nothing against them. */
    g_assert_true(migration_allowed(v81));
}

/* 5. vIOMMU present: blocked; from 11.0 only with device dirty tracking;
 * dma_translation=off does not lift it (the relaxation never merged). */
static void
test_vfio_viommu(void)
{
    g_autoptr(JsonNode) v91 = check_file("intel-iommu-valid.xml", "9.1");
    g_autoptr(JsonNode) v110 = check_file("intel-iommu-valid.xml", "11.0");
    g_autoptr(JsonNode) dma_off = check_file_env("domains-newer", "intel-dma-translation-off.xml",
                                                 &(check_env){ .kvm_sync_mmu = 1 });
    g_autoptr(JsonNode) virtio = check_file("virtio-iommu.xml", "9.1");
    JsonObject *b;

    g_assert_cmpuint(n_blockers(v91, "vfio-viommu", NULL), ==, 1);
    /* mlx5 tracks dirty pages itself: still blocked in 11.0. */
    g_assert_cmpuint(n_blockers(v110, "vfio-viommu", NULL), ==, 1);
    g_assert_cmpuint(n_blockers(dma_off, "vfio-viommu", NULL), ==, 1);
    /* libvirt 9.0 adds no blocker of its own: QEMU's is the only one. */
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(member(dma_off, "migration"),
                                                                        "blockers")), ==, 1);
    b = json_array_get_object_element(json_object_get_array_member(member(dma_off, "migration"),
                                                                   "blockers"), 0);
    g_assert_nonnull(strstr(json_object_get_string_member(b, "message"), "never merged"));
    g_assert_cmpuint(n_blockers(virtio, "vfio-viommu", NULL), ==, 1);
}

/* 11.0: a device that uses IOMMU dirty tracking is not blocked by the vIOMMU. */
static void
test_vfio_viommu_110_iommu_dirty(void)
{
    check_env env = { .qemu_version = "11.0", .kvm_sync_mmu = 1, .iommu_dirty = true };
    check_env env91 = { .qemu_version = "9.1", .kvm_sync_mmu = 1, .iommu_dirty = true };
    g_autoptr(JsonNode) v110 = check_file_env("domains-newer", "intel-iommufd-mlx5.xml", &env);
    g_autoptr(JsonNode) v91 = check_file_env("domains-newer", "intel-iommufd-mlx5.xml", &env91);

    g_assert_cmpuint(n_blockers(v110, "vfio-viommu", NULL), ==, 0);
    g_assert_cmpuint(n_blockers(v91, "vfio-viommu", NULL), ==, 1);
}

/* seed 004: with x-migration-iommu-pt on every device and the downstream
 * feature, the blocker becomes a run-time cancel condition. */
static void
test_seed004_iommu_pt(void)
{
    check_env with = { .kvm_sync_mmu = 1, .feature = "x-migration-iommu-pt" };
    g_autoptr(JsonNode) pt = check_file_env("domains", "viommu-pt-all.xml", &with);
    g_autoptr(JsonNode) nofeat = check_file("viommu-pt-all.xml", NULL);
    g_autoptr(JsonNode) partial = check_file_env("domains", "viommu-pt-one.xml", &with);
    JsonObject *mig = member(pt, "migration");

    g_assert_cmpuint(n_blockers(pt, "vfio-viommu", NULL), ==, 0);
    g_assert_cmpuint(count_code(mig, "conditions", "viommu-passthrough-cancel", NULL), ==, 1);
    /* Without the feature QEMU never sees the property. */
    g_assert_cmpuint(n_blockers(nofeat, "vfio-viommu", NULL), ==, 2);
    g_assert_cmpuint(n_warnings(nofeat, "qemu-property-missing"), ==, 2);
    /* One device without it: vfio_devices_all_iommu_passthrough() fails
     * for it, and no cancel condition can stand in for its blocker. */
    g_assert_cmpuint(n_blockers(partial, "vfio-viommu", "ua-vf1"), ==, 1);
    g_assert_cmpuint(count_code(member(partial, "migration"), "conditions",
                                "viommu-passthrough-cancel", NULL), ==, 0);
}

/* ------------------------------------------------------------------ */
/* Memlock (qemuDomainGetMemLockLimitBytes)                            */


static void
test_memlock_limit(void)
{
    g_autoptr(JsonNode) none = check_file("no-hostdev.xml", NULL);
    g_autoptr(JsonNode) gpu = check_file("pci-gpu-audio-shared-group.xml", NULL);
    g_autoptr(JsonNode) hard = check_file("memtune-hard-limit.xml", NULL);
    g_autoptr(JsonNode) iommu = check_file("viommu-pt-all.xml", NULL);

    g_assert_cmpint(memlock(none), ==, 0);
    /* two hostdevs, no vIOMMU: factor 1 */
    g_assert_cmpint(memlock(gpu), ==, 8 * GIB + GIB);
    g_assert_cmpint(memlock(hard), ==, 8 * GIB);
    /* two VFs behind a vIOMMU: factor 2 */
    g_assert_cmpint(memlock(iommu), ==, 2 * 16 * GIB + GIB);
}

/* libvirt 8.7 ("increase memlock limit for a domain with multiple
 * vfio/vdpa devices"): before it, one copy of guest memory in all. */
static void
test_memlock_libvirt_versions(void)
{
    check_env v86 = { .kvm_sync_mmu = 1, .libvirt_version = "8.6.99" };
    check_env v87 = { .kvm_sync_mmu = 1, .libvirt_version = "8.7.0" };
    g_autoptr(JsonNode) old = check_file_env("domains", "viommu-pt-all.xml", &v86);
    g_autoptr(JsonNode) cur = check_file_env("domains", "viommu-pt-all.xml", &v87);

    g_assert_cmpint(memlock(old), ==, 16 * GIB + GIB);
    g_assert_cmpint(memlock(cur), ==, 2 * 16 * GIB + GIB);
}

/* A domain of 4 GiB for the memlock rules below, built from its parts. */
typedef struct {
    const char *type;            /* <domain type=...>, kvm when NULL */
    const char *os;              /* attributes of <os><type>, x86_64 q35 */
    const char *head;            /* elements after <memory>, or NULL */
    const char *devices;         /* the inside of <devices>, or NULL */
    const char *libvirt;         /* the judged libvirt, 9.0 when NULL */
} memlock_case;

#define KIB 1024LL
#define HOSTDEV(bus, fn) \
    "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' " \
    "bus='" bus "' slot='0x00' function='" fn "'/></source></hostdev>"
#define PSERIES "arch='ppc64' machine='pseries'"

/* memlock_bytes of @c judged on @host, -1 when null (unlimited). */
static gint64
memlock_on(dmgHostProfile *host, const memlock_case *c)
{
    g_autofree char *xml = g_strdup_printf("<domain type='%s'><name>m</name><memory unit='GiB'>4</memory>%s"
                                           "<os><type %s>hvm</type></os><devices>%s</devices></domain>",
                                           c->type ? c->type : "kvm", c->head ? c->head : "",
                                           c->os ? c->os : "arch='x86_64' machine='q35'",
                                           c->devices ? c->devices : "");
    g_autoptr(dmgQemuProfile) qemu = dmg_qemu_profile_new();
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) v = NULL;

    g_assert_true(dmg_libvirt_profile_set_version(&host->libvirt, c->libvirt ? c->libvirt : "9.0", NULL));
    g_assert_true(dmg_qemu_profile_set_version(qemu, "9.1", NULL));
    v = dmg_check_xml(xml, strlen(xml), "memlock", host, qemu, &err);
    g_assert_no_error(err);
    return json_object_get_null_member(json_node_get_object(v), "memlock_bytes") ? -1 : memlock(v);
}

/* The same on the sysfs fixture host1. */
static gint64
memlock_case_bytes(const memlock_case *c)
{
    g_autoptr(dmgHostProfile) host = fixture_host(&(check_env){ .kvm_sync_mmu = 1 });

    return memlock_on(host, c);
}

/* qemuDomainGetNumVFIODevices(): a disk with an NVMe source anywhere in
 * its chain (virStorageSourceChainHasNVMe()) counts as a VFIO device,
 * once per disk, and behind a vIOMMU once per device. */
static void
test_memlock_nvme_disks(void)
{
    const char *nvme = "<disk type='nvme' device='disk'><source type='pci' managed='yes' namespace='1'>"
                       "<address domain='0x0000' bus='0x05' slot='0x00' function='0x0'/></source>"
                       "<target dev='vda' bus='virtio'/></disk>";
    g_autofree char *chain = g_strconcat(nvme, HOSTDEV("0x01", "0x0"),
                                         "<disk type='file'><backingStore type='nvme'><backingStore type='nvme'/>"
                                         "</backingStore><target dev='vdb'/></disk>"
                                         "<iommu model='intel'/>", NULL);

    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .devices = nvme }), ==, 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .devices = chain }), ==, 3 * 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){
        .devices = "<disk type='file'><backingStore type='file'/><target dev='vda'/></disk>" }), ==, 0);
}

/* qemuDomainGetNumVFIODevices(): an mdev (virHostdevIsMdevDevice()) is a
 * VFIO device as a PCI hostdev is. */
static void
test_memlock_mdev(void)
{
    const char *mdev = "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source>"
                       "<address uuid='c2177883-f1bb-47f0-914d-32a22e3a8804'/></source></hostdev>";
    g_autofree char *two = g_strconcat(mdev, HOSTDEV("0x01", "0x0"), "<iommu model='intel'/>", NULL);

    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .devices = mdev }), ==, 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .devices = two }), ==, 2 * 4 * GIB + GIB);
}

/* <interface type='vdpa'>: counted from libvirt 7.2 ("qemu: increase
 * locked memory limit when a vDPA device is present"), once per device
 * besides the VFIO devices from 8.7. */
static void
test_memlock_vdpa(void)
{
    const char *vdpa = "<interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/></interface>"
                       "<interface type='vdpa'><source dev='/dev/vhost-vdpa-1'/></interface>";
    g_autofree char *both = g_strconcat(vdpa, HOSTDEV("0x01", "0x0"), NULL);

    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .devices = both }), ==, 3 * 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .devices = both, .libvirt = "8.6" }), ==, 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .devices = both, .libvirt = "7.1" }), ==, 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .devices = vdpa, .libvirt = "7.2" }), ==, 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .devices = vdpa, .libvirt = "7.1" }), ==, 0);
}

/* virDomainParseMemoryLimit() and virMemoryLimitIsSet(): the hard limit
 * in whole KiB, rounded up; 0 is a limit (none set at all, whatever the
 * devices); VIR_DOMAIN_MEMORY_PARAM_UNLIMITED KiB is no limit, and the
 * devices decide.  <locked/> without it is unlimited. */
static void
test_memlock_hard_limit(void)
{
    const char *dev = HOSTDEV("0x01", "0x0");

    g_assert_cmpint(memlock_case_bytes(&(memlock_case){
        .head = "<memtune><hard_limit unit='b'>1000</hard_limit></memtune>", .devices = dev }), ==, KIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){
        .head = "<memtune><hard_limit>0</hard_limit></memtune>", .devices = dev }), ==, 0);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){
        .head = "<memtune><hard_limit>9007199254740991</hard_limit></memtune>", .devices = dev }),
        ==, 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){
        .head = "<memoryBacking><locked/></memoryBacking>" }), ==, -1);
}

/* Only a ppc64 KVM guest takes getPPC64MemLockLimitBytes(): TCG, on x86
 * as on ppc64, takes the x86 formula (0 without devices). */
static void
test_memlock_tcg(void)
{
    const char *dev = HOSTDEV("0x01", "0x0");

    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .type = "qemu", .devices = dev }), ==, 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .type = "qemu", .os = PSERIES, .devices = dev }),
                    ==, 4 * GIB + GIB);
    g_assert_cmpint(memlock_case_bytes(&(memlock_case){ .type = "qemu", .os = PSERIES }), ==, 0);
}

/* getPPC64MemLockLimitBytes(), in KiB, for 4 GiB (4194304 KiB):
 * maxMemory / 128 + 4096 * PHBs + 8192, plus with VFIO
 * max(2 GiB * PHBs, memory + memory / 512 * PHBs + 8192).  The PHBs are
 * pci-root 0 and one per IOMMU group of the hostdevs without an address
 * (qemuDomainSetupIsolationGroups()); host1 has 01:00.0 and 01:00.1 in
 * group 1, 3b:00.1 in 20 and 3b:00.2 in 21. */
static void
test_memlock_pseries(void)
{
    g_autofree char *same = g_strconcat(HOSTDEV("0x01", "0x0"), HOSTDEV("0x01", "0x1"), NULL);
    g_autofree char *two = g_strconcat(HOSTDEV("0x3b", "0x1"), HOSTDEV("0x3b", "0x2"), NULL);
    const char *root1 = "<controller type='pci' index='1' model='pci-root'/>";
    g_autofree char *root1_dev = g_strconcat(root1, HOSTDEV("0x01", "0x0"), NULL);
    const char *on_phb0 = "<hostdev mode='subsystem' type='pci'><source><address domain='0' bus='1' slot='0' "
                          "function='0'/></source><address type='pci' domain='0' bus='0' slot='5' function='0'/></hostdev>";
    const struct { memlock_case c; gint64 kib; } cases[] = {
        /* one PHB, nothing passed through */
        { { .os = PSERIES }, 4194304 / 128 + 4096 + 8192 },
        /* a group: two PHBs; 2 GiB * 2 < 4 GiB + 4 GiB / 512 * 2 + 8 MiB */
        { { .os = PSERIES, .devices = same }, 4194304 / 128 + 2 * 4096 + 8192 + 4194304 + 2 * 8192 + 8192 },
        /* two groups: three PHBs, and 2 GiB * 3 wins */
        { { .os = PSERIES, .devices = two }, 4194304 / 128 + 3 * 4096 + 8192 + 3 * 2097152 },
        /* an empty pci-root takes the hostdev: still two */
        { { .os = PSERIES, .devices = root1 }, 4194304 / 128 + 2 * 4096 + 8192 },
        { { .os = PSERIES, .devices = root1_dev }, 4194304 / 128 + 2 * 4096 + 8192 + 4194304 + 2 * 8192 + 8192 },
        /* an address on PHB 0 from the XML: no PHB added */
        { { .os = PSERIES, .devices = on_phb0 }, 4194304 / 128 + 4096 + 8192 + 4194304 + 8192 + 8192 },
        /* maxMemory, not memory, sizes the hash table */
        { { .os = PSERIES, .head = "<maxMemory slots='16' unit='GiB'>64</maxMemory>" },
          67108864 / 128 + 4096 + 8192 },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("case %" G_GSIZE_FORMAT, i);
        g_assert_cmpint(memlock_case_bytes(&cases[i].c), ==, cases[i].kib * KIB);
    }
}

/* getPPC64MemLockLimitBytes() with an NVLink2 GPU (ppc64VFIODeviceIsNV2Bridge():
 * four properties in the device's of_node): maxMemory + 128 GiB / 512 *
 * PHBs + 8192 KiB instead of the VFIO window. */
static void
test_memlock_nvlink2(void)
{
    g_autofree char *root = g_dir_make_tmp("dmg-nv2-XXXXXX", NULL);
    g_autofree char *of_node = g_build_filename(root, "bus", "pci", "devices", "0004:04:00.0", "of_node", NULL);
    static const char *const props[] = { "ibm,gpu", "ibm,nvlink", "ibm,nvlink-speed", "memory-region" };
    memlock_case c = {
        .os = PSERIES,
        .devices = "<hostdev mode='subsystem' type='pci'><source><address domain='0x0004' bus='0x04' "
                   "slot='0x00' function='0x0'/></source></hostdev>",
    };
    gint64 base = 4194304 / 128 + 2 * 4096 + 8192;

    g_assert_cmpint(g_mkdir_with_parents(of_node, 0755), ==, 0);
    for (gsize i = 0; i <= G_N_ELEMENTS(props); i++) {
        g_autoptr(dmgHostProfile) host = dmg_host_profile_new(root);
        /* all four: NVLink2; three: a plain VFIO device */
        gint64 want = i == G_N_ELEMENTS(props)
                      ? base + 4194304 + 268435456LL * 2 + 8192
                      : base + 4194304 + 2 * 8192 + 8192;

        host->kvm_sync_mmu = 1;
        g_assert_cmpint(memlock_on(host, &c), ==, want * KIB);
        if (i < G_N_ELEMENTS(props)) {
            g_autofree char *f = g_build_filename(of_node, props[i], NULL);

            g_assert_true(g_file_set_contents(f, "", 0, NULL));
        }
    }
    for (gsize i = 0; i < G_N_ELEMENTS(props); i++) {
        g_autofree char *f = g_build_filename(of_node, props[i], NULL);

        g_assert_cmpint(g_unlink(f), ==, 0);
    }
    /* of_node, the device, devices, pci, bus, and the root */
    for (char *d = g_steal_pointer(&of_node); ; ) {
        char *up = g_path_get_dirname(d);
        bool last = strcmp(d, root) == 0;

        g_assert_cmpint(g_rmdir(d), ==, 0);
        g_free(d);
        if (last) {
            g_free(up);
            break;
        }
        d = up;
    }
}

/* Where the libvirt version comes from: a typed version, the library a
 * process maps (this test maps libvirt.so itself), libvirt's encoding. */
static void
test_libvirt_profile(void)
{
    dmgLibvirtProfile p = { 0 };
    unsigned long lib = 0;
    g_autoptr(GError) err = NULL;
    g_autofree char *s = NULL;

    g_assert_true(dmg_libvirt_profile_set_version(&p, "8.10.2", NULL));
    g_assert_cmpuint(p.version.minor, ==, 10);
    g_assert_cmpuint(p.version.micro, ==, 2);
    g_assert_cmpint(p.source, ==, DMG_LIBVIRT_SOURCE_CHOSEN);
    for (guint i = 0; i < 5; i++) {
        const char *bad[] = { "9", "9.0.0.1", "5.10", "9.x", "9.1000" };

        g_assert_false(dmg_libvirt_profile_set_version(&p, bad[i], &err));
        g_assert_nonnull(strstr(err->message, bad[i]));
        g_clear_error(&err);
    }
    /* The boundaries of the table, on both sides. */
    g_assert_true(dmg_libvirt_profile_set_version(&p, "8.5.99", NULL));
    g_assert_false(dmg_libvirt_profile_has(&p, DMG_LIBVIRT_MIGRATION_BLOCKED_REASONS));
    g_assert_true(dmg_libvirt_profile_set_version(&p, "8.6", NULL));
    g_assert_true(dmg_libvirt_profile_has(&p, DMG_LIBVIRT_MIGRATION_BLOCKED_REASONS));
    g_assert_false(dmg_libvirt_profile_has(&p, DMG_LIBVIRT_MEMLOCK_PER_DEVICE));
    /* This process links libvirt: its map names the same library
     * virGetVersion() reports. */
    g_assert_true(dmg_libvirt_profile_init_process(&p, getpid()));
    g_assert_cmpint(p.source, ==, DMG_LIBVIRT_SOURCE_DAEMON);
    virGetVersion(&lib, NULL, NULL);
    g_assert_cmpuint(p.version.major, ==, lib / 1000000);
    g_assert_cmpuint(p.version.minor, ==, (lib / 1000) % 1000);
    g_assert_cmpuint(p.version.micro, ==, lib % 1000);
    /* A process without libvirt (pid 1 here is not a libvirt daemon, or
     * its map is unreadable): no answer, nothing changed. */
    s = dmg_libvirt_version_string(p.version);
    if (!dmg_libvirt_profile_init_process(&p, 1)) {
        g_autofree char *again = dmg_libvirt_version_string(p.version);

        g_assert_cmpstr(s, ==, again);
    }
    g_assert_false(dmg_libvirt_profile_init_process(&p, -1));
}

/* ------------------------------------------------------------------ */
/* Configuration errors                                                */

static void
test_config_errors(void)
{
    g_autoptr(JsonNode) intremap = check_file("intel-iommu-intremap-no-split-ioapic.xml", NULL);
    g_autoptr(JsonNode) eim = check_file("intel-iommu-eim-no-intremap.xml", NULL);
    g_autoptr(JsonNode) i440fx = check_file("intel-iommu-i440fx.xml", NULL);
    g_autoptr(JsonNode) caching = check_file("intel-iommu-caching-mode-off.xml", NULL);
    g_autoptr(JsonNode) valid = check_file("intel-iommu-valid.xml", NULL);
    g_autoptr(JsonNode) smmu = check_file("smmuv3.xml", NULL);

    g_assert_cmpuint(n_errors(intremap, "iommu-intremap-needs-split-ioapic"), ==, 1);
    g_assert_cmpuint(n_errors(eim, "iommu-eim-needs-intremap"), ==, 1);
    g_assert_cmpuint(n_errors(i440fx, "iommu-intel-needs-q35"), ==, 1);
    g_assert_cmpuint(n_errors(caching, "iommu-caching-mode-required"), ==, 1);
    g_assert_true(dmg_verdict_has_errors(caching));
    /* The report goes on as if the fix were applied: the device still
     * inhibits the balloon and blocks migration. */
    g_assert_cmpuint(n_inhibitors(caching), ==, 1);
    g_assert_false(migration_allowed(caching));
    g_assert_false(dmg_verdict_has_errors(valid));
    g_assert_false(dmg_verdict_has_errors(smmu));
    /* vtd_decide_config(): eim needs KVM's split irqchip; not under TCG */
    {
        g_autoptr(JsonNode) tcg = check_file_env("qemuxml2argv", "intel-iommu-eim-tcg.xml",
                                                 &(check_env){ .kvm_sync_mmu = 1 });
        g_autoptr(JsonNode) kvm = check_file_env("qemuxml2argv", "intel-iommu-intremap.xml",
                                                 &(check_env){ .kvm_sync_mmu = 1 });

        g_assert_cmpuint(n_errors(tcg, "iommu-eim-needs-kvm"), ==, 1);
        g_assert_false(dmg_verdict_has_errors(kvm));
    }
}

/* ------------------------------------------------------------------ */
/* Host profile and XML warnings                                       */

static void
test_device_not_on_host(void)
{
    g_autoptr(JsonNode) v = check_file("missing-device.xml", NULL);

    g_assert_cmpuint(n_warnings(v, "device-not-on-host"), ==, 1);
    g_assert_cmpuint(n_inhibitors(v), ==, 1);
    g_assert_true(json_node_is_null(json_object_get_member(inhibitor(v, 0), "group")));
}

static void
test_override_unknown_alias(void)
{
    g_autoptr(JsonNode) v = check_file("override-unknown-alias.xml", NULL);

    g_assert_cmpuint(n_warnings(v, "xml-ignored"), ==, 1);
}

/* <interface type='hostdev'> is a VFIO PCI hostdev (libvirt lists it
 * before the <hostdev> elements). */
static void
test_interface_hostdev(void)
{
    g_autoptr(JsonNode) v = check_file("interface-hostdev.xml", NULL);

    g_assert_cmpuint(n_inhibitors(v), ==, 2);
    g_assert_cmpint(json_object_get_int_member(inhibitor(v, 0), "group"), ==, 21);
    /* libvirt 9.0 raises nothing of its own: the mlx5 VF migrates, QEMU
     * blocks the plain vfio-pci function. */
    g_assert_cmpuint(n_blockers(v, "vfio-migration-unsupported", "ua-hostnet0"), ==, 0);
    g_assert_cmpuint(n_blockers(v, "vfio-migration-unsupported", "hostdev1"), ==, 1);
    g_assert_cmpuint(n_blockers(v, "libvirt-hostdev-pci", NULL), ==, 0);
    /* factor 1 without a vIOMMU */
    g_assert_cmpint(memlock(v), ==, 8 * GIB + GIB);
}

/* vfio_get_group(): "group %d used in multiple address spaces" — with a
 * vIOMMU each PCI function has its own DMA address space. */
static void
test_group_address_space_conflict(void)
{
    g_autoptr(JsonNode) v = check_file("intel-iommu-shared-group.xml", NULL);

    g_assert_cmpuint(count_code(json_node_get_object(v), "errors",
                                "group-address-space-conflict", "hostdev1"), ==, 1);
}

static void
test_host_driver_not_vfio(void)
{
    g_autoptr(JsonNode) v = check_file("host-driver-not-vfio.xml", NULL);

    g_assert_cmpuint(n_warnings(v, "host-driver-not-vfio"), ==, 1);
    g_assert_cmpuint(n_blockers(v, "vfio-migration-unsupported", NULL), ==, 1);
}

/* Metadata typos are reported, not silently ignored. */
static void
test_metadata_typos(void)
{
    const char *files[] = { "misspelled-attribute.xml", "unknown-element.xml",
                            "missing-alias.xml", "bad-alias-chars.xml" };

    for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autoptr(JsonNode) v = check_file_env("domains-bad-metadata", files[i],
                                               &(check_env){ .kvm_sync_mmu = 1 });

        g_test_message("%s", files[i]);
        g_assert_cmpuint(n_warnings(v, "xml-ignored"), >=, 1);
    }
}

/* A <qemu:override> of a property this QEMU lacks stops QEMU whatever
 * its value; the same setting in metadata only loses its effect. */
static void
test_override_property_missing(void)
{
    g_autoptr(JsonNode) old = check_file("enable-migration-off.xml", "8.0");
    g_autoptr(JsonNode) meta = check_file("viommu-pt-all.xml", NULL);

    g_assert_cmpuint(n_errors(old, "qemu-property-missing"), ==, 1);
    g_assert_cmpuint(n_errors(meta, "qemu-property-missing"), ==, 0);
    g_assert_cmpuint(n_warnings(meta, "qemu-property-missing"), ==, 2);
}

/* A verdict stored by check --write-metadata is compared with today's:
 * the same digest is silent, a different one is a verdict-changed warning. */
static void
test_stored_verdict(void)
{
    g_autoptr(JsonNode) v = check_file("pci-gpu-audio-shared-group.xml", NULL);
    g_autofree char *digest = dmg_verdict_digest(v);
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "domains", "pci-gpu-audio-shared-group.xml", NULL);
    g_autofree char *xml = NULL;
    const char *tails[] = { digest, "0000" };

    g_assert_true(g_file_get_contents(path, &xml, NULL, NULL));
    for (int i = 0; i < 2; i++) {
        g_autofree char *md = g_strdup_printf("<metadata><dmaguard:domain xmlns:dmaguard='http://dmaguard.org/xmlns/domain/1.0'>"
                                              "<dmaguard:verdict balloon='effective' migration='allowed' checked='2026-01-01T00:00:00Z' digest='%s'/>"
                                              "</dmaguard:domain></metadata>", tails[i]);
        g_autofree char *with = NULL;
        g_autoptr(dmgHostProfile) host = fixture_host(&(check_env){ .kvm_sync_mmu = 1 });
        g_autoptr(dmgQemuProfile) qemu = dmg_qemu_profile_new();
        g_autoptr(JsonNode) again = NULL;
        char *at = strstr(xml, "<memory");
        g_autoptr(GString) s = g_string_new_len(xml, at - xml);

        g_string_append(s, md);
        g_string_append(s, at);
        g_assert_true(dmg_qemu_profile_set_version(qemu, "9.1", NULL));
        again = dmg_check_xml(s->str, s->len, "stored", host, qemu, NULL);
        g_assert_nonnull(again);
        g_assert_cmpuint(n_warnings(again, "verdict-changed"), ==, i == 0 ? 0 : 1);
    }
}

/* A variant driver named in the XML is what libvirt binds. */
static void
test_variant_driver_model(void)
{
    g_autoptr(JsonNode) v = check_file_env("domains-newer", "variant-driver-model.xml",
                                           &(check_env){ .kvm_sync_mmu = 1 });

    g_assert_cmpuint(n_blockers(v, "vfio-migration-unsupported", NULL), ==, 0);
    g_assert_cmpuint(n_blockers(v, "vfio-no-dirty-tracking", NULL), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/balloon/seed000-one-inhibitor-per-group", test_seed000_one_inhibitor_per_group);
    g_test_add_func("/balloon/seed000-shared-container-counts-groups", test_seed000_shared_container_counts_groups);
    g_test_add_func("/balloon/seed002-mdev-optin", test_seed002_mdev_optin);
    g_test_add_func("/balloon/seed002-mdev-without-optin-inhibits", test_seed002_mdev_without_optin_inhibits);
    g_test_add_func("/balloon/seed002-ccw-ap-always-optin", test_seed002_ccw_ap_always_optin);
    g_test_add_func("/balloon/vfio-realize-optin-not-mdev", test_vfio_realize_optin_not_mdev);
    g_test_add_func("/balloon/vfio-get-device-inconsistent-group", test_vfio_get_device_inconsistent_group);
    g_test_add_func("/balloon/seed002-kvm-no-sync-mmu", test_seed002_kvm_no_sync_mmu);
    g_test_add_func("/balloon/memory-locked", test_memory_locked);
    g_test_add_func("/balloon/hugepage-partial", test_hugepage_partial);
    g_test_add_func("/balloon/virtio-mem-coordinated", test_virtio_mem_coordinated);
    g_test_add_func("/balloon/virtio-mem-dma-entry-limit", test_virtio_mem_dma_entry_limit);
    g_test_add_func("/balloon/no-balloon", test_no_balloon);
    g_test_add_func("/migration/libvirt-hostdev", test_libvirt_hostdev_migration);
    g_test_add_func("/migration/libvirt-blocked-reasons", test_libvirt_blocked_reasons);
    g_test_add_func("/migration/libvirt-variant-driver-migrates", test_libvirt_variant_driver_migrates);
    g_test_add_func("/migration/libvirt-teaming-transient", test_libvirt_teaming_transient);
    g_test_add_func("/migration/vfio-migration-disabled", test_vfio_migration_disabled);
    g_test_add_func("/migration/vfio-migration-unsupported", test_vfio_migration_unsupported);
    g_test_add_func("/migration/vfio-no-dirty-tracking", test_vfio_no_dirty_tracking);
    g_test_add_func("/migration/vfio-multiple-devices", test_vfio_multiple_devices);
    g_test_add_func("/migration/vfio-viommu", test_vfio_viommu);
    g_test_add_func("/migration/vfio-viommu-11.0-iommu-dirty", test_vfio_viommu_110_iommu_dirty);
    g_test_add_func("/migration/vfio-no-dirty-tracking-sysfs", test_vfio_no_dirty_tracking_sysfs);
    g_test_add_func("/migration/seed004-iommu-pt", test_seed004_iommu_pt);
    g_test_add_func("/memlock/libvirt-formula", test_memlock_limit);
    g_test_add_func("/memlock/libvirt-versions", test_memlock_libvirt_versions);
    g_test_add_func("/memlock/nvme-disks", test_memlock_nvme_disks);
    g_test_add_func("/memlock/mdev", test_memlock_mdev);
    g_test_add_func("/memlock/vdpa", test_memlock_vdpa);
    g_test_add_func("/memlock/hard-limit", test_memlock_hard_limit);
    g_test_add_func("/memlock/tcg", test_memlock_tcg);
    g_test_add_func("/memlock/pseries", test_memlock_pseries);
    g_test_add_func("/memlock/nvlink2", test_memlock_nvlink2);
    g_test_add_func("/libvirt/profile", test_libvirt_profile);
    g_test_add_func("/config/errors", test_config_errors);
    g_test_add_func("/host/device-not-on-host", test_device_not_on_host);
    g_test_add_func("/xml/override-unknown-alias", test_override_unknown_alias);
    g_test_add_func("/host/variant-driver-model", test_variant_driver_model);
    g_test_add_func("/host/driver-not-vfio", test_host_driver_not_vfio);
    g_test_add_func("/metadata/stored-verdict", test_stored_verdict);
    g_test_add_func("/xml/interface-hostdev", test_interface_hostdev);
    g_test_add_func("/xml/metadata-typos", test_metadata_typos);
    g_test_add_func("/xml/override-property-missing", test_override_property_missing);
    g_test_add_func("/config/group-address-space-conflict", test_group_address_space_conflict);
    return g_test_run();
}

/*
 * test-migration-blockers.c: the source side of a migration tied to the
 * device model (migration__send_machine, src/vmm/migration/outgoing.c).
 *
 *  - a blocker in the machine's registry (QEMU's migrate_add_blocker(),
 *    the registry `virt-dmaguard check` reads) refuses the migration
 *    before anything is sent, the source untouched;
 *  - seed 004 (x-migration-iommu-pt): an intel vIOMMU and two VFIO
 *    devices in passthrough leave only the run-time condition; a vIOMMU
 *    mapping during the migration cancels it (vfio_listener_region_add ->
 *    vfio_set_migration_error(-EOPNOTSUPP)): the source keeps running,
 *    the destination does not start;
 *  - the same without a mapping completes;
 *  - without x-migration-iommu-pt the vIOMMU blocker refuses up front.
 *
 * Guests run on KVM where /dev/kvm works; the /kvm/ cases skip without
 * it and the /soft/ ones use the software accelerator (no dirty log: one
 * stop-and-copy round, the cancel is seen before END).
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration-rig.h"
#include "migration/migration.h"
#include "vfio/vfio.h"
#include "vfio/listener.h"
#include "vfio/soft.h"
#include "viommu.h"
#include "vm.h"

#define PAGE 4096ULL
#define RAM_BASE (16 * MiB)              /* vm.c's VM_RAM_BASE */
#define MAP_IOVA 0x80000000ULL
#define MAP_GPA (RAM_BASE + 100 * MiB)   /* above what the guest writes */
#define CANCEL_WORDS "migration cancelled: hostdev1 mapped DMA through the vIOMMU (iova 0x80000000) " \
                     "while migrating; the guest uses the vIOMMU beyond interrupt remapping, which " \
                     "x-migration-iommu-pt promised it would not (seed 004)"

static bool
skip_without(vm_accel accel)
{
    if (accel == VM_ACCEL_KVM && !kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return true;
    }
    return false;
}

/* Nothing was written to the peer of @fd. */
static void
assert_nothing_sent(int fd)
{
    char c;

    g_assert_cmpint(recv(fd, &c, 1, MSG_DONTWAIT), ==, -1);
    g_assert_cmpint(errno, ==, EAGAIN);
}

/* ------------------------------------------------------------------ */
/* The device model on the source VM's memory                          */

/* seed 004: intel-iommu and two passthrough VFs. */
static vmm_machine *
seed004_machine(vm *v, vm_accel accel, bool iommu_pt)
{
    vmm_machine *m = machine_on(v, accel, iommu_pt, true);

    add_device(m, "hostdev0", 20, true, VFIO_MIGRATION_AUTO, true);
    add_device(m, "hostdev1", 21, true, VFIO_MIGRATION_AUTO, true);
    vmm_machine__done(m);
    return m;
}

static bool
has_condition(vmm_machine *m, const char *code)
{
    for (guint i = 0; i < m->migration.conditions->len; i++)
        if (!g_strcmp0(((migration_condition *)g_ptr_array_index(m->migration.conditions, i))->code, code))
            return true;
    return false;
}


/* ------------------------------------------------------------------ */
/* The guest maps through its vIOMMU from another thread               */

typedef struct mapper {
    vmm_machine *m;
    GMutex lock;
    GCond cond;
    bool go, done;
    gboolean ok;
    GError *err;
    guint rounds_seen;
    bool active_seen;                    /* migration__active() in a round */
} mapper;

static gpointer
mapper_main(gpointer data)
{
    mapper *mp = data;

    g_mutex_lock(&mp->lock);
    while (!mp->go)
        g_cond_wait(&mp->cond, &mp->lock);
    g_mutex_unlock(&mp->lock);
    /* A guest kexec'ed with intel_iommu=on sets up its DMA mappings. */
    mp->ok = vfio_viommu__map(mp->m, "hostdev1", MAP_IOVA, MAP_GPA, MiB, &mp->err);
    g_mutex_lock(&mp->lock);
    mp->done = true;
    g_cond_broadcast(&mp->cond);
    g_mutex_unlock(&mp->lock);
    return NULL;
}

/* After round 1 (or the only, final round of the software accelerator)
 * the mapper goes; it maps while the next round is sent.  From round 3,
 * or at stop-and-copy, wait for it, so the cancel is sure to come while
 * the migration still runs. */
static void
mapper_progress(const migration_round_stats *r, void *opaque)
{
    mapper *mp = opaque;

    mp->rounds_seen++;
    mp->active_seen |= migration__active(mp->m);
    g_test_message("round %u%s: %" G_GUINT64_FORMAT " pages, %.1f MiB in %.1f ms",
                   r->round, r->final ? " (stop-and-copy)" : "", r->pages + r->zero_pages,
                   r->bytes / (double)MiB, r->usec / 1000.0);
    g_mutex_lock(&mp->lock);
    if (r->round == 1 || r->final) {
        mp->go = true;
        g_cond_broadcast(&mp->cond);
    }
    while ((r->round >= 3 || r->final) && mp->go && !mp->done)
        g_cond_wait(&mp->cond, &mp->lock);
    g_mutex_unlock(&mp->lock);
}

static void
count_round(const migration_round_stats *r, void *opaque)
{
    mapper *mp = opaque;

    mp->rounds_seen++;
    mp->active_seen |= migration__active(mp->m);
}

/* ------------------------------------------------------------------ */
/* a. A device whose driver cannot migrate: refused, nothing sent       */

static void
test_refused_blocker(void)
{
    migration_params p = { .timeout_ms = 5000 };
    migration_stats st = { .bytes = 1 };
    g_autoptr(GError) err = NULL;
    vm_accel accel = best_accel();
    vm *src = running_vm(accel, 64);
    vmm_machine *m = machine_on(src, accel, false, false);
    int sv[2];

    add_device(m, "hostdev0", 20, false, VFIO_MIGRATION_AUTO, false);
    add_device(m, "hostdev1", 21, true, VFIO_MIGRATION_OFF, false);
    vmm_machine__done(m);
    g_assert_cmpuint(m->migration.blockers->len, ==, 2);
    socket_pair(sv);
    g_assert_false(migration__send_machine(src, m, sv[0], &p, &st, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "migration refused, nothing was sent"));
    g_assert_nonnull(strstr(err->message, "the machine has 2 migration blocker(s)"));
    g_assert_nonnull(strstr(err->message, "qemu blocker vfio-migration-unsupported on hostdev0: "
                                          "hostdev0: driver vfio-pci does not support VFIO migration"));
    g_assert_nonnull(strstr(err->message, "qemu blocker vfio-migration-disabled on hostdev1: "));
    g_assert_cmpuint(st.bytes, ==, 0);
    assert_nothing_sent(sv[1]);
    g_assert_false(migration__active(m));
    close(sv[0]);
    close(sv[1]);
    /* Untouched: still running, never paused, dirty logging never on. */
    assert_source_runs(src);
    free_machine(m);
    vm__free(src);
}

/* ------------------------------------------------------------------ */
/* d. Without x-migration-iommu-pt the vIOMMU blocks up front           */

static void
test_refused_viommu(void)
{
    migration_params p = { .timeout_ms = 5000 };
    migration_stats st;
    g_autoptr(GError) err = NULL;
    vm_accel accel = best_accel();
    vm *src = running_vm(accel, 64);
    vmm_machine *m = seed004_machine(src, accel, false);
    int sv[2];

    /* The same devices and vIOMMU as seed 004's case: the registry, not
     * the hardware, decides. */
    g_assert_cmpuint(m->migration.blockers->len, ==, 2);
    g_assert_false(has_condition(m, "viommu-passthrough-cancel"));
    socket_pair(sv);
    g_assert_false(migration__send_machine(src, m, sv[0], &p, &st, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "qemu blocker vfio-viommu on hostdev0: hostdev0: "
                                          "Migration is currently not supported with vIOMMU enabled."));
    g_assert_nonnull(strstr(err->message, "qemu blocker vfio-viommu on hostdev1: "));
    g_assert_cmpuint(st.bytes, ==, 0);
    assert_nothing_sent(sv[1]);
    close(sv[0]);
    close(sv[1]);
    assert_source_runs(src);
    free_machine(m);
    vm__free(src);
}

/* ------------------------------------------------------------------ */
/* b. seed 004: a vIOMMU mapping mid-migration cancels it                */

static void
test_seed004_cancel(gconstpointer data)
{
    vm_accel accel = GPOINTER_TO_INT(data);
    mapper mp = { 0 };
    migration_params p = { .downtime_bytes = 4 * MiB, .timeout_ms = 20000,
                           .return_path = true, .progress = mapper_progress, .opaque = &mp };
    g_autoptr(GError) err = NULL;
    migration_stats st;
    GThread *mapper_thread;
    vfio_device *dev;
    receiver *rx;
    vmm_machine *m, *dm;
    vm *src, *dst;
    guint32 word = 0;
    int sv[2];

    if (skip_without(accel))
        return;
    src = running_vm(accel, 128);
    dst = new_vm(accel, 128);
    m = seed004_machine(src, accel, true);
    dm = seed004_machine(dst, accel, true);
    g_assert_true(migration_blockers__empty(&m->migration));
    g_assert_true(has_condition(m, "viommu-passthrough-cancel"));
    dev = g_ptr_array_index(m->devices, 1);
    *(guint32 *)vm__ram_hva(src, MAP_GPA) = 0x5eed0004;

    mp.m = m;
    g_mutex_init(&mp.lock);
    g_cond_init(&mp.cond);
    mapper_thread = g_thread_new("guest-viommu", mapper_main, &mp);
    socket_pair(sv);
    rx = receiver_start(dst, dm, sv[1], &(migration_params){ .timeout_ms = 20000, .autostart = true });
    g_assert_false(migration__send_machine(src, m, sv[0], &p, &st, &err));
    close(sv[0]);
    receiver_join(rx);
    /* A migration that failed before round 1 never let the mapper go:
     * let it, so the test fails on the assertions below, not hangs. */
    g_mutex_lock(&mp.lock);
    mp.go = true;
    g_cond_broadcast(&mp.cond);
    g_mutex_unlock(&mp.lock);
    g_thread_join(mapper_thread);

    /* The source: cancelled with the seed's reason. */
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_test_message("source: %s", err->message);
    g_assert_nonnull(strstr(err->message, "the guest keeps running on the source: " CANCEL_WORDS));
    g_assert_true(mp.active_seen);
    g_assert_false(migration__active(m));
    if (accel == VM_ACCEL_KVM)
        g_assert_cmpuint(mp.rounds_seen, >=, 2);
    /* The destination: told why, and the guest not started there. */
    g_assert_false(rx->ok);
    g_assert_error(rx->err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_test_message("destination: %s", rx->err->message);
    g_assert_true(g_str_has_prefix(rx->err->message, "the source cancelled the migration: " CANCEL_WORDS));
    g_assert_false(vm__started(dst));
    /* The mapping itself worked: the device reads the guest's page. */
    g_assert_no_error(mp.err);
    g_assert_true(mp.ok);
    g_assert_cmpuint(vfio_container__mapped_pages(dev->group->container), ==, MiB / PAGE);
    g_assert_true(soft_iommu__dma_read(vfio_soft__iommu(dev->group->container), MAP_IOVA,
                                       &word, sizeof(word), &err));
    g_assert_cmphex(word, ==, 0x5eed0004);
    g_assert_cmphex(*(guint32 *)vm__ram_hva(src, MAP_GPA), ==, 0x5eed0004);
    /* The guest goes on on the source, its memory intact. */
    assert_source_runs(src);

    g_mutex_clear(&mp.lock);
    g_cond_clear(&mp.cond);
    receiver_free(rx);
    vmm_machine__free(dm);                /* free_machine(m) checks the pins */
    free_machine(m);
    vm__free(dst);
    vm__free(src);
}

/* ------------------------------------------------------------------ */
/* c. The same without a vIOMMU mapping completes                       */

static void
test_seed004_completes(gconstpointer data)
{
    vm_accel accel = GPOINTER_TO_INT(data);
    mapper mp = { 0 };
    migration_params p = { .downtime_bytes = 4 * MiB, .max_rounds = 8, .timeout_ms = 20000,
                           .return_path = true, .progress = count_round, .opaque = &mp };
    g_autoptr(GError) err = NULL;
    migration_stats st;
    receiver *rx;
    vmm_machine *m, *dm;
    vm *src, *dst;
    vm_result r;
    int sv[2];

    if (skip_without(accel))
        return;
    src = running_vm(accel, 128);
    dst = new_vm(accel, 128);
    m = seed004_machine(src, accel, true);
    dm = seed004_machine(dst, accel, true);
    g_assert_true(migration_blockers__empty(&m->migration));
    mp.m = m;
    socket_pair(sv);
    rx = receiver_start(dst, dm, sv[1], NULL);
    g_assert_true(migration__send_machine(src, m, sv[0], &p, &st, &err));
    g_assert_no_error(err);
    close(sv[0]);
    receiver_join(rx);
    g_assert_no_error(rx->err);
    g_assert_true(rx->ok);
    g_test_message("%u rounds, %.1f MiB, downtime %.1f ms", st.rounds, st.bytes / (double)MiB,
                   st.downtime_usec / 1000.0);
    g_assert_true(mp.active_seen);
    g_assert_false(migration__active(m));
    g_assert_cmpuint(mp.rounds_seen, ==, st.rounds);
    /* Switch-over: the source paused, the destination's RAM the same. */
    g_assert_true(vm__paused(src));
    g_assert_true(memcmp(vm__ram_region(src)->ram, vm__ram_region(dst)->ram,
                         vm__ram_region(src)->size) == 0);
    g_assert_true(memcmp(vm__boot_region(src)->ram, vm__boot_region(dst)->ram,
                         vm__boot_region(src)->size) == 0);
    g_assert_cmphex(rx->st.checksum, ==, st.checksum);
    g_assert_cmphex(migration__ram_checksum(dst), ==, st.checksum);
    vm__stop(src, &r);
    g_assert_true(r.checksum_ok);
    receiver_free(rx);
    vmm_machine__free(dm);                /* free_machine(m) checks the pins */
    free_machine(m);
    vm__free(dst);
    vm__free(src);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/migration-blockers/refused-vfio-without-migration", test_refused_blocker);
    g_test_add_func("/migration-blockers/refused-viommu-without-iommu-pt", test_refused_viommu);
    g_test_add_data_func("/migration-blockers/kvm/seed004-viommu-map-cancels",
                         GINT_TO_POINTER(VM_ACCEL_KVM), test_seed004_cancel);
    g_test_add_data_func("/migration-blockers/soft/seed004-viommu-map-cancels",
                         GINT_TO_POINTER(VM_ACCEL_SOFT), test_seed004_cancel);
    g_test_add_data_func("/migration-blockers/kvm/seed004-no-mapping-completes",
                         GINT_TO_POINTER(VM_ACCEL_KVM), test_seed004_completes);
    g_test_add_data_func("/migration-blockers/soft/seed004-no-mapping-completes",
                         GINT_TO_POINTER(VM_ACCEL_SOFT), test_seed004_completes);
    return g_test_run();
}

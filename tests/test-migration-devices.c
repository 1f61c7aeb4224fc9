/*
 * test-migration-devices.c: device state in a live migration of the
 * embedded VMM (migration/savevm.h, migration/devices.c), on the real kernel:
 *
 *  - a soft VFIO function (vfio/migration_v2_savevm.c) whose DMA engine writes a
 *    ring in guest RAM through pinned pages while the guest runs, and a
 *    virtio-balloon holding pages: the device goes RUNNING -> PRE_COPY ->
 *    STOP_COPY -> STOP on the source and RESUMING -> STOP -> RUNNING on
 *    the destination, where its DMA engine carries on from the migrated
 *    sequence; the destination's RAM equals the source's, the pages the
 *    device wrote included (device DMA dirty tracking), the balloon the
 *    same, the guest continues;
 *  - the hazard, shown: with device dirty tracking switched off, pages
 *    the device wrote during the live rounds never reach the destination
 *    (KVM's dirty log does not see DMA), and the RAMs differ;
 *  - a destination without the device fails the migration with a clear
 *    error, and the source device goes back to RUNNING with its DMA.
 */
#include <gio/gio.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "virtio/balloon.h"
#include "migration-rig.h"
#include "migration/migration.h"
#include "migration/savevm.h"
#include "vfio/migration_v2.h"
#include "vfio/soft.h"

#define PAGE 4096ULL
#define RING_PAGES 64u
#define BALLOON_PAGES 256u
#define REC ((guint64)sizeof(vfio_mig_dma_record))
/* How long to wait for the DMA engine: only a broken device takes that
 * long; under valgrind on a loaded machine a few hundred records can take
 * seconds. */
#define WAIT_MS 20000

/* A guest with a migratable VF and a balloon; on the source the guest
 * gave BALLOON_PAGES to the balloon and the VF writes its ring. */
typedef struct side {
    vm *v;
    vmm_machine *m;
    vfio_device *dev;
    guint64 ring, balloon;               /* guest physical addresses */
} side;

static void
side_init(side *s, vm *v, vm_accel accel, bool with_device)
{
    virtio_balloon_config bal = { .alias = "balloon0" };
    guint64 start, end;

    s->v = v;
    s->m = machine_on(v, accel, false, false);
    virtio_balloon__realize(s->m, &bal);
    if (with_device)
        s->dev = add_device(s->m, "hostdev0", 20, true, VFIO_MIGRATION_AUTO, false);
    vmm_machine__done(s->m);
    g_assert_true(migration_blockers__empty(&s->m->migration));
    vm__balloon_range(v, &start, &end);
    s->ring = start + MiB;
    s->balloon = start + 4 * MiB;
}

/* The guest used the pages, then gave them to the balloon; the VF
 * writes a record every 50 us. */
static void
side_load(side *s)
{
    g_autoptr(GError) err = NULL;

    for (guint i = 0; i < BALLOON_PAGES; i++) {
        *(guint32 *)vm__ram_hva(s->v, s->balloon + i * PAGE) = 0xba110000 + i;
        g_assert_true(virtio_balloon__inflate(s->m, s->balloon + i * PAGE, &err));
    }
    g_assert_true(vfio_migration__dma_start(s->dev, s->ring, RING_PAGES * PAGE, 50, &err));
    g_assert_no_error(err);
    g_assert_true(vfio_migration__wait_seq(s->dev, 200, WAIT_MS));
}

static void
side_free(side *s, bool last)
{
    if (last)
        free_machine(s->m);
    else
        vmm_machine__free(s->m);
    vm__free(s->v);
}

/* Pages of pc.ram that differ between the two VMs. */
static guint64
pages_differing(vm *a, vm *b)
{
    memory_region *x = vm__ram_region(a), *y = vm__ram_region(b);
    guint64 n = 0;

    for (guint64 off = 0; off < x->size; off += PAGE)
        n += memcmp((guint8 *)x->ram + off, (guint8 *)y->ram + off, PAGE) != 0;
    return n;
}

/* After round 0, which sent every page (the ring's too), the source's VF
 * writes a few records before the migration goes on: it writes every
 * 50 us anyway, but how many of them fall between round 0 and the switch-
 * over is up to the scheduler (valgrind runs one thread at a time), and
 * the tests assert on pages the device wrote after they were sent.  Live
 * rounds only: at stop-and-copy the device is stopped. */
typedef struct {
    vfio_device *dev;
    guint live_rounds;
} after_round0;

static void
device_writes_after_round0(const migration_round_stats *r, void *opaque)
{
    after_round0 *a = opaque;
    vfio_migration_info i;

    if (r->final || a->live_rounds++ > 0)
        return;
    vfio_migration__get_info(a->dev, &i);
    g_assert_cmpint(i.state, ==, VFIO_MIG_STATE_PRE_COPY);
    g_assert_true(vfio_migration__wait_seq(a->dev, i.seq + 8, WAIT_MS));
}

static gboolean
migrate(side *src, side *dst, migration_stats *st, receiver **rxp, GError **error)
{
    after_round0 a = { src->dev, 0 };
    migration_params p = { .downtime_bytes = 4 * MiB, .max_rounds = 6, .timeout_ms = 20000,
                           .return_path = true, .progress = device_writes_after_round0,
                           .opaque = &a };
    int sv[2];
    gboolean ok;

    socket_pair(sv);
    *rxp = receiver_start(dst->v, dst->m, sv[1], NULL);
    ok = migration__send_machine(src->v, src->m, sv[0], &p, st, error);
    close(sv[0]);
    receiver_join(*rxp);
    return ok;
}

static void
assert_balloon_same(side *src, side *dst)
{
    g_assert_cmpuint(dst->m->balloon->inflated_pages, ==, BALLOON_PAGES);
    g_assert_cmpuint(dst->m->balloon->inflated_pages, ==, src->m->balloon->inflated_pages);
    for (guint i = 0; i < BALLOON_PAGES; i++) {
        guint64 gpa = src->balloon + i * PAGE;

        g_assert_true(g_hash_table_contains(dst->m->balloon->inflated, &gpa));
    }
}

/* Switch-over: the destination's VF holds the source's state, stopped
 * (RESUMING -> STOP), until the guest starts there. */
static void
assert_device_arrived(side *src, side *dst, vfio_migration_info *si, vfio_migration_info *d0)
{
    vfio_migration__get_info(src->dev, si);
    vfio_migration__get_info(dst->dev, d0);
    g_assert_cmpint(si->state, ==, VFIO_MIG_STATE_STOP);
    g_assert_cmpint(d0->state, ==, VFIO_MIG_STATE_STOP);
    g_assert_true(si->dma_enabled);
    g_assert_cmpuint(si->seq, >=, 200);
    g_assert_cmpmem(d0->regs, sizeof(d0->regs), si->regs, sizeof(si->regs));
    g_assert_cmpuint(d0->seq, ==, si->seq);
    g_assert_cmpuint(d0->ring_pos, ==, si->ring_pos);
}

/* On the destination the VF runs again from the migrated state: its
 * records carry on the migrated sequence from the migrated ring position.
 * Its DMA engine writes a record every 50 us, 4096 fill the ring, and how
 * many it wrote while this thread waited is not this test's to predict
 * (under valgrind on a busy machine it was 147,000): so the engine is
 * stopped first, and the checks are on what it left, whatever it got to.
 * The slot at the migrated position took the destination's 1st record,
 * then its (1 + 4096)th, ...: it holds the last of those. */
static void
assert_device_continues(side *dst, const vfio_migration_info *si, const vfio_migration_info *d0)
{
    vfio_migration_info di;
    guint64 n, slots, want, last, seq = 0;

    g_assert_true(vfio_migration__wait_seq(dst->dev, si->seq + 20, WAIT_MS));
    vfio_migration__dma_stop(dst->dev);          /* returns with no DMA in flight */
    vfio_migration__get_info(dst->dev, &di);
    g_assert_cmpint(di.state, ==, VFIO_MIG_STATE_RUNNING);
    g_assert_false(di.dma_active);
    g_assert_cmpuint(di.ring_iova, ==, si->ring_iova);
    g_assert_cmpuint(di.ring_size, ==, si->ring_size);
    n = di.records - d0->records;                /* written since the start */
    slots = di.ring_size / REC;
    g_assert_cmpuint(n, >=, 20);
    want = si->seq + 1 + (n - 1) / slots * slots;
    g_assert_true(vfio_mig_dma_record__check(vm__ram_hva(dst->v, dst->ring + si->ring_pos),
                                             si->ring_pos, &seq));
    g_test_message("device: source stopped at record %" G_GUINT64_FORMAT
                   " (ring offset %" G_GUINT64_FORMAT "); the destination wrote %"
                   G_GUINT64_FORMAT " records, record %" G_GUINT64_FORMAT
                   " is the last one at that offset (want %" G_GUINT64_FORMAT ")",
                   si->seq, si->ring_pos, n, seq, want);
    g_assert_cmpuint(seq, ==, want);
    /* Its counters say the same: n records on from the migrated ones. */
    g_assert_cmpuint(di.seq, ==, si->seq + n);
    g_assert_cmpuint(di.ring_pos, ==, (si->ring_pos + n * REC) % di.ring_size);
    last = (di.ring_pos + di.ring_size - REC) % di.ring_size;
    g_assert_true(vfio_mig_dma_record__check(vm__ram_hva(dst->v, dst->ring + last), last, &seq));
    g_assert_cmpuint(seq, ==, di.seq);
}

static void
test_vfio_and_balloon(gconstpointer data)
{
    vm_accel accel = GPOINTER_TO_INT(data);
    g_autoptr(GError) err = NULL;
    vfio_migration_info si, d0;
    migration_stats st;
    receiver *rx;
    side src, dst;
    vm_result r;
    gboolean ok;

    if (accel == VM_ACCEL_KVM && !kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return;
    }
    side_init(&src, running_vm(accel, 128), accel, true);
    side_init(&dst, new_vm(accel, 128), accel, true);
    side_load(&src);
    ok = migrate(&src, &dst, &st, &rx, &err);
    g_assert_no_error(err);
    g_assert_no_error(rx->err);
    g_assert_true(ok);
    g_test_message("%u rounds, %" G_GUINT64_FORMAT " pages the device wrote, %"
                   G_GUINT64_FORMAT " bytes of device state", st.rounds,
                   st.device_dirty_pages, st.device_bytes);
    g_assert_cmpuint(st.device_bytes, >, 0);
    g_assert_cmpuint(rx->st.device_bytes, ==, st.device_bytes);
    if (accel == VM_ACCEL_KVM)
        g_assert_cmpuint(st.device_dirty_pages, >, 0);
    /* Switch-over: the source paused with its device stopped, so its RAM
     * is final; the destination has every page of it. */
    g_assert_true(vm__paused(src.v));
    g_assert_cmpuint(pages_differing(src.v, dst.v), ==, 0);
    g_assert_cmphex(migration__ram_checksum(src.v), ==, migration__ram_checksum(dst.v));
    assert_balloon_same(&src, &dst);
    assert_device_arrived(&src, &dst, &si, &d0);
    /* Now start the destination, as autostart does: the guest continues
     * (vCPU state migrated) and so does the device. */
    g_assert_true(vm__start(dst.v, &err));
    savevm__vm_running(dst.m, true);
    assert_device_continues(&dst, &si, &d0);
    wait_passes(dst.v, 2);
    vm__stop(dst.v, &r);
    g_assert_true(r.checksum_ok);
    g_assert_cmpuint(r.guest_errors, ==, 0);
    vm__stop(src.v, &r);
    receiver_free(rx);
    side_free(&dst, false);
    side_free(&src, true);
}

/* The hazard the tracking prevents, on KVM where there are live rounds:
 * the ring pages the device wrote after they were sent stay stale on the
 * destination.  Usually the END checksum (of pages as sent) cannot tell
 * and the RAMs differ after a "successful" migration; when the device
 * wrote a page while it was on its way, the checksum catches it and the
 * destination refuses the guest.  Either way the guest's data is lost
 * without the tracking. */
static void
test_without_dirty_tracking(void)
{
    g_autoptr(GError) err = NULL;
    migration_stats st;
    receiver *rx;
    side src, dst;
    vm_result r;
    guint64 differ;
    gboolean ok;

    if (!kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return;
    }
    side_init(&src, running_vm(VM_ACCEL_KVM, 128), VM_ACCEL_KVM, true);
    side_init(&dst, new_vm(VM_ACCEL_KVM, 128), VM_ACCEL_KVM, true);
    side_load(&src);
    vfio_migration__test_disable_dirty_tracking(true);
    ok = migrate(&src, &dst, &st, &rx, &err);
    vfio_migration__test_disable_dirty_tracking(false);
    g_assert_cmpuint(st.device_dirty_pages, ==, 0);
    if (!ok) {
        /* The device rewrote a page between the source hashing it and
         * the socket copying it: the checksum caught the stale page. */
        g_test_message("destination: %s", rx->err->message);
        g_assert_error(rx->err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
        g_assert_nonnull(strstr(rx->err->message, "RAM checksum mismatch after migration"));
        g_assert_false(vm__started(dst.v));
        assert_source_runs(src.v);
    } else {
        /* No race with the socket: the stale pages went unnoticed. */
        g_assert_no_error(err);
        differ = pages_differing(src.v, dst.v);
        g_test_message("%u rounds, %" G_GUINT64_FORMAT " pages differ after the migration",
                       st.rounds, differ);
        g_assert_cmpuint(st.rounds, >=, 2);
        g_assert_cmpuint(differ, >, 0);
        g_assert_cmpuint(differ, <=, RING_PAGES);
        g_assert_cmphex(migration__ram_checksum(src.v), !=, migration__ram_checksum(dst.v));
    }
    vm__stop(dst.v, &r);
    vm__stop(src.v, &r);
    receiver_free(rx);
    side_free(&dst, false);
    side_free(&src, true);
}

/* qemu_loadvm_section_start_full(): state for a device the destination
 * lacks fails the load; the source's VF goes back to RUNNING and DMA. */
static void
test_destination_lacks_device(void)
{
    g_autoptr(GError) err = NULL;
    vm_accel accel = best_accel();
    vfio_migration_info si;
    migration_stats st;
    receiver *rx;
    side src, dst;

    side_init(&src, running_vm(accel, 128), accel, true);
    side_init(&dst, new_vm(accel, 128), accel, false);
    side_load(&src);
    g_assert_false(migrate(&src, &dst, &st, &rx, &err));
    g_test_message("source: %s", err->message);
    g_test_message("destination: %s", rx->err->message);
    g_assert_error(rx->err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    g_assert_nonnull(strstr(rx->err->message, "carries state for device 'vfio:hostdev0', which this destination does not have"));
    g_assert_false(vm__started(dst.v));
    g_assert_nonnull(strstr(err->message, "the guest keeps running on the source"));
    vfio_migration__get_info(src.dev, &si);
    g_assert_cmpint(si.state, ==, VFIO_MIG_STATE_RUNNING);
    g_assert_true(vfio_migration__wait_seq(src.dev, si.seq + 20, WAIT_MS));
    assert_source_runs(src.v);
    receiver_free(rx);
    side_free(&dst, false);
    side_free(&src, true);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/migration-devices/kvm/vfio-dma-and-balloon",
                         GINT_TO_POINTER(VM_ACCEL_KVM), test_vfio_and_balloon);
    g_test_add_data_func("/migration-devices/soft/vfio-dma-and-balloon",
                         GINT_TO_POINTER(VM_ACCEL_SOFT), test_vfio_and_balloon);
    g_test_add_func("/migration-devices/kvm/without-device-dirty-tracking-dma-is-lost",
                    test_without_dirty_tracking);
    g_test_add_func("/migration-devices/destination-lacks-device", test_destination_lacks_device);
    return g_test_run();
}

/*
 * test-vfio-migration.c: VFIO migration v2 of the soft VFIO function on
 * the real kernel: guest RAM is mapped (pinned with io_uring) by a soft
 * container, the device's DMA engine writes a ring through the pinned
 * pages, and its savevm handlers are driven the way migration/outgoing.c drives
 * them, between two machines.
 *
 *  - the FSM: the kernel's arcs (vfio_mig_get_next_state()), the paths
 *    through the P2P states, invalid requests with their error text;
 *  - the data stream: PRE_COPY's initial and dirty bytes, its temporary
 *    end of stream, STOP_COPY's end of stream;
 *  - a full save and load: equal device state, and the destination's DMA
 *    engine going on with the migrated sequence; with device dirty
 *    tracking the destination's ring equals the source's, without it the
 *    destination misses the pages the device wrote;
 *  - DMA logging reports exactly the pages written, and forgets them;
 *  - STOP and STOP_COPY quiesce DMA;
 *  - corrupt, truncated, wrong-version streams leave the device in ERROR
 *    with a clear message;
 *  - a failed migration returns the device to RUNNING with DMA going on;
 *  - no thread, fd or pin is left behind.
 */
#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <liburing.h>

#include "machine.h"
#include "memory/memory.h"
#include "migration/savevm.h"
#include "vfio/device.h"
#include "vfio/migration_v2.h"
#include "vfio/soft.h"
#include "uring-probe.h"

#define MiB (1024ULL * 1024)
#define PAGE 4096ULL
#define RAM_BASE (16 * MiB)
#define RAM_SIZE (8 * MiB)
#define RING_GPA (RAM_BASE + 1 * MiB)
#define RING_SIZE (16 * PAGE)            /* 1024 records */
#define REC 64ULL
#define WAIT_MS 20000

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static guint
count_dir(const char *path, bool skip_io_workers)
{
    DIR *d = opendir(path);
    struct dirent *de;
    guint n = 0;

    g_assert_nonnull(d);
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (skip_io_workers) {
            /* io_uring's io-wq workers are threads of the process that
             * the kernel starts and reaps on its own. */
            g_autofree char *p = g_strdup_printf("%s/%s/comm", path, de->d_name);
            g_autofree char *comm = NULL;

            if (g_file_get_contents(p, &comm, NULL, NULL) && g_str_has_prefix(comm, "iou-"))
                continue;
        }
        n++;
    }
    closedir(d);
    return n;
}

static guint
count_threads(void)
{
    return count_dir("/proc/self/task", true);
}

/* A joined thread leaves /proc/self/task only a little after
 * pthread_join() returns (the kernel clears the tid before it reaps the
 * task): wait for the count to reach @want. */
static guint
threads_settle(guint want)
{
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    guint n;

    while ((n = count_threads()) != want && g_get_monotonic_time() < deadline)
        g_usleep(2000);
    return n;
}

static guint
count_fds(void)
{
    return count_dir("/proc/self/fd", false);
}

/* A machine with guest RAM in a real address space, as
 * test-vfio-balloon.c builds it, and one soft VFIO function on it. */
typedef struct {
    vmm_machine *m;
    memory_region *root, *ram;
    address_space *as;
    vfio_device *dev;
} rig;

typedef struct {
    const char *alias;
    int group;
    bool p2p;
    bool tracking;                       /* caps_dirty_tracking */
} dev_opts;

static vfio_device *
rig_add_device(rig *r, const dev_opts *o)
{
    vfio_device_config dc = { .alias = o->alias, .host = "0000:3b:00.1", .kind = VFIO_KIND_PCI,
                              .group = o->group, .driver = "mlx5_vfio_pci",
                              .caps_migration = true, .caps_dirty_tracking = o->tracking,
                              .caps_p2p = o->p2p,
                              .enable_migration = o->tracking ? VFIO_MIGRATION_AUTO
                                                              : VFIO_MIGRATION_ON };
    g_autoptr(GError) err = NULL;
    vfio_device *dev = vfio_device__realize(r->m, &dc, &err);

    g_assert_no_error(err);
    g_assert_true(dev->migration);
    g_assert_true(vfio_migration__present(dev));
    return dev;
}

static void
rig_init_opts(rig *r, const dev_opts *o)
{
    vmm_machine_config cfg = { .type = VMM_MACHINE_Q35, .kvm = true, .kvm_sync_mmu = true,
                               .vfio_backend = &vfio_backend_soft,
                               .compat = { .vfio_migration = true,
                                           .vfio_enable_migration_onoff = true,
                                           .vfio_multi_device_p2p = true } };

    r->root = memory_region__new_container("system", G_MAXUINT64);
    r->ram = memory_region__new_ram("pc.ram", RAM_SIZE, 0, NULL);
    memory_region__add_subregion(r->root, RAM_BASE, r->ram, 0);
    r->as = address_space__new("memory", r->root);
    r->m = vmm_machine__new(&cfg);
    r->m->memory = r->as;
    r->dev = o ? rig_add_device(r, o) : NULL;
}

static void
rig_init(rig *r, bool p2p)
{
    dev_opts o = { "hostdev0", 20, p2p, true };

    rig_init_opts(r, &o);
}

static void
rig_destroy(rig *r)
{
    vmm_machine__free(r->m);
    address_space__free(r->as);
    memory_region__del_subregion(r->root, r->ram);
    memory_region__free(r->ram);
    memory_region__free(r->root);
    memset(r, 0, sizeof(*r));
}

static guint8 *
hva(rig *r, guint64 gpa)
{
    return (guint8 *)r->ram->ram + (gpa - RAM_BASE);
}

static soft_iommu *
iommu(rig *r)
{
    return vfio_soft__iommu(r->dev->group->container);
}

static void
set_state(vfio_device *dev, vfio_mig_state s)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(vfio_migration__set_state(dev, s, &err));
    g_assert_no_error(err);
    g_assert_cmpint(vfio_migration__state(dev), ==, s);
}

static void
assert_path(vfio_device *dev, const char *want)
{
    g_autofree char *path = vfio_migration__last_path(dev);

    g_assert_cmpstr(path, ==, want);
}

/* A request that must fail with @substrs in the message, state kept. */
static void
set_state_fails(vfio_device *dev, vfio_mig_state s, const char *const *substrs)
{
    g_autoptr(GError) err = NULL;
    vfio_mig_state before = vfio_migration__state(dev);

    g_assert_false(vfio_migration__set_state(dev, s, &err));
    g_assert_nonnull(err);
    g_test_message("expected: %s", err->message);
    for (; *substrs; substrs++)
        g_assert_nonnull(strstr(err->message, *substrs));
    g_assert_cmpint(vfio_migration__state(dev), ==, before);
}

static void
dma_start(rig *r, guint interval_us)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(vfio_migration__dma_start(r->dev, RING_GPA, RING_SIZE, interval_us, &err));
    g_assert_no_error(err);
}

static guint64
seq_of(vfio_device *dev)
{
    vfio_migration_info i;

    vfio_migration__get_info(dev, &i);
    return i.seq;
}

static void
wait_seq(vfio_device *dev, guint64 seq)
{
    g_assert_true(vfio_migration__wait_seq(dev, seq, WAIT_MS));
}

/* Read the whole saving stream (QEMU's vfio_save_complete_precopy loop). */
static GByteArray *
read_stream(vfio_device *dev)
{
    GByteArray *out = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    gssize n;

    do
        n = vfio_migration__save_block(dev, out, &err);
    while (n > 0);
    g_assert_no_error(err);
    g_assert_cmpint(n, ==, 0);
    return out;
}

/* The highest sequence in the ring of @r as the CPU sees it, and where. */
static guint64
ring_max_seq(rig *r, guint64 *pos_out)
{
    guint64 max = 0;

    for (guint64 pos = 0; pos < RING_SIZE; pos += REC) {
        const vfio_mig_dma_record *rec = (const void *)hva(r, RING_GPA + pos);
        guint64 s;

        if (vfio_mig_dma_record__check(rec, pos, &s) && s > max) {
            max = s;
            if (pos_out)
                *pos_out = pos;
        }
    }
    return max;
}

static savevm_entry *
entry(rig *r)
{
    g_autofree char *id = g_strdup_printf("vfio:%s", r->dev->alias);
    savevm_entry *e = savevm__find(r->m, id);

    g_assert_nonnull(e);
    return e;
}

/* ------------------------------------------------------------------ */
/* The FSM                                                             */

static void
test_fsm_table(void)
{
    static const struct {
        bool p2p;
        vfio_mig_state cur, want, next;
    } arcs[] = {
        { false, VFIO_MIG_STATE_RUNNING, VFIO_MIG_STATE_PRE_COPY, VFIO_MIG_STATE_PRE_COPY },
        { false, VFIO_MIG_STATE_PRE_COPY, VFIO_MIG_STATE_STOP_COPY, VFIO_MIG_STATE_STOP_COPY },
        { true, VFIO_MIG_STATE_PRE_COPY, VFIO_MIG_STATE_STOP_COPY, VFIO_MIG_STATE_PRE_COPY_P2P },
        { false, VFIO_MIG_STATE_STOP_COPY, VFIO_MIG_STATE_STOP, VFIO_MIG_STATE_STOP },
        { false, VFIO_MIG_STATE_STOP, VFIO_MIG_STATE_RESUMING, VFIO_MIG_STATE_RESUMING },
        { false, VFIO_MIG_STATE_RESUMING, VFIO_MIG_STATE_STOP, VFIO_MIG_STATE_STOP },
        { false, VFIO_MIG_STATE_STOP, VFIO_MIG_STATE_RUNNING, VFIO_MIG_STATE_RUNNING },
        { true, VFIO_MIG_STATE_STOP, VFIO_MIG_STATE_RUNNING, VFIO_MIG_STATE_RUNNING_P2P },
        { false, VFIO_MIG_STATE_PRE_COPY, VFIO_MIG_STATE_RUNNING, VFIO_MIG_STATE_RUNNING },
        { false, VFIO_MIG_STATE_RUNNING, VFIO_MIG_STATE_STOP, VFIO_MIG_STATE_STOP },
        { true, VFIO_MIG_STATE_RUNNING, VFIO_MIG_STATE_STOP, VFIO_MIG_STATE_RUNNING_P2P },
        { false, VFIO_MIG_STATE_RUNNING, VFIO_MIG_STATE_STOP_COPY, VFIO_MIG_STATE_STOP },
        { false, VFIO_MIG_STATE_RESUMING, VFIO_MIG_STATE_RUNNING, VFIO_MIG_STATE_STOP },
    };
    vfio_mig_state next;

    for (guint i = 0; i < G_N_ELEMENTS(arcs); i++) {
        g_assert_true(vfio_migration__next_state(arcs[i].p2p, arcs[i].cur, arcs[i].want, &next));
        g_assert_cmpstr(vfio_mig_state__to_string(next), ==,
                        vfio_mig_state__to_string(arcs[i].next));
    }
    /* Blocked: STOP_COPY or RESUMING to PRE_COPY (the kernel's loop spun
     * on the ERROR sentinel here before its fix), anything from ERROR, to
     * ERROR, and the P2P states without P2P. */
    g_assert_false(vfio_migration__next_state(false, VFIO_MIG_STATE_STOP_COPY,
                                              VFIO_MIG_STATE_PRE_COPY, &next));
    g_assert_false(vfio_migration__next_state(true, VFIO_MIG_STATE_STOP_COPY,
                                              VFIO_MIG_STATE_PRE_COPY_P2P, &next));
    g_assert_false(vfio_migration__next_state(false, VFIO_MIG_STATE_RESUMING,
                                              VFIO_MIG_STATE_PRE_COPY, &next));
    g_assert_false(vfio_migration__next_state(false, VFIO_MIG_STATE_ERROR,
                                              VFIO_MIG_STATE_RUNNING, &next));
    g_assert_false(vfio_migration__next_state(false, VFIO_MIG_STATE_RUNNING,
                                              VFIO_MIG_STATE_ERROR, &next));
    g_assert_false(vfio_migration__next_state(false, VFIO_MIG_STATE_RUNNING,
                                              VFIO_MIG_STATE_RUNNING_P2P, &next));
    /* Every request either fails at once or reaches its state in at most
     * four arcs (the longest: PRE_COPY -> RESUMING), never through an
     * unsupported state. */
    for (int p2p = 0; p2p < 2; p2p++) {
        for (int cur = 0; cur < VFIO_MIG_STATE_NUM; cur++) {
            for (int want = 0; want < VFIO_MIG_STATE_NUM; want++) {
                vfio_mig_state s = cur;
                int steps = 0;

                if (!p2p && (cur == VFIO_MIG_STATE_RUNNING_P2P || cur == VFIO_MIG_STATE_PRE_COPY_P2P))
                    continue;
                while (s != (vfio_mig_state)want &&
                       vfio_migration__next_state(p2p, s, want, &next)) {
                    g_assert_true(p2p || (next != VFIO_MIG_STATE_RUNNING_P2P &&
                                          next != VFIO_MIG_STATE_PRE_COPY_P2P));
                    s = next;
                    g_assert_cmpint(++steps, <=, 4);
                }
            }
        }
    }
    g_assert_cmpstr(vfio_mig_state__to_string(VFIO_MIG_STATE_PRE_COPY_P2P), ==, "PRE_COPY_P2P");
    g_assert_cmpstr(vfio_mig_state__to_string(42), ==, "UNKNOWN STATE");
}

static void
test_fsm_device(void)
{
    rig r;
    const char *const stop_copy_to_pre_copy[] = { "hostdev0", "failed setting device state to PRE_COPY",
                                                  "from STOP_COPY to PRE_COPY", NULL };
    const char *const no_p2p[] = { "hostdev0", "RUNNING_P2P", "does not support", NULL };
    const char *const to_error[] = { "hostdev0", "ERROR cannot be requested", NULL };
    const char *const from_error[] = { "hostdev0", "RUNNING", "in ERROR", "reset", NULL };
    const char *const resuming_to_pre_copy[] = { "from RESUMING to PRE_COPY", NULL };
    g_autoptr(GError) err = NULL;

    SKIP_IF_NO_URING();
    rig_init(&r, false);
    g_assert_cmpint(vfio_migration__state(r.dev), ==, VFIO_MIG_STATE_RUNNING);
    g_assert_cmpint(vfio_migration__data_fd(r.dev), ==, -1);

    /* The source's path. */
    set_state(r.dev, VFIO_MIG_STATE_PRE_COPY);
    assert_path(r.dev, "RUNNING -> PRE_COPY");
    g_assert_cmpint(vfio_migration__data_fd(r.dev), >=, 0);
    set_state(r.dev, VFIO_MIG_STATE_STOP_COPY);
    assert_path(r.dev, "PRE_COPY -> STOP_COPY");
    g_assert_cmpint(vfio_migration__data_fd(r.dev), >=, 0);
    set_state_fails(r.dev, VFIO_MIG_STATE_PRE_COPY, stop_copy_to_pre_copy);
    set_state_fails(r.dev, VFIO_MIG_STATE_RUNNING_P2P, no_p2p);
    set_state(r.dev, VFIO_MIG_STATE_STOP);
    g_assert_cmpint(vfio_migration__data_fd(r.dev), ==, -1);
    set_state_fails(r.dev, VFIO_MIG_STATE_ERROR, to_error);

    /* The destination's. */
    set_state(r.dev, VFIO_MIG_STATE_RESUMING);
    g_assert_cmpint(vfio_migration__data_fd(r.dev), >=, 0);
    set_state_fails(r.dev, VFIO_MIG_STATE_PRE_COPY, resuming_to_pre_copy);

    /* RESUMING -> STOP with nothing written: ERROR, and only a reset
     * leaves it. */
    g_assert_false(vfio_migration__set_state(r.dev, VFIO_MIG_STATE_STOP, &err));
    g_test_message("expected: %s", err->message);
    g_assert_nonnull(strstr(err->message, "hostdev0: failed setting device state to STOP"));
    g_assert_nonnull(strstr(err->message, "truncated"));
    g_assert_nonnull(strstr(err->message, "ERROR"));
    g_clear_error(&err);
    g_assert_cmpint(vfio_migration__state(r.dev), ==, VFIO_MIG_STATE_ERROR);
    g_assert_cmpint(vfio_migration__data_fd(r.dev), ==, -1);
    set_state_fails(r.dev, VFIO_MIG_STATE_RUNNING, from_error);
    vfio_migration__reset(r.dev);
    g_assert_cmpint(vfio_migration__state(r.dev), ==, VFIO_MIG_STATE_RUNNING);

    /* Requests through several arcs. */
    set_state(r.dev, VFIO_MIG_STATE_STOP_COPY);
    assert_path(r.dev, "RUNNING -> STOP -> STOP_COPY");
    set_state(r.dev, VFIO_MIG_STATE_RESUMING);
    assert_path(r.dev, "STOP_COPY -> STOP -> RESUMING");
    vfio_migration__reset(r.dev);
    rig_destroy(&r);

    /* With P2P the kernel walks through the P2P states. */
    rig_init(&r, true);
    set_state(r.dev, VFIO_MIG_STATE_STOP);
    assert_path(r.dev, "RUNNING -> RUNNING_P2P -> STOP");
    set_state(r.dev, VFIO_MIG_STATE_RUNNING);
    assert_path(r.dev, "STOP -> RUNNING_P2P -> RUNNING");
    set_state(r.dev, VFIO_MIG_STATE_PRE_COPY);
    set_state(r.dev, VFIO_MIG_STATE_STOP_COPY);
    assert_path(r.dev, "PRE_COPY -> PRE_COPY_P2P -> STOP_COPY");
    set_state(r.dev, VFIO_MIG_STATE_RUNNING);
    set_state(r.dev, VFIO_MIG_STATE_PRE_COPY);
    set_state(r.dev, VFIO_MIG_STATE_RESUMING);
    assert_path(r.dev, "PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP -> RESUMING");
    rig_destroy(&r);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, 0);
}

/* ------------------------------------------------------------------ */
/* The data stream                                                     */

static void
test_data_stream(void)
{
    rig r;
    g_autoptr(GError) err = NULL;
    g_autoptr(GByteArray) out = g_byte_array_new();
    g_autoptr(GByteArray) rest = NULL;
    guint64 initial, dirty, total = 0;
    guint8 c;
    int fd;

    SKIP_IF_NO_URING();
    rig_init(&r, false);
    /* GET_PRECOPY_INFO outside PRE_COPY fails. */
    g_assert_false(vfio_migration__precopy_info(r.dev, &initial, &dirty, &err));
    g_assert_nonnull(strstr(err->message, "not in PRE_COPY"));
    g_clear_error(&err);

    set_state(r.dev, VFIO_MIG_STATE_PRE_COPY);
    fd = vfio_migration__data_fd(r.dev);
    g_assert_true(vfio_migration__precopy_info(r.dev, &initial, &dirty, &err));
    g_assert_cmpuint(initial, >, 0);
    g_assert_cmpuint(dirty, ==, 0);
    /* Part of the initial data read straight from the data_fd. */
    g_assert_cmpint(read(fd, &c, 1), ==, 1);
    g_assert_true(vfio_migration__precopy_info(r.dev, &initial, &dirty, &err));
    g_assert_cmpuint(initial, >, 0);
    total += 1;
    total += (guint64)vfio_migration__save_block(r.dev, out, &err);
    g_assert_no_error(err);
    g_assert_true(vfio_migration__precopy_info(r.dev, &initial, &dirty, &err));
    g_assert_cmpuint(initial + dirty, ==, 0);
    /* The temporary end of stream (ENOMSG in the kernel, EAGAIN here). */
    g_assert_cmpint(vfio_migration__save_block(r.dev, out, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_cmpint(read(fd, &c, 1), ==, -1);
    g_assert_cmpint(errno, ==, EAGAIN);

    /* A register change becomes dirty bytes. */
    g_assert_true(vfio_migration__reg_write(r.dev, VFIO_MIG_REG_SCRATCH0, 0xfeed, &err));
    g_assert_true(vfio_migration__precopy_info(r.dev, &initial, &dirty, &err));
    g_assert_cmpuint(initial, ==, 0);
    g_assert_cmpuint(dirty, ==, total);          /* one register chunk again */
    total += (guint64)vfio_migration__save_block(r.dev, out, &err);
    g_assert_true(vfio_migration__precopy_info(r.dev, &initial, &dirty, &err));
    g_assert_cmpuint(initial + dirty, ==, 0);

    /* STOP_COPY: the rest, then a real end of stream. */
    set_state(r.dev, VFIO_MIG_STATE_STOP_COPY);
    g_assert_cmpint(vfio_migration__data_fd(r.dev), ==, fd);      /* the same data_fd */
    rest = read_stream(r.dev);
    g_assert_cmpuint(rest->len, >, 0);
    g_assert_cmpint(read(fd, &c, 1), ==, 0);
    g_assert_cmpint(vfio_migration__save_block(r.dev, out, &err), ==, 0);
    /* Registers are frozen outside the running states. */
    g_assert_false(vfio_migration__reg_write(r.dev, VFIO_MIG_REG_SCRATCH0, 1, &err));
    g_assert_nonnull(strstr(err->message, "STOP_COPY"));
    g_clear_error(&err);
    set_state(r.dev, VFIO_MIG_STATE_STOP);
    g_assert_cmpint(vfio_migration__save_block(r.dev, out, &err), ==, -1);
    g_assert_nonnull(strstr(err->message, "not saving"));
    g_clear_error(&err);
    rig_destroy(&r);
}

/* ------------------------------------------------------------------ */
/* Migration between two machines                                     */

typedef struct {
    rig *src, *dst;
    GHashTable *marked;                  /* page gpa set, all rounds */
    guint64 copied;
} ram_mig;

static void
copy_page(ram_mig *mg, guint64 gpa)
{
    memcpy(hva(mg->dst, gpa), hva(mg->src, gpa), PAGE);
    mg->copied++;
}

/* savevm_dirty_fn: the RAM side sends these pages again. */
static void
mark_pages(void *opaque, guint64 gpa, guint64 size)
{
    ram_mig *mg = opaque;

    g_assert_cmpuint(gpa % PAGE, ==, 0);
    g_assert_cmpuint(size % PAGE, ==, 0);
    g_assert_cmpuint(gpa, >=, RAM_BASE);
    g_assert_cmpuint(gpa + size, <=, RAM_BASE + RAM_SIZE);
    for (guint64 p = gpa; p < gpa + size; p += PAGE) {
        guint64 *key = g_new(guint64, 1);

        *key = p;
        g_hash_table_add(mg->marked, key);
        copy_page(mg, p);
    }
}

static void
sync_dirty(ram_mig *mg, savevm_entry *e)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(e->ops->sync_dirty(e->opaque, mark_pages, mg, &err));
    g_assert_no_error(err);
}

static void
carry(savevm_entry *d, GByteArray *bytes)
{
    g_autoptr(GError) err = NULL;

    if (!bytes->len)
        return;
    g_assert_true(d->ops->load_state(d->opaque, bytes->data, bytes->len, &err));
    g_assert_no_error(err);
    g_byte_array_set_size(bytes, 0);
}

/* What migration/outgoing.c and incoming.c do: setup, a bulk copy of RAM, rounds of device data
 * and dirty pages, the switch-over with the vCPUs stopped. */
static void
test_migrate(gconstpointer data)
{
    bool tracking = GPOINTER_TO_INT(data);
    rig src, dst;
    ram_mig mg = { &src, &dst, g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL), 0 };
    g_autoptr(GByteArray) bytes = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    savevm_entry *e, *d;
    vfio_migration_info si, di;
    guint64 bulk_seq, pos = 0, differing = 0, s0;

    SKIP_IF_NO_URING();
    rig_init(&src, false);
    rig_init(&dst, false);
    e = entry(&src);
    d = entry(&dst);
    g_assert_true(e->opaque == src.dev);
    g_assert_true(vfio_migration__reg_write(src.dev, VFIO_MIG_REG_SCRATCH0 + 1, 0xabcd0001, &err));
    dma_start(&src, 100);
    wait_seq(src.dev, 40);
    vfio_migration__test_disable_dirty_tracking(!tracking);

    /* The destination waits in RESUMING; the source goes PRE_COPY and
     * starts DMA logging. */
    g_assert_true(d->ops->load_setup(d->opaque, &err));
    g_assert_no_error(err);
    g_assert_cmpint(vfio_migration__state(dst.dev), ==, VFIO_MIG_STATE_RESUMING);
    g_assert_true(e->ops->save_setup(e->opaque, &err));
    g_assert_no_error(err);
    vfio_migration__get_info(src.dev, &si);
    g_assert_cmpint(si.state, ==, VFIO_MIG_STATE_PRE_COPY);
    g_assert_true(si.logging);
    g_assert_true(si.dma_active);            /* PRE_COPY keeps DMA going */

    /* Round 0: all of RAM. */
    memcpy(dst.ram->ram, src.ram->ram, RAM_SIZE);
    bulk_seq = seq_of(src.dev);
    for (int round = 0; round < 4; round++) {
        wait_seq(src.dev, seq_of(src.dev) + 40);
        if (round == 1)
            g_assert_true(vfio_migration__reg_write(src.dev, VFIO_MIG_REG_SCRATCH0, 0x5eed, &err));
        g_assert_true(e->ops->save_iterate(e->opaque, bytes, &err));
        g_assert_no_error(err);
        if (round == 0 || round == 1)
            g_assert_cmpuint(bytes->len, >, 0);  /* initial data, then the changed registers */
        carry(d, bytes);
        sync_dirty(&mg, e);
    }
    g_assert_cmpuint(seq_of(src.dev), >, bulk_seq + 150);

    /* Switch-over: vm_stop -> vfio_vmstate_change(): PRE_COPY -> STOP_COPY. */
    g_assert_true(vfio_migration__vm_running(src.m, false, &err));
    g_assert_no_error(err);
    g_assert_cmpint(vfio_migration__state(src.dev), ==, VFIO_MIG_STATE_STOP_COPY);
    sync_dirty(&mg, e);
    g_assert_true(e->ops->save_complete(e->opaque, bytes, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(bytes->len, >, 0);
    carry(d, bytes);
    e->ops->save_cleanup(e->opaque, false);
    vfio_migration__get_info(src.dev, &si);
    g_assert_cmpint(si.state, ==, VFIO_MIG_STATE_STOP);
    g_assert_false(si.logging);
    g_assert_false(si.dma_active);
    g_assert_true(d->ops->load_complete(d->opaque, &err));
    g_assert_no_error(err);
    d->ops->load_cleanup(d->opaque, false);
    vfio_migration__test_disable_dirty_tracking(false);

    /* The device state arrived whole. */
    vfio_migration__get_info(dst.dev, &di);
    g_assert_cmpint(di.state, ==, VFIO_MIG_STATE_STOP);
    g_assert_cmpmem(di.regs, sizeof(di.regs), si.regs, sizeof(si.regs));
    g_assert_cmphex(di.regs[VFIO_MIG_REG_SCRATCH0], ==, 0x5eed);
    g_assert_cmpuint(di.ring_pos, ==, si.ring_pos);
    g_assert_cmpuint(di.seq, ==, si.seq);
    g_assert_cmpuint(di.ring_iova, ==, RING_GPA);
    g_assert_true(di.dma_enabled);
    g_assert_cmpuint(ring_max_seq(&src, &pos), ==, si.seq);
    g_assert_cmpuint((pos + REC) % RING_SIZE, ==, si.ring_pos);

    for (guint64 p = 0; p < RING_SIZE; p += PAGE)
        differing += memcmp(hva(&src, RING_GPA + p), hva(&dst, RING_GPA + p), PAGE) != 0;
    g_test_message("%s dirty tracking: %u pages marked, %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                   " ring pages differ on the destination, its last record %" G_GUINT64_FORMAT
                   " of %" G_GUINT64_FORMAT,
                   tracking ? "with" : "without", g_hash_table_size(mg.marked), differing,
                   (guint64)(RING_SIZE / PAGE), ring_max_seq(&dst, NULL), si.seq);
    if (tracking) {
        /* Every page the device wrote was sent again: the guest ring on
         * the destination is the source's, exactly. */
        g_assert_cmpuint(g_hash_table_size(mg.marked), >, 0);
        g_assert_cmpuint(differing, ==, 0);
        g_assert_cmpmem(dst.ram->ram, RAM_SIZE, src.ram->ram, RAM_SIZE);
        g_assert_cmpuint(ring_max_seq(&dst, NULL), ==, si.seq);
    } else {
        /* Nothing marked: the destination has the ring as the bulk copy
         * saw it and misses what the device wrote since. */
        g_assert_cmpuint(g_hash_table_size(mg.marked), ==, 0);
        g_assert_cmpuint(differing, >, 0);
        g_assert_cmpuint(ring_max_seq(&dst, NULL), <, si.seq);
    }

    /* The guest starts on the destination (vfio_vmstate_change(running),
     * as migration__receive_machine() calls it): the engine goes on from
     * the migrated sequence and position.  It writes a record every
     * 100 us and 1024 fill the ring: how many it wrote while this thread
     * waited is the scheduler's business (a busy machine, valgrind), so
     * its DMA is stopped before the ring is read, and the record at the
     * migrated position is the last of its 1st, (1 + 1024)th, ... */
    savevm__vm_running(dst.m, true);
    g_assert_cmpint(vfio_migration__state(dst.dev), ==, VFIO_MIG_STATE_RUNNING);
    wait_seq(dst.dev, si.seq + 20);
    vfio_migration__dma_stop(dst.dev);           /* returns with no DMA in flight */
    {
        const vfio_mig_dma_record *rec = (const void *)hva(&dst, RING_GPA + si.ring_pos);
        vfio_migration_info dn;
        guint64 s, n;

        vfio_migration__get_info(dst.dev, &dn);
        g_assert_false(dn.dma_active);
        n = dn.records - di.records;             /* written since it runs */
        g_assert_cmpuint(n, >=, 20);
        g_assert_cmpuint(dn.seq, ==, si.seq + n);
        g_assert_cmpuint(dn.ring_pos, ==, (si.ring_pos + n * REC) % RING_SIZE);
        g_assert_true(vfio_mig_dma_record__check(rec, si.ring_pos, &s));
        g_assert_cmpuint(s, ==, si.seq + 1 + (n - 1) / (RING_SIZE / REC) * (RING_SIZE / REC));
        g_assert_cmpuint(ring_max_seq(&dst, &pos), ==, dn.seq);
        g_assert_cmpuint((pos + REC) % RING_SIZE, ==, dn.ring_pos);
    }
    /* The source stays stopped: its ring and sequence do not move. */
    s0 = seq_of(src.dev);
    g_usleep(20000);
    g_assert_cmpuint(seq_of(src.dev), ==, s0);
    g_assert_cmpuint(s0, ==, si.seq);

    g_hash_table_unref(mg.marked);
    rig_destroy(&dst);
    rig_destroy(&src);
    g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, 0);
}

/* ------------------------------------------------------------------ */
/* DMA logging                                                         */

static gboolean
bit(const guint64 *bitmap, guint64 n)
{
    return (bitmap[n / 64] >> (n % 64)) & 1;
}

static void
report(rig *r, guint64 iova, guint64 len, guint64 ps, guint64 *bitmap)
{
    g_autoptr(GError) err = NULL;

    memset(bitmap, 0, (len / ps + 63) / 64 * 8);
    g_assert_true(vfio_migration__dma_logging_report(r->dev, iova, len, ps, bitmap, &err));
    g_assert_no_error(err);
}

static guint
popcount(const guint64 *bitmap, guint64 bits)
{
    guint n = 0;

    for (guint64 i = 0; i < bits; i++)
        n += bit(bitmap, i);
    return n;
}

static void
test_dma_logging(void)
{
    rig r;
    guint64 pages = RAM_SIZE / PAGE;
    g_autofree guint64 *bitmap = g_new0(guint64, pages / 64 + 1);
    g_autofree gboolean *want = g_new0(gboolean, pages);
    g_autoptr(GError) err = NULL;
    soft_dirty_range all = { RAM_BASE, RAM_SIZE };
    soft_dirty_range two[2] = { { RAM_BASE + 2 * MiB, MiB }, { RAM_BASE, MiB } };
    soft_dirty_range bad[2] = { { RAM_BASE, 2 * MiB }, { RAM_BASE + MiB, MiB } };
    guint8 buf[512];
    guint64 ps = 512, seq0, pos0, nwant = 0;
    vfio_migration_info i0, i1;

    SKIP_IF_NO_URING();
    rig_init(&r, false);
    memset(buf, 0x5a, sizeof(buf));

    /* Not started: a report is an error (uAPI). */
    g_assert_false(vfio_migration__dma_logging_report(r.dev, RAM_BASE, RAM_SIZE, PAGE, bitmap, &err));
    g_assert_nonnull(strstr(err->message, "not started"));
    g_clear_error(&err);
    /* Bad ranges. */
    g_assert_false(vfio_migration__dma_logging_start(r.dev, bad, 2, &ps, &err));
    g_assert_nonnull(strstr(err->message, "overlap"));
    g_clear_error(&err);
    bad[0].iova += 512;
    ps = PAGE;
    g_assert_false(vfio_migration__dma_logging_start(r.dev, bad, 1, &ps, &err));
    g_assert_nonnull(strstr(err->message, "aligned"));
    g_clear_error(&err);
    ps = 3000;
    g_assert_false(vfio_migration__dma_logging_start(r.dev, &all, 1, &ps, &err));
    g_assert_nonnull(strstr(err->message, "power of two"));
    g_clear_error(&err);

    /* The device's own engine: stopped, logging on, run, stop: the report
     * is exactly the pages its records went to. */
    dma_start(&r, 50);
    wait_seq(r.dev, 10);
    set_state(r.dev, VFIO_MIG_STATE_STOP);
    vfio_migration__get_info(r.dev, &i0);
    seq0 = i0.seq;
    pos0 = i0.ring_pos;
    ps = 512;                                    /* a hint below 4 KiB */
    g_assert_true(vfio_migration__dma_logging_start(r.dev, &all, 1, &ps, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(ps, ==, PAGE);
    g_assert_false(vfio_migration__dma_logging_start(r.dev, &all, 1, &ps, &err));
    g_assert_nonnull(strstr(err->message, "already started"));
    g_clear_error(&err);
    set_state(r.dev, VFIO_MIG_STATE_RUNNING);
    wait_seq(r.dev, seq0 + 150);                 /* > 2 pages of records */
    set_state(r.dev, VFIO_MIG_STATE_STOP);
    vfio_migration__get_info(r.dev, &i1);
    for (guint64 s = seq0 + 1; s <= i1.seq; s++) {
        guint64 pos = (pos0 + (s - seq0 - 1) * REC) % RING_SIZE;
        guint64 page = (RING_GPA + pos - RAM_BASE) / PAGE;

        if (!want[page]) {
            want[page] = TRUE;
            nwant++;
        }
    }
    report(&r, RAM_BASE, RAM_SIZE, PAGE, bitmap);
    g_test_message("%" G_GUINT64_FORMAT " records, %u pages reported, %" G_GUINT64_FORMAT " expected",
                   i1.seq - seq0, popcount(bitmap, pages), nwant);
    g_assert_cmpuint(nwant, >=, 3);
    for (guint64 p = 0; p < pages; p++)
        g_assert_cmpint(bit(bitmap, p), ==, want[p]);
    /* Reported means forgotten. */
    report(&r, RAM_BASE, RAM_SIZE, PAGE, bitmap);
    g_assert_cmpuint(popcount(bitmap, pages), ==, 0);

    /* Writes through soft_iommu__dma_write: a write across a page border
     * marks both pages; a read marks nothing. */
    g_assert_true(soft_iommu__dma_write(iommu(&r), RAM_BASE + 5 * PAGE + 3900, buf, 400, &err));
    g_assert_true(soft_iommu__dma_read(iommu(&r), RAM_BASE + 9 * PAGE, buf, 400, &err));
    g_assert_no_error(err);
    /* A report of part of the range forgets only that part. */
    report(&r, RAM_BASE + 6 * PAGE, 2 * PAGE, PAGE, bitmap);
    g_assert_cmpuint(popcount(bitmap, 2), ==, 1);
    g_assert_true(bit(bitmap, 0));
    /* Coarser report pages than logged: the bit of their pair. */
    report(&r, RAM_BASE, RAM_SIZE, 2 * PAGE, bitmap);
    g_assert_cmpuint(popcount(bitmap, pages / 2), ==, 1);
    g_assert_true(bit(bitmap, 2));               /* pages 4-5 */
    vfio_migration__dma_logging_stop(r.dev);

    /* Without logging nothing is recorded: a write now is not in the next
     * log. */
    g_assert_true(soft_iommu__dma_write(iommu(&r), RAM_BASE + 7 * PAGE, buf, 64, &err));
    g_assert_false(vfio_migration__dma_logging_report(r.dev, RAM_BASE, RAM_SIZE, PAGE, bitmap, &err));
    g_clear_error(&err);
    /* Two ranges: a write between them is not logged. */
    ps = PAGE;
    g_assert_true(vfio_migration__dma_logging_start(r.dev, two, 2, &ps, &err));
    g_assert_true(soft_iommu__dma_write(iommu(&r), RAM_BASE + MiB + 5 * PAGE, buf, 64, &err));
    g_assert_true(soft_iommu__dma_write(iommu(&r), RAM_BASE + 2 * MiB + PAGE, buf, 64, &err));
    g_assert_no_error(err);
    report(&r, RAM_BASE, RAM_SIZE, PAGE, bitmap);
    g_assert_cmpuint(popcount(bitmap, pages), ==, 1);
    g_assert_true(bit(bitmap, 2 * MiB / PAGE + 1));
    vfio_migration__dma_logging_stop(r.dev);
    rig_destroy(&r);
}

/* ------------------------------------------------------------------ */
/* STOP quiesces                                                       */

static void
assert_quiet(rig *r, const guint8 *snapshot)
{
    guint64 s0 = seq_of(r->dev);
    vfio_migration_info i;

    g_usleep(30000);                             /* hundreds of intervals */
    vfio_migration__get_info(r->dev, &i);
    g_assert_false(i.dma_active);
    g_assert_cmpuint(i.seq, ==, s0);
    g_assert_cmpmem(hva(r, RING_GPA), RING_SIZE, snapshot, RING_SIZE);
}

static void
test_stop_quiesces(void)
{
    rig r;
    g_autofree guint8 *snap = g_malloc(RING_SIZE);
    guint64 s;

    SKIP_IF_NO_URING();
    rig_init(&r, false);
    dma_start(&r, 50);
    wait_seq(r.dev, 20);

    /* STOP returns with no DMA in flight: from then on not a byte of the
     * guest ring changes. */
    set_state(r.dev, VFIO_MIG_STATE_STOP);
    memcpy(snap, hva(&r, RING_GPA), RING_SIZE);
    assert_quiet(&r, snap);
    g_assert_false(vfio_migration__wait_seq(r.dev, seq_of(r.dev) + 1, 10));

    /* RUNNING again: the engine goes on where it was. */
    s = seq_of(r.dev);
    set_state(r.dev, VFIO_MIG_STATE_RUNNING);
    wait_seq(r.dev, s + 10);
    g_assert_cmpint(memcmp(hva(&r, RING_GPA), snap, RING_SIZE), !=, 0);

    /* PRE_COPY keeps it running, STOP_COPY stops it. */
    set_state(r.dev, VFIO_MIG_STATE_PRE_COPY);
    wait_seq(r.dev, seq_of(r.dev) + 10);
    set_state(r.dev, VFIO_MIG_STATE_STOP_COPY);
    memcpy(snap, hva(&r, RING_GPA), RING_SIZE);
    assert_quiet(&r, snap);

    /* The driver's own stop (CTRL.DMA_ENABLE) too. */
    set_state(r.dev, VFIO_MIG_STATE_RUNNING);
    wait_seq(r.dev, seq_of(r.dev) + 5);
    vfio_migration__dma_stop(r.dev);
    memcpy(snap, hva(&r, RING_GPA), RING_SIZE);
    assert_quiet(&r, snap);
    rig_destroy(&r);
}

/* ------------------------------------------------------------------ */
/* Corrupt streams                                                     */

/* CRC-32 (IEEE), to forge a chunk that passes the check. */
static guint32
crc32(const guint8 *p, gsize len)
{
    guint32 crc = 0xffffffffu;

    for (gsize i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static GByteArray *
saved_stream(rig *r)
{
    GByteArray *s;

    dma_start(r, 50);
    wait_seq(r->dev, 10);
    set_state(r->dev, VFIO_MIG_STATE_PRE_COPY);
    s = read_stream(r->dev);                     /* the initial data */
    set_state(r->dev, VFIO_MIG_STATE_STOP_COPY);
    {
        g_autoptr(GByteArray) rest = read_stream(r->dev);

        g_byte_array_append(s, rest->data, rest->len);
    }
    set_state(r->dev, VFIO_MIG_STATE_STOP);
    return s;
}

typedef enum {
    CUT_TAIL, CUT_HEADER, FLIP_PAYLOAD, VERSION, MAGIC, EMPTY, TRAILING, FOREIGN_ID,
} mutation;

static void
test_corrupt_stream(void)
{
    static const struct {
        mutation how;
        const char *expect;
    } cases[] = {
        { CUT_TAIL, "truncated" },
        { CUT_HEADER, "truncated" },
        { FLIP_PAYLOAD, "CRC-32 mismatch" },
        { VERSION, "stream version 7" },
        { MAGIC, "no chunk magic" },
        { EMPTY, "truncated" },
        { TRAILING, "follow the final chunk" },
        { FOREIGN_ID, "from a device with ID 0x1d6a0000" },
    };
    rig src, dst;
    g_autoptr(GByteArray) good = NULL;
    g_autoptr(GError) err = NULL;
    vfio_migration_info si, di;
    savevm_entry *d;

    SKIP_IF_NO_URING();
    rig_init(&src, false);
    rig_init(&dst, false);
    good = saved_stream(&src);
    vfio_migration__get_info(src.dev, &si);
    d = entry(&dst);

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GByteArray) s = g_byte_array_new();

        g_byte_array_append(s, good->data, good->len);
        switch (cases[i].how) {
        case CUT_TAIL:
            g_byte_array_set_size(s, s->len - 10);
            break;
        case CUT_HEADER:
            g_byte_array_set_size(s, 8);
            break;
        case FLIP_PAYLOAD:
            s->data[s->len - 3] ^= 0x40;
            break;
        case VERSION:
            s->data[4] = 7;
            break;
        case MAGIC:
            s->data[0] ^= 0xff;
            break;
        case EMPTY:
            g_byte_array_set_size(s, 0);
            break;
        case TRAILING:
            g_byte_array_append(s, good->data, 20);
            break;
        case FOREIGN_ID: {
            /* Register 0 (the ID) of the final chunk, CRC made good. */
            guint8 *hdr = s->data + s->len - 100, *payload = hdr + 16;
            guint32 crc;

            payload[4] ^= 0x01;
            crc = GUINT32_TO_LE(crc32(payload, 84));
            memcpy(hdr + 12, &crc, 4);
            break;
        }
        }
        /* Through the savevm handlers, as migration/incoming.c loads. */
        g_assert_true(d->ops->load_setup(d->opaque, &err));
        g_assert_no_error(err);
        if (s->len)
            g_assert_true(d->ops->load_state(d->opaque, s->data, s->len, &err));
        g_assert_no_error(err);
        g_assert_false(d->ops->load_complete(d->opaque, &err));
        g_assert_nonnull(err);
        g_test_message("case %u: %s", i, err->message);
        g_assert_nonnull(strstr(err->message, "hostdev0: failed setting device state to STOP"));
        g_assert_nonnull(strstr(err->message, cases[i].expect));
        g_assert_nonnull(strstr(err->message, "in ERROR now and must be reset"));
        g_clear_error(&err);
        g_assert_cmpint(vfio_migration__state(dst.dev), ==, VFIO_MIG_STATE_ERROR);
        g_assert_cmpint(vfio_migration__data_fd(dst.dev), ==, -1);
        /* QEMU's load cleanup of a failed load: the device is reset. */
        d->ops->load_cleanup(d->opaque, true);
        g_assert_cmpint(vfio_migration__state(dst.dev), ==, VFIO_MIG_STATE_RUNNING);
        vfio_migration__get_info(dst.dev, &di);
        g_assert_cmpuint(di.seq, ==, 0);
        g_assert_false(di.dma_enabled);
    }

    /* The stream itself is fine, also written in pieces. */
    set_state(dst.dev, VFIO_MIG_STATE_RESUMING);
    for (guint off = 0; off < good->len; off += 7) {
        g_assert_true(vfio_migration__load_buffer(dst.dev, good->data + off,
                                                  MIN(7u, good->len - off), &err));
        g_assert_no_error(err);
    }
    set_state(dst.dev, VFIO_MIG_STATE_STOP);
    vfio_migration__get_info(dst.dev, &di);
    g_assert_cmpuint(di.seq, ==, si.seq);
    g_assert_cmpuint(di.ring_pos, ==, si.ring_pos);
    g_assert_cmpmem(di.regs, sizeof(di.regs), si.regs, sizeof(si.regs));
    /* Loading outside RESUMING fails. */
    g_assert_false(vfio_migration__load_buffer(dst.dev, good->data, 4, &err));
    g_assert_nonnull(strstr(err->message, "not RESUMING"));
    g_clear_error(&err);
    rig_destroy(&dst);
    rig_destroy(&src);
}

/* ------------------------------------------------------------------ */
/* A failed migration                                                  */

static void
count_marks(void *opaque, guint64 gpa, guint64 size)
{
    *(guint64 *)opaque += size / PAGE;
}

static void
test_cleanup_failed(void)
{
    rig r;
    g_autoptr(GByteArray) bytes = g_byte_array_new();
    g_autoptr(GError) err = NULL;
    guint64 marks = 0;
    vfio_migration_info i;
    savevm_entry *e;

    SKIP_IF_NO_URING();
    rig_init(&r, true);
    e = entry(&r);
    dma_start(&r, 50);
    wait_seq(r.dev, 10);

    /* Failed during the rounds (MIG_EVENT_PRECOPY_FAILED). */
    g_assert_true(e->ops->save_setup(e->opaque, &err));
    g_assert_true(e->ops->save_iterate(e->opaque, bytes, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(bytes->len, >, 0);
    e->ops->save_cleanup(e->opaque, true);
    vfio_migration__get_info(r.dev, &i);
    g_assert_cmpint(i.state, ==, VFIO_MIG_STATE_RUNNING);
    g_assert_false(i.logging);
    g_assert_cmpint(vfio_migration__data_fd(r.dev), ==, -1);
    wait_seq(r.dev, i.seq + 10);

    /* Failed after the switch-over (vCPUs stopped, STOP_COPY). */
    g_assert_true(e->ops->save_setup(e->opaque, &err));
    wait_seq(r.dev, seq_of(r.dev) + 5);         /* logged DMA */
    g_assert_true(vfio_migration__vm_running(r.m, false, &err));
    g_assert_no_error(err);
    assert_path(r.dev, "PRE_COPY_P2P -> STOP_COPY");
    g_assert_true(e->ops->sync_dirty(e->opaque, count_marks, &marks, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(marks, >, 0);
    e->ops->save_cleanup(e->opaque, true);
    vfio_migration__get_info(r.dev, &i);
    g_assert_cmpint(i.state, ==, VFIO_MIG_STATE_RUNNING);
    g_assert_false(i.logging);
    wait_seq(r.dev, i.seq + 10);

    /* A device stopped when the migration began stays stopped. */
    g_assert_true(vfio_migration__vm_running(r.m, false, &err));
    assert_path(r.dev, "RUNNING_P2P -> STOP");
    g_assert_true(e->ops->save_setup(e->opaque, &err));
    g_assert_cmpint(vfio_migration__state(r.dev), ==, VFIO_MIG_STATE_STOP);
    e->ops->save_cleanup(e->opaque, true);
    g_assert_cmpint(vfio_migration__state(r.dev), ==, VFIO_MIG_STATE_STOP);
    g_assert_true(vfio_migration__vm_running(r.m, true, &err));
    g_assert_no_error(err);
    assert_path(r.dev, "RUNNING_P2P -> RUNNING");
    /* save_setup on a device in a state it cannot save from. */
    set_state(r.dev, VFIO_MIG_STATE_STOP_COPY);
    g_assert_false(e->ops->save_setup(e->opaque, &err));
    g_assert_nonnull(strstr(err->message, "invalid device state STOP_COPY"));
    g_clear_error(&err);
    e->ops->save_cleanup(e->opaque, true);
    rig_destroy(&r);
}

/* ------------------------------------------------------------------ */
/* Registration and leaks                                              */

/* The dry run has no soft function. */
static void
test_registration_dry(void)
{
    vmm_machine_config dry = { .type = VMM_MACHINE_Q35, .compat = { .vfio_migration = true } };
    g_autoptr(vmm_machine) m = vmm_machine__new(&dry);
    vfio_device_config dc = { .alias = "hostdev0", .host = "0000:3b:00.1", .kind = VFIO_KIND_PCI,
                              .group = 20, .caps_migration = true, .caps_dirty_tracking = true };
    g_autoptr(GError) err = NULL;
    vfio_device *dev = vfio_device__realize(m, &dc, &err);

    g_assert_no_error(err);
    g_assert_true(dev->migration);
    g_assert_false(vfio_migration__present(dev));
    g_assert_null(savevm__find(m, "vfio:hostdev0"));
}

static void
test_registration(void)
{
    rig r;
    dev_opts none = { "hostdev1", 21, false, false };
    vfio_device_config plain = { .alias = "hostdev2", .host = "0000:3b:00.3", .kind = VFIO_KIND_PCI,
                                 .group = 22, .driver = "vfio-pci" };
    g_autoptr(GError) err = NULL;
    ram_mig mg = { NULL, NULL, NULL, 0 };
    savevm_entry *e;
    vfio_device *dev;

    SKIP_IF_NO_URING();
    rig_init(&r, false);
    g_assert_nonnull(savevm__find(r.m, "vfio:hostdev0"));
    /* Without any dirty tracking (enable-migration=on) it migrates with
     * every mapped page dirty (QEMU's vfio_get_dirty_bitmap()). */
    rig_add_device(&r, &none);
    g_assert_nonnull(savevm__find(r.m, "vfio:hostdev1"));
    /* No VFIO migration: no soft function, no handlers. */
    dev = vfio_device__realize(r.m, &plain, &err);
    g_assert_no_error(err);
    g_assert_false(dev->migration);
    g_assert_false(vfio_migration__present(dev));
    g_assert_null(savevm__find(r.m, "vfio:hostdev2"));
    g_assert_cmpuint(r.m->savevm->len, ==, 2);

    e = savevm__find(r.m, "vfio:hostdev1");
    mg.src = mg.dst = &r;
    mg.marked = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    g_assert_true(e->ops->save_setup(e->opaque, &err));
    g_assert_no_error(err);
    sync_dirty(&mg, e);
    g_assert_cmpuint(g_hash_table_size(mg.marked), ==, RAM_SIZE / PAGE);
    /* ... unless the test switch says no tracking at all. */
    g_hash_table_remove_all(mg.marked);
    vfio_migration__test_disable_dirty_tracking(true);
    sync_dirty(&mg, e);
    vfio_migration__test_disable_dirty_tracking(false);
    g_assert_cmpuint(g_hash_table_size(mg.marked), ==, 0);
    e->ops->save_cleanup(e->opaque, true);
    g_hash_table_unref(mg.marked);

    vfio_device__unrealize(r.m, r.dev);
    r.dev = NULL;
    g_assert_null(savevm__find(r.m, "vfio:hostdev0"));
    g_assert_cmpuint(r.m->savevm->len, ==, 1);
    rig_destroy(&r);
}

static void
test_no_leak(void)
{
    guint threads0 = threads_settle(1), fds0 = count_fds();
    guint64 pins0 = vfio_soft__pinned_pages_total();

    SKIP_IF_NO_URING();
    for (int round = 0; round < 2; round++) {
        rig src, dst;
        g_autoptr(GByteArray) s = NULL;
        g_autoptr(GError) err = NULL;
        savevm_entry *d, *e;

        rig_init(&src, true);
        rig_init(&dst, true);
        e = entry(&src);
        d = entry(&dst);
        dma_start(&src, 50);
        wait_seq(src.dev, 5);
        g_assert_cmpuint(threads_settle(threads0 + 1), ==, threads0 + 1);   /* the source's engine */
        g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, pins0 + 2 * RAM_SIZE / PAGE);
        g_assert_true(e->ops->save_setup(e->opaque, &err));
        g_assert_true(d->ops->load_setup(d->opaque, &err));
        g_assert_no_error(err);
        s = g_byte_array_new();
        g_assert_true(e->ops->save_iterate(e->opaque, s, &err));
        g_assert_true(vfio_migration__vm_running(src.m, false, &err));
        g_assert_true(e->ops->save_complete(e->opaque, s, &err));
        e->ops->save_cleanup(e->opaque, false);
        g_assert_true(d->ops->load_state(d->opaque, s->data, s->len, &err));
        g_assert_true(d->ops->load_complete(d->opaque, &err));
        d->ops->load_cleanup(d->opaque, false);
        g_assert_true(vfio_migration__vm_running(dst.m, true, &err));
        g_assert_no_error(err);
        wait_seq(dst.dev, seq_of(src.dev) + 5);
        g_assert_cmpuint(threads_settle(threads0 + 2), ==, threads0 + 2);   /* and the destination's */
        /* Leave a session open on purpose: unrealize closes it. */
        set_state(src.dev, VFIO_MIG_STATE_RESUMING);
        rig_destroy(&dst);
        rig_destroy(&src);
        g_assert_cmpuint(threads_settle(threads0), ==, threads0);
        g_assert_cmpuint(count_fds(), ==, fds0);
        g_assert_cmpuint(vfio_soft__pinned_pages_total(), ==, pins0);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vfio-migration/fsm/table", test_fsm_table);
    g_test_add_func("/vfio-migration/fsm/device", test_fsm_device);
    g_test_add_func("/vfio-migration/data-stream", test_data_stream);
    g_test_add_data_func("/vfio-migration/migrate/dirty-tracking", GINT_TO_POINTER(1), test_migrate);
    g_test_add_data_func("/vfio-migration/migrate/no-dirty-tracking", GINT_TO_POINTER(0), test_migrate);
    g_test_add_func("/vfio-migration/dma-logging", test_dma_logging);
    g_test_add_func("/vfio-migration/stop-quiesces", test_stop_quiesces);
    g_test_add_func("/vfio-migration/corrupt-stream", test_corrupt_stream);
    g_test_add_func("/vfio-migration/cleanup-failed", test_cleanup_failed);
    g_test_add_func("/vfio-migration/registration/dry-run", test_registration_dry);
    g_test_add_func("/vfio-migration/registration", test_registration);
    g_test_add_func("/vfio-migration/no-leak", test_no_leak);
    return g_test_run();
}

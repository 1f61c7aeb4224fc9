/*
 * test-migration.c: precopy migration of a running guest's RAM between
 * two VMs of this process over a socketpair (src/vmm/migration/outgoing.c and incoming.c).
 *
 * The guest program writes every page of its range each pass.  On KVM
 * the migration is live: dirty logging, iterative rounds, stop-and-copy.
 * The software accelerator has no dirty log, so there it is a
 * stop-and-copy of everything in one round; the /migration/soft/ cases
 * run everywhere, the /migration/kvm/ ones skip without /dev/kvm, and
 * the bad-peer cases use KVM when it is there and the software
 * accelerator otherwise.
 */
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration-rig.h"
#include "migration/migration.h"
#include "vm.h"

#define PAGE 4096ULL


static void
log_round(const migration_round_stats *r, void *opaque)
{
    GArray *rounds = opaque;

    g_array_append_val(rounds, *r);
    g_test_message("round %u%s: %" G_GUINT64_FORMAT " pages + %" G_GUINT64_FORMAT
                   " zero pages, %.1f MiB in %.1f ms, %.0f MB/s, %" G_GUINT64_FORMAT
                   " pages dirtied meanwhile",
                   r->round, r->final ? " (stop-and-copy)" : "", r->pages, r->zero_pages,
                   r->bytes / (double)MiB, r->usec / 1000.0, r->mb_per_s, r->dirty_left);
}

/* ------------------------------------------------------------------ */
/* Full migration                                                      */

typedef struct {
    GArray *rounds;
    vm *src;
} full_ctx;

/* The guest dirties its pages on vCPU threads that a busy machine may
 * starve for a whole round.  After round 0 the migration thread waits here
 * until every vCPU has made one more pass over its pages (about 31 MiB
 * each), so the dirty log that round 1, when there is one, harvests holds
 * more than the downtime target however the threads were scheduled: a
 * live round 1 is followed by another round.  Whether round 1 happens at
 * all was decided before this callback, by round 0's dirty_left
 * (assert_stats()). */
static void
full_round(const migration_round_stats *r, void *opaque)
{
    full_ctx *c = opaque;

    log_round(r, c->rounds);
    if (r->round == 0 && !r->final)
        wait_passes(c->src, 1);
}

/* Right after switch-over every page vCPU i owns holds the pass it was in
 * or the one before (the source paused it mid-pass), per the guest_params
 * that came with the boot region; returns how many pages that is. */
static guint64
check_switch_over_words(vm *dst)
{
    guint64 pages = 0;

    for (unsigned i = 0; i < 2; i++) {
        guest_params *p = params_of(dst, i);

        g_assert_cmpuint(p->nr_vcpus, ==, 2);
        g_assert_cmpuint(p->pass, >, 0);
        for (guint64 a = p->ram_start + i * PAGE; a < p->ram_end; a += 2 * PAGE) {
            guint32 w;

            if (a >= p->hole_start && a < p->hole_end)
                continue;
            w = *(guint32 *)vm__ram_hva(dst, a);
            if (w != p->pass && w != p->pass + 1)
                g_error("page 0x%" G_GINT64_MODIFIER "x of vCPU %u holds %u, pass %u", a, i, w, p->pass);
            pages++;
        }
    }
    return pages;
}

static void
assert_same_ram(vm *src, vm *dst)
{
    memory_region *a = vm__ram_region(src), *b = vm__ram_region(dst);

    g_assert_cmpuint(a->size, ==, b->size);
    g_assert_true(memcmp(a->ram, b->ram, a->size) == 0);
    g_assert_true(memcmp(vm__boot_region(src)->ram, vm__boot_region(dst)->ram,
                         vm__boot_region(src)->size) == 0);
    g_assert_cmphex(migration__ram_checksum(src), ==, migration__ram_checksum(dst));
}

/* The guest resumes on the destination where the source paused it: the
 * vCPUs' registers came in the CPUS record, so its pass numbers go on
 * from the migrated ones and every page holds what it wrote there (no
 * mismatch at all).  With @forget the migrated vCPU state is dropped
 * first, the negative control: the guest boots again, and its first pass
 * finds one mismatch per page (the source's pass numbers where a fresh
 * guest expects 0), so this check sees a guest that did not continue. */
static void
assert_guest_continues(vm *dst, guint64 owned_pages, bool forget)
{
    guint32 at[2] = { params_of(dst, 0)->pass, params_of(dst, 1)->pass };
    g_autoptr(GError) err = NULL;
    vm_result r;

    if (forget)
        g_assert_true(vm__load_cpus(dst, NULL, 0, NULL));
    g_assert_true(vm__start(dst, &err));
    g_assert_no_error(err);
    wait_passes(dst, 2);
    for (unsigned i = 0; !forget && i < 2; i++)
        g_assert_cmpuint(params_of(dst, i)->pass, >=, at[i] + 2);
    vm__stop(dst, &r);
    g_test_message("destination: %" G_GUINT64_FORMAT " passes after pass %u/%u, checksum %s, %"
                   G_GUINT64_FORMAT " mismatches%s",
                   r.passes, at[0], at[1], r.checksum_ok ? "intact" : "BROKEN",
                   r.guest_errors, forget ? " (vCPU state dropped: the guest rebooted)" : "");
    g_assert_cmpuint(r.passes, >=, 2);
    g_assert_true(r.checksum_ok);
    g_assert_cmpuint(r.guest_errors, ==, forget ? owned_pages : 0);
}

/* Both sides' figures agree; on KVM round 0 sends every page and at
 * least one round of dirty pages follows it before stop-and-copy. */
static void
assert_stats(vm_accel accel, const migration_stats *src_st, const migration_stats *dst_st,
             GArray *rounds)
{
    migration_stats st = *src_st;
    const migration_round_stats *r = (const migration_round_stats *)rounds->data;

    g_test_message("%u rounds, %" G_GUINT64_FORMAT " pages + %" G_GUINT64_FORMAT
                   " zero pages, %.1f MiB in %.0f ms (%.0f MB/s); downtime %.1f ms (expected %.1f ms), %s",
                   st.rounds, st.pages, st.zero_pages, st.bytes / (double)MiB, st.usec / 1000.0,
                   (double)st.bytes / st.usec, st.downtime_usec / 1000.0,
                   st.expected_downtime_usec / 1000.0,
                   !st.dirty_log ? "no dirty log" : st.converged ? "converged" : "round limit reached");
    g_assert_cmphex(dst_st->checksum, ==, st.checksum);
    g_assert_cmpuint(dst_st->rounds, ==, st.rounds);
    g_assert_cmpuint(dst_st->pages, ==, st.pages);
    g_assert_cmpuint(dst_st->zero_pages, ==, st.zero_pages);
    g_assert_cmpuint(dst_st->bytes, ==, st.bytes);
    g_assert_cmpuint(rounds->len, ==, st.rounds);
    g_assert_true(r[rounds->len - 1].final);
    g_assert_cmpuint(r[rounds->len - 1].dirty_left, ==, 0);
    if (accel == VM_ACCEL_KVM) {
        /* Round 0 (every page), then what decided the next round: the
         * pages the guest dirtied during round 0 (its dirty_left, the
         * state the sender itself acted on).  Above the downtime target
         * there is at least one live round of dirty pages before
         * stop-and-copy; a guest starved for all of round 0 (a busy
         * machine) may leave less, and then stop-and-copy comes next. */
        g_assert_true(st.dirty_log);
        g_assert_cmpuint(r[0].pages + r[0].zero_pages, ==, 256 * MiB / PAGE);
        if (r[0].dirty_left * PAGE > 4 * MiB) {
            g_assert_cmpuint(st.rounds, >=, 3);
            g_assert_false(r[1].final);
            g_assert_cmpuint(r[1].pages, >, 0);
        } else {
            g_test_message("the guest dirtied only %" G_GUINT64_FORMAT " pages during round 0 "
                           "(starved vCPUs): stop-and-copy came next", r[0].dirty_left);
            g_assert_cmpuint(st.rounds, ==, 2);
            g_assert_true(st.converged);
        }
    } else {
        g_assert_false(st.dirty_log);
        g_assert_cmpuint(st.rounds, ==, 1);
    }
}


static void
test_full(gconstpointer data)
{
    vm_accel accel = GPOINTER_TO_INT(data);
    g_autoptr(GArray) rounds = g_array_new(FALSE, FALSE, sizeof(migration_round_stats));
    full_ctx ctx = { .rounds = rounds };
    migration_params p = { .downtime_bytes = 4 * MiB, .max_rounds = 8, .timeout_ms = 20000,
                           .return_path = true, .progress = full_round, .opaque = &ctx };
    g_autoptr(GError) err = NULL;
    migration_stats st;
    vm *src, *dst;
    receiver *rx;
    vm_result r;
    int sv[2];

    if (accel == VM_ACCEL_KVM && !kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return;
    }
    src = running_vm(accel, 256);
    ctx.src = src;
    dst = new_vm(accel, 256);
    socket_pair(sv);
    rx = receiver_start(dst, NULL, sv[1], NULL);
    g_assert_true(migration__send(src, sv[0], &p, &st, &err));
    g_assert_no_error(err);
    close(sv[0]);
    receiver_join(rx);
    g_assert_no_error(rx->err);
    g_assert_true(rx->ok);

    assert_stats(accel, &st, &rx->st, rounds);
    /* Switch-over: the source paused, both RAMs the same. */
    g_assert_true(vm__paused(src));
    g_assert_false(vm__ram_region(src)->log_dirty);
    assert_same_ram(src, dst);
    g_assert_cmphex(st.checksum, ==, migration__ram_checksum(src));
    assert_guest_continues(dst, check_switch_over_words(dst), false);

    /* The source, resumed after all, goes on where it was paused. */
    vm__stop(src, &r);
    g_assert_true(r.checksum_ok);
    g_assert_cmpuint(r.guest_errors, ==, 0);
    receiver_free(rx);
    vm__free(dst);
    vm__free(src);
}

/* A downtime target below the RAM (64 MiB) but above what the guest can
 * dirty in a round (its 32 MiB): round 0, then stop-and-copy. */
static void
test_converges(void)
{
    migration_params p = { .downtime_bytes = 48 * MiB, .timeout_ms = 20000, .return_path = true };
    g_autoptr(GError) err = NULL;
    migration_stats st;
    vm *src, *dst;
    receiver *rx;
    vm_result r;
    int sv[2];

    if (!kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return;
    }
    src = running_vm(VM_ACCEL_KVM, 64);
    dst = new_vm(VM_ACCEL_KVM, 64);
    socket_pair(sv);
    rx = receiver_start(dst, NULL, sv[1], NULL);
    g_assert_true(migration__send(src, sv[0], &p, &st, &err));
    g_assert_no_error(err);
    close(sv[0]);
    receiver_join(rx);
    g_assert_no_error(rx->err);
    g_test_message("%u rounds, downtime %.1f ms (expected %.1f ms)", st.rounds,
                   st.downtime_usec / 1000.0, st.expected_downtime_usec / 1000.0);
    g_assert_true(st.converged);
    g_assert_cmpuint(st.rounds, ==, 2);
    g_assert_cmpuint(st.expected_downtime_usec, >, 0);
    assert_same_ram(src, dst);
    assert_guest_continues(dst, check_switch_over_words(dst), true);
    vm__stop(src, &r);
    g_assert_true(r.checksum_ok);
    receiver_free(rx);
    vm__free(dst);
    vm__free(src);
}

/* The guest at a dirty rate far below the link's (32 MiB/s): round 0
 * carries the RAM, the pages dirtied meanwhile fit the 16 MiB target, so
 * the migration converges where the unthrottled guest of /kvm/full runs
 * out of rounds; the throttled guest still continues on the destination. */
static void
test_dirty_rate_converges(void)
{
    migration_params p = { .downtime_bytes = 16 * MiB, .max_rounds = 8, .timeout_ms = 20000,
                           .return_path = true };
    g_autoptr(GError) err = NULL;
    migration_stats st;
    vm *src, *dst;
    receiver *rx;
    vm_result r;
    int sv[2];

    if (!kvm_usable()) {
        g_test_skip("no usable /dev/kvm");
        return;
    }
    src = new_vm_rate(VM_ACCEL_KVM, 256, 32 * MiB);
    g_assert_true(vm__start(src, &err));
    wait_passes(src, 1);
    dst = new_vm(VM_ACCEL_KVM, 256);
    socket_pair(sv);
    rx = receiver_start(dst, NULL, sv[1], NULL);
    g_assert_true(migration__send(src, sv[0], &p, &st, &err));
    g_assert_no_error(err);
    close(sv[0]);
    receiver_join(rx);
    g_assert_no_error(rx->err);
    g_test_message("%u rounds, %.1f MiB, downtime %.1f ms, %s", st.rounds,
                   st.bytes / (double)MiB, st.downtime_usec / 1000.0,
                   st.converged ? "converged" : "round limit reached");
    g_assert_true(st.converged);
    g_assert_cmpuint(st.rounds, <, 8);
    assert_same_ram(src, dst);
    g_assert_cmpuint(params_of(dst, 0)->pages_per_tick, >, 0);   /* the limit moved too */
    assert_guest_continues(dst, 0, false);
    vm__stop(src, &r);
    g_assert_true(r.checksum_ok);
    receiver_free(rx);
    vm__free(dst);
    vm__free(src);
}

/* ------------------------------------------------------------------ */
/* Streams written by hand                                             */

static void
append32(GByteArray *b, guint32 v)
{
    v = GUINT32_TO_LE(v);
    g_byte_array_append(b, (guint8 *)&v, 4);
}

static void
append64(GByteArray *b, guint64 v)
{
    v = GUINT64_TO_LE(v);
    g_byte_array_append(b, (guint8 *)&v, 8);
}

static void
append_hdr(GByteArray *b, guint32 type, guint32 len)
{
    append32(b, type);
    append32(b, len);
}

/* The magic and SETUP: boot (region 0, 1 MiB) and pc.ram (region 1). */
static GByteArray *
stream_start(guint64 ram_size)
{
    GByteArray *b = g_byte_array_new();

    g_byte_array_append(b, (const guint8 *)MIGRATION_MAGIC, 8);
    append_hdr(b, 1, 16 + 2 * 16);
    append32(b, 4096);
    append32(b, 0);
    append32(b, 2);
    append32(b, 0);
    append32(b, 0);
    append32(b, 0);
    append64(b, 1 * MiB);
    append32(b, 1);
    append32(b, 0);
    append64(b, ram_size);
    return b;
}

static void
append_batch(GByteArray *b, guint32 type, guint32 region, guint32 count, guint64 offset,
             guint32 data_pages)
{
    append_hdr(b, type, 16 + data_pages * PAGE);
    append32(b, region);
    append32(b, count);
    append64(b, offset);
    for (guint64 i = 0; i < data_pages * PAGE; i++)
        g_byte_array_append(b, (const guint8 *)"\x5a", 1);
}

static void
append_round(GByteArray *b, guint32 round, bool final)
{
    append_hdr(b, 4, 48);
    append32(b, round);
    append32(b, final);
    for (int i = 0; i < 5; i++)
        append64(b, 0);
}

/* Feed @data to a receiver for @dst; the writer's end closed after it. */
static gboolean
receive_bytes(vm *dst, const guint8 *data, gsize len, GError **error)
{
    migration_params p = { .timeout_ms = 5000 };
    int sv[2];
    gboolean ok;

    socket_pair(sv);
    g_assert_cmpint(write(sv[0], data, len), ==, (gssize)len);
    close(sv[0]);
    ok = migration__receive(dst, sv[1], &p, NULL, error);
    close(sv[1]);
    return ok;
}

static void
expect_rejected(vm *dst, GByteArray *b, gint code, const char *words)
{
    g_autoptr(GError) err = NULL;

    g_assert_false(receive_bytes(dst, b->data, b->len, &err));
    g_assert_error(err, G_IO_ERROR, code);
    g_test_message("rejected: %s", err->message);
    if (!strstr(err->message, words))
        g_error("\"%s\" does not say \"%s\"", err->message, words);
    g_byte_array_unref(b);
}

static GByteArray *
bytes_of(const char *s, gsize len)
{
    return g_byte_array_append(g_byte_array_new(), (const guint8 *)s, len);
}

static void
test_bad_streams(void)
{
    vm *dst = new_vm(VM_ACCEL_SOFT, 64);
    GByteArray *b;

    expect_rejected(dst, bytes_of("GET / HTTP/1.1\r\n\r\n", 18), G_IO_ERROR_INVALID_DATA,
                    "not a dmaguard migration stream (bad magic \"GET / HT\")");
    expect_rejected(dst, bytes_of("\x00\x01\xff garbage garbage", 19), G_IO_ERROR_INVALID_DATA,
                    "bad magic \"\\x00\\x01\\xff garb\"");
    expect_rejected(dst, bytes_of("DMGMIG2\nrest", 12), G_IO_ERROR_NOT_SUPPORTED, "version 2");
    expect_rejected(dst, bytes_of("", 0), G_IO_ERROR_PARTIAL_INPUT,
                    "migration stream ended after 0 bytes in the middle of the magic");
    expect_rejected(dst, stream_start(256 * MiB), G_IO_ERROR_INVALID_ARGUMENT,
                    "the migration source's pc.ram is 256 MiB, the destination's 64 MiB");

    b = stream_start(64 * MiB);
    append_batch(b, 2, 1, 1, 64 * MiB, 1);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA,
                    "page 0x4000000 of pc.ram is outside the destination's 64 MiB of RAM (record at byte 64)");
    b = stream_start(64 * MiB);
    append_batch(b, 3, 1, 2, 64 * MiB - PAGE, 0);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA,
                    "page 0x4000000 of pc.ram is outside the destination's 64 MiB of RAM");
    b = stream_start(64 * MiB);
    append_batch(b, 3, 0, 1, 1 * MiB, 0);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA,
                    "page 0x100000 of boot is outside the destination's 1 MiB of boot memory");
    b = stream_start(64 * MiB);
    append_batch(b, 2, 7, 1, 0, 1);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA, "RAM region 7, which does not exist");
    b = stream_start(64 * MiB);
    append_batch(b, 2, 1, 2, 0, 1);              /* says 2 pages, carries 1 */
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA, "page batch of 2 pages in a record of 4112 bytes");
    /* Batches are of 256 pages at most, as the source sends them: one
     * ZERO record cannot have the destination read all its RAM. */
    b = stream_start(64 * MiB);
    append_batch(b, 3, 1, 16384, 0, 0);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA,
                    "zero page batch of 16384 pages; a batch has at most 256 (record at byte 64)");
    b = stream_start(64 * MiB);
    append_batch(b, 2, 1, 257, 0, 0);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA, "page batch of 257 pages; a batch has at most 256");
    b = stream_start(64 * MiB);
    append_hdr(b, 99, 0);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA, "unexpected record type 99 (record at byte 64)");
    b = stream_start(64 * MiB);
    append_round(b, 1, false);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA, "round 1 where round 0 was due");
    b = stream_start(64 * MiB);
    append_hdr(b, 5, 16);
    append64(b, 0);
    append64(b, 0);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA, "end record before the stop-and-copy round");
    b = stream_start(64 * MiB);
    append_batch(b, 2, 1, 1, 0, 1);
    append_round(b, 0, true);
    append_hdr(b, 5, 16);
    append64(b, 0x1234);
    append64(b, 1);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA,
                    "RAM checksum mismatch after migration: the source has 0x0000000000001234");
    b = bytes_of(MIGRATION_MAGIC, 8);
    append_hdr(b, 2, 16);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA, "the first record is of type 2, not setup");
    /* Nothing may change the guest after stop-and-copy closed. */
    b = stream_start(64 * MiB);
    append_round(b, 0, true);
    append_batch(b, 2, 1, 1, 0, 1);
    expect_rejected(dst, b, G_IO_ERROR_INVALID_DATA,
                    "record of type 2 after the stop-and-copy round, where only the end record may come");
    vm__free(dst);
}

/* ZERO and PAGES records over the same pages: the destination checks a
 * page a ZERO record cleared only once, until a PAGES record writes it.
 * Each stream ends with END checksum 0; the checksum the destination
 * computed (migration_stats.checksum) depends only on the final content
 * of the pages the stream sent. */
static guint64
receive_checksum(vm *dst, GByteArray *b, guint64 pages)
{
    migration_params p = { .timeout_ms = 5000 };
    g_autoptr(GError) err = NULL;
    migration_stats st;
    int fd = memfd_create("stream", MFD_CLOEXEC);

    append_round(b, 0, true);
    append_hdr(b, 5, 16);
    append64(b, 0);
    append64(b, pages);
    g_assert_cmpint(write(fd, b->data, b->len), ==, (gssize)b->len);
    g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
    g_assert_false(migration__receive(dst, fd, &p, &st, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    g_assert_nonnull(strstr(err->message, "RAM checksum mismatch"));
    close(fd);
    g_byte_array_unref(b);
    return st.checksum;
}

static void
test_zero_pages(void)
{
    vm *dst = new_vm(VM_ACCEL_SOFT, 64);
    guint32 *p3 = vm__ram_hva(dst, 16 * MiB + 3 * PAGE);
    guint32 *p5 = vm__ram_hva(dst, 16 * MiB + 5 * PAGE);
    guint64 zeroed, written, c;
    GByteArray *b;

    /* What the destination had before is cleared. */
    *p3 = 0x77;
    b = stream_start(64 * MiB);
    append_batch(b, 3, 1, 8, 0, 0);
    zeroed = receive_checksum(dst, b, 8);
    g_assert_cmpuint(*p3, ==, 0);

    /* Zero, written, zero again: zero, and hashed as zero. */
    b = stream_start(64 * MiB);
    append_batch(b, 3, 1, 8, 0, 0);
    append_batch(b, 2, 1, 1, 5 * PAGE, 1);
    append_batch(b, 3, 1, 8, 0, 0);
    append_batch(b, 3, 1, 8, 0, 0);
    c = receive_checksum(dst, b, 8 + 1 + 8 + 8);
    g_assert_cmpuint(*p5, ==, 0);
    g_assert_cmphex(c, ==, zeroed);

    /* Zero, then written: the data stays. */
    b = stream_start(64 * MiB);
    append_batch(b, 3, 1, 5, 0, 0);
    append_batch(b, 2, 1, 1, 5 * PAGE, 1);
    append_batch(b, 3, 1, 2, 6 * PAGE, 0);
    written = receive_checksum(dst, b, 8);
    g_assert_cmphex(*p5, ==, 0x5a5a5a5a);
    g_assert_cmphex(written, !=, zeroed);
    b = stream_start(64 * MiB);
    append_batch(b, 3, 1, 8, 0, 0);
    append_batch(b, 3, 1, 8, 0, 0);
    append_batch(b, 2, 1, 1, 5 * PAGE, 1);
    c = receive_checksum(dst, b, 8 + 8 + 1);
    g_assert_cmphex(*p5, ==, 0x5a5a5a5a);
    g_assert_cmphex(c, ==, written);
    vm__free(dst);
}

/* A destination that is running cannot receive. */
static void
test_running_destination(void)
{
    g_autoptr(GError) err = NULL;
    vm *dst = running_vm(VM_ACCEL_SOFT, 64);
    vm_result r;

    g_assert_false(migration__receive(dst, -1, NULL, NULL, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_BUSY);
    vm__stop(dst, &r);
    vm__free(dst);
}

/* ------------------------------------------------------------------ */
/* Truncated streams: a real stream cut at record boundaries and inside */
/* records.                                                             */

/* The offsets of the records of a captured stream, and their types. */
static void
stream_records(const guint8 *s, gsize len, GArray *starts, GArray *types)
{
    gsize off = 8;

    while (off + 8 <= len) {
        guint32 type = GUINT32_FROM_LE(*(guint32 *)(s + off));
        guint32 rlen = GUINT32_FROM_LE(*(guint32 *)(s + off + 4));

        g_array_append_val(starts, off);
        g_array_append_val(types, type);
        off += 8 + rlen;
    }
    g_assert_cmpuint(off, ==, len);
}

static gsize
first_record(GArray *starts, GArray *types, guint32 type)
{
    for (guint i = 0; i < types->len; i++)
        if (g_array_index(types, guint32, i) == type)
            return g_array_index(starts, gsize, i);
    g_assert_not_reached();
}

static void
expect_truncated(vm *dst, const guint8 *s, gsize cut, const char *what)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *words = g_strdup_printf("migration stream ended after %" G_GSIZE_FORMAT " bytes%s",
                                             cut, what);
    int fd = memfd_create("prefix", MFD_CLOEXEC);

    g_assert_cmpint(write(fd, s, cut), ==, (gssize)cut);
    g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
    g_assert_false(migration__receive(dst, fd, NULL, NULL, &err));
    close(fd);
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT);
    g_test_message("cut at %" G_GSIZE_FORMAT ": %s", cut, err->message);
    if (!strstr(err->message, words))
        g_error("\"%s\" does not say \"%s\"", err->message, words);
}

/* The source sends into a file (no return path); prefixes of it go to a
 * destination, which names where the stream stopped. */
static void
test_truncated(void)
{
    migration_params p = { .timeout_ms = 5000 };
    g_autoptr(GArray) starts = g_array_new(FALSE, FALSE, sizeof(gsize));
    g_autoptr(GArray) types = g_array_new(FALSE, FALSE, sizeof(guint32));
    g_autoptr(GError) err = NULL;
    vm *src = running_vm(VM_ACCEL_SOFT, 64), *dst = new_vm(VM_ACCEL_SOFT, 64);
    int fd = memfd_create("stream", MFD_CLOEXEC);
    migration_stats st;
    gsize len, pages, end;
    guint8 *s;
    vm_result r;

    g_assert_true(migration__send(src, fd, &p, &st, &err));
    g_assert_no_error(err);
    vm__stop(src, &r);
    len = lseek(fd, 0, SEEK_END);
    g_assert_cmpuint(len, ==, st.bytes);
    s = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    g_assert_true(s != MAP_FAILED);
    stream_records(s, len, starts, types);
    pages = first_record(starts, types, 2);
    end = first_record(starts, types, 5);

    expect_truncated(dst, s, 5, " in the middle of the magic");
    expect_truncated(dst, s, 8, " in the middle of the setup record");
    expect_truncated(dst, s, 8 + 20, " in the middle of the setup record");
    expect_truncated(dst, s, pages + 4, " in the middle of a record header");
    expect_truncated(dst, s, pages + 8 + 10, " in the middle of a page batch");
    expect_truncated(dst, s, pages + 8 + 16 + 3 * PAGE + 100, " in the middle of a page batch");
    expect_truncated(dst, s, end, " without its end record (rounds completed: 1)");
    expect_truncated(dst, s, len - 1, " in the middle of the end record");

    /* The whole stream is fine (the source ran on after it). */
    g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
    g_assert_true(migration__receive(dst, fd, &p, NULL, &err));
    g_assert_no_error(err);
    g_assert_cmphex(migration__ram_checksum(dst), ==, st.checksum);
    munmap(s, len);
    close(fd);
    vm__free(dst);
    vm__free(src);
}

/* ------------------------------------------------------------------ */
/* Peers that go away                                                   */

typedef struct fake_peer {
    GThread *thread;
    int fd;
    guint64 read_limit;                  /* close after that many bytes */
    bool until_end;                      /* or after the END record */
    guint64 got;
} fake_peer;

static bool
read_exactly(int fd, void *buf, gsize len)
{
    for (gsize got = 0; got < len;) {
        gssize r = read(fd, (guint8 *)buf + got, len - got);

        if (r <= 0)
            return false;
        got += r;
    }
    return true;
}

/* Reads records (header, then payload) until END, and closes. */
static void
fake_peer_until_end(fake_peer *fp)
{
    g_autofree guint8 *buf = g_malloc(2 * MiB);
    guint8 hdr[8];

    if (!read_exactly(fp->fd, buf, 8))
        return;
    while (read_exactly(fp->fd, hdr, 8)) {
        guint32 type = GUINT32_FROM_LE(*(guint32 *)hdr);
        guint32 len = GUINT32_FROM_LE(*(guint32 *)(hdr + 4));

        g_assert_cmpuint(len, <=, 2 * MiB);
        if (!read_exactly(fp->fd, buf, len) || type == 5)
            return;
    }
}

static gpointer
fake_peer_main(gpointer data)
{
    fake_peer *fp = data;
    g_autofree guint8 *buf = g_malloc(64 * 1024);

    if (fp->until_end) {
        fake_peer_until_end(fp);
    } else {
        while (fp->got < fp->read_limit) {
            gssize r = read(fp->fd, buf, MIN(64 * 1024, fp->read_limit - fp->got));

            if (r <= 0)
                break;
            fp->got += r;
        }
    }
    close(fp->fd);
    return NULL;
}

static fake_peer *
fake_peer_start(int fd, guint64 read_limit, bool until_end)
{
    fake_peer *fp = g_new0(fake_peer, 1);

    fp->fd = fd;
    fp->read_limit = read_limit;
    fp->until_end = until_end;
    fp->thread = g_thread_new("fake-peer", fake_peer_main, fp);
    return fp;
}

static void
send_to_fake_peer(vm *src, guint64 read_limit, bool until_end, guint timeout_ms,
                  GError **err)
{
    migration_params p = { .downtime_bytes = 4 * MiB, .max_rounds = 4, .timeout_ms = timeout_ms,
                           .return_path = true };
    fake_peer *fp = NULL;
    int sv[2];

    socket_pair(sv);
    if (read_limit || until_end)
        fp = fake_peer_start(sv[1], read_limit, until_end);
    g_assert_false(migration__send(src, sv[0], &p, NULL, err));
    close(sv[0]);
    if (fp) {
        g_thread_join(fp->thread);
        g_free(fp);
    } else {
        close(sv[1]);
    }
    g_test_message("source: %s", (*err)->message);
}

/* The destination reads 3 MiB of round 0 and disappears. */
static void
test_peer_gone_mid_stream(void)
{
    g_autoptr(GError) err = NULL;
    vm *src = running_vm(best_accel(), 256);

    send_to_fake_peer(src, 3 * MiB, false, 10000, &err);
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_assert_nonnull(strstr(err->message, "migration failed in round 0 after"));
    g_assert_nonnull(strstr(err->message, "the guest keeps running on the source: "
                                          "the migration destination went away after"));
    assert_source_runs(src);
    vm__free(src);
}

/* The destination takes the whole stream, stop-and-copy included, and
 * goes away without acknowledging it: the source had paused its vCPUs and
 * resumes them. */
static void
test_peer_gone_before_ack(void)
{
    g_autoptr(GError) err = NULL;
    vm *src = running_vm(best_accel(), 256);

    send_to_fake_peer(src, 0, true, 10000, &err);
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_assert_nonnull(strstr(err->message, "without acknowledging the migration"));
    assert_source_runs(src);
    vm__free(src);
}

/* A destination that never reads: the source gives up after its timeout. */
static void
test_peer_stalls(void)
{
    g_autoptr(GError) err = NULL;
    vm *src = running_vm(best_accel(), 64);

    send_to_fake_peer(src, 0, false, 300, &err);
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_nonnull(strstr(err->message, "the migration destination took no data for 300 ms"));
    assert_source_runs(src);
    vm__free(src);
}

/* A source that stops sending: the destination gives up. */
static void
test_source_stalls(void)
{
    migration_params p = { .timeout_ms = 200 };
    g_autoptr(GError) err = NULL;
    vm *dst = new_vm(VM_ACCEL_SOFT, 64);
    int sv[2];

    socket_pair(sv);
    g_assert_cmpint(write(sv[0], MIGRATION_MAGIC, 8), ==, 8);
    g_assert_false(migration__receive(dst, sv[1], &p, NULL, &err));
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_assert_cmpstr(err->message, ==, "no data from the migration source for 200 ms (after 8 bytes)");
    close(sv[0]);
    close(sv[1]);
    vm__free(dst);
}

/* The destination refuses the stream (different memory size): it fails,
 * and so does the source, which keeps running. */
static void
test_size_mismatch_both_fail(void)
{
    migration_params p = { .timeout_ms = 10000, .return_path = true };
    g_autoptr(GError) err = NULL;
    vm *src = running_vm(best_accel(), 128), *dst = new_vm(best_accel(), 64);
    receiver *rx;
    int sv[2];

    socket_pair(sv);
    rx = receiver_start(dst, NULL, sv[1], NULL);
    g_assert_false(migration__send(src, sv[0], &p, NULL, &err));
    close(sv[0]);
    receiver_join(rx);
    g_assert_false(rx->ok);
    g_assert_error(rx->err, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(rx->err->message, ==,
                    "the migration source's pc.ram is 128 MiB, the destination's 64 MiB: "
                    "both VMs need the same memory size");
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_test_message("destination: %s; source: %s", rx->err->message, err->message);
    assert_source_runs(src);
    g_assert_false(vm__started(dst));
    receiver_free(rx);
    vm__free(dst);
    vm__free(src);
}

/* ------------------------------------------------------------------ */
/* No thread, no fd left                                               */

static guint
count_entries(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    guint n = 0;

    while (d && g_dir_read_name(d))
        n++;
    return n;
}

static void
wait_threads(guint n)
{
    for (int i = 0; i < 300 && count_entries("/proc/self/task") > n; i++)
        g_usleep(10000);
}

/* A failed migration, then one that succeeds and starts the guest on the
 * destination; since Linux 6.13 KVM has a worker thread per VM fd, which
 * leaves with it (see test-kvm-stress.c). */
static void
test_no_leak(void)
{
    migration_params p = { .timeout_ms = 10000, .return_path = true, .autostart = true };
    g_autoptr(GError) err = NULL;
    guint fds, threads;
    vm *src, *dst;
    receiver *rx;
    vm_result r;
    int sv[2];

    wait_threads(1);
    fds = count_entries("/proc/self/fd");
    threads = count_entries("/proc/self/task");
    src = running_vm(best_accel(), 64);
    dst = new_vm(best_accel(), 64);
    send_to_fake_peer(src, 64 * 1024, false, 5000, &err);
    g_clear_error(&err);
    g_assert_false(vm__paused(src));
    socket_pair(sv);
    rx = receiver_start(dst, NULL, sv[1], &p);
    g_assert_true(migration__send(src, sv[0], &p, NULL, &err));
    g_assert_no_error(err);
    close(sv[0]);
    receiver_join(rx);
    g_assert_no_error(rx->err);
    g_assert_true(vm__started(dst));          /* autostart */
    wait_passes(dst, 2);
    vm__stop(dst, &r);
    g_assert_true(r.checksum_ok);
    vm__stop(src, &r);
    receiver_free(rx);
    vm__free(dst);
    vm__free(src);
    wait_threads(threads);
    g_assert_cmpuint(count_entries("/proc/self/task"), ==, threads);
    g_assert_cmpuint(count_entries("/proc/self/fd"), ==, fds);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/migration/kvm/full", GINT_TO_POINTER(VM_ACCEL_KVM), test_full);
    g_test_add_func("/migration/kvm/converges", test_converges);
    g_test_add_func("/migration/kvm/dirty-rate-converges", test_dirty_rate_converges);
    g_test_add_data_func("/migration/soft/full", GINT_TO_POINTER(VM_ACCEL_SOFT), test_full);
    g_test_add_func("/migration/bad-streams", test_bad_streams);
    g_test_add_func("/migration/zero-pages", test_zero_pages);
    g_test_add_func("/migration/running-destination", test_running_destination);
    g_test_add_func("/migration/truncated", test_truncated);
    g_test_add_func("/migration/peer-gone-mid-stream", test_peer_gone_mid_stream);
    g_test_add_func("/migration/peer-gone-before-ack", test_peer_gone_before_ack);
    g_test_add_func("/migration/peer-stalls", test_peer_stalls);
    g_test_add_func("/migration/source-stalls", test_source_stalls);
    g_test_add_func("/migration/size-mismatch-both-fail", test_size_mismatch_both_fail);
    g_test_add_func("/migration/no-thread-or-fd-left", test_no_leak);
    return g_test_run();
}

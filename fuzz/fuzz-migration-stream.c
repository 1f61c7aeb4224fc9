/*
 * fuzz-migration-stream.c: libFuzzer target for the destination side of
 * the embedded VMM's live migration (src/vmm/migration/migration.h).
 *
 * The input bytes are the whole migration stream as a source would send
 * it: the magic, SETUP, then PAGES, ZERO, ROUND, DEVICE, CPUS records and
 * END or CANCEL (the format is in migration/migration.h and docs/migration.rst).
 * They are written to a memfd, and migration__receive_machine() reads
 * them into a destination VM that is created once: the software
 * accelerator, 2 vCPUs, 64 MiB, and a machine with a virtio-balloon (its
 * savevm entry "virtio-balloon" takes DEVICE records).  No VFIO device:
 * its state needs pinned guest pages.  The guest is never started
 * (no autostart); a vCPU state a stream loaded is dropped after each
 * input.  The receive must fail cleanly, or succeed, on any input: no
 * crash, hang, leak or undefined behaviour, and an error on failure only,
 * in valid UTF-8 (it ends up in logs and in the JSON of the CLI); the
 * progress callback sees the rounds in order.
 *
 * The destination's RAM and balloon keep what earlier inputs wrote, as a
 * destination that received a failed migration before would.
 *
 * With $DMG_FUZZ_MAKE_SEEDS=DIR the binary writes the seed corpus instead
 * of fuzzing: real streams of a small guest migrated with
 * migration__send_machine(), and truncated and corrupted variants of
 * them; see make_seeds().  Built and run by
 * fuzz/build-and-run.sh migration-stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gio/gio.h>

#include "virtio/balloon.h"
#include "accel/kvm_vcpu.h"
#include "migration/le_bytes.h"
#include "machine.h"
#include "migration/migration.h"
#include "vm.h"

#define MiB (1024ULL * 1024)
#define PAGE 4096ULL
#define FUZZ_RAM (64 * MiB)

static vm *fuzz_dst;
static vmm_machine *fuzz_machine;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("fuzz-migration-stream: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static vm *
new_vm(void)
{
    vm_config cfg = { .accel = VM_ACCEL_SOFT, .atomic = true, .nr_vcpus = 2,
                      .ram_size = FUZZ_RAM };
    g_autoptr(GError) err = NULL;
    vm *v = vm__new(&cfg, &err);

    if (!v)
        die("creating the VM: %s", err->message);
    return v;
}

/* tests/migration-rig.c machine_on() with the software accelerator, no
 * vIOMMU, and the balloon of tests/test-migration-devices.c side_init(). */
static vmm_machine *
new_machine(vm *v)
{
    vmm_machine_config cfg = {
        .type = VMM_MACHINE_Q35, .kvm = false, .kvm_sync_mmu = true,
        .split_irqchip = true,
        .compat = { .vfio_migration = true, .vfio_enable_migration_onoff = true,
                    .vfio_multi_device_p2p = true },
    };
    virtio_balloon_config bal = { .alias = "balloon0" };
    vmm_machine *m = vmm_machine__new(&cfg);

    m->memory = vm__address_space(v);
    vmm_machine__init_accel(m);
    virtio_balloon__realize(m, &bal);
    vmm_machine__done(m);
    if (m->findings.errors->len)
        die("the machine has %u error(s)", m->findings.errors->len);
    if (!migration_blockers__empty(&m->migration))
        die("the machine has migration blockers");
    return m;
}

static int
stream_fd(const uint8_t *data, size_t size)
{
    int fd = memfd_create("migration-stream", MFD_CLOEXEC);

    if (fd < 0)
        die("memfd_create: %s", g_strerror(errno));
    while (size) {
        ssize_t w = write(fd, data, size);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("writing the input to a memfd: %s", g_strerror(errno));
        data += w;
        size -= w;
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        die("lseek: %s", g_strerror(errno));
    return fd;
}

/* ------------------------------------------------------------------ */
/* Seeds                                                               */

static void
write_seed(const char *dir, const char *name, const guint8 *b, gsize len)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GError) err = NULL;

    if (!g_file_set_contents(path, (const char *)b, len, &err))
        die("%s", err->message);
}

/* Migrate @src (with @m's devices, or none) into a byte array. */
static GByteArray *
send_to_bytes(vm *src, vmm_machine *m)
{
    migration_params p = { .timeout_ms = 1000 };
    g_autoptr(GError) err = NULL;
    migration_stats st;
    GByteArray *b;
    int fd = memfd_create("migration-seed", MFD_CLOEXEC);
    off_t len;

    if (fd < 0)
        die("memfd_create: %s", g_strerror(errno));
    if (!migration__send_machine(src, m, fd, &p, &st, &err))
        die("migration__send_machine: %s", err->message);
    len = lseek(fd, 0, SEEK_END);
    b = g_byte_array_sized_new(len);
    g_byte_array_set_size(b, len);
    if (pread(fd, b->data, len, 0) != len)
        die("reading the stream back: %s", g_strerror(errno));
    close(fd);
    return b;
}

/* Until each vCPU of @v has reported @passes passes. */
static void
wait_passes(vm *v, guint32 passes)
{
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    for (unsigned i = 0; i < 2; i++)
        while (guest_params__get(vm__boot_region(v)->ram, i)->pass < passes) {
            if (g_get_monotonic_time() > deadline)
                die("the guest makes no progress");
            g_usleep(1000);
        }
}

/* Record boundaries of a stream: offsets (after the magic) and types. */
static void
stream_records(const GByteArray *s, GArray *starts, GArray *types)
{
    for (gsize off = 8; off + 8 <= s->len;) {
        guint32 type = le_get32(s->data + off), len = le_get32(s->data + off + 4);
        guint64 o = off;

        g_array_append_val(starts, o);
        g_array_append_val(types, type);
        off += 8 + (gsize)len;
    }
}

static void
write_variant(const char *dir, const GByteArray *s, const char *name, gsize cut,
              gsize flip_at, guint8 flip_mask)
{
    g_autoptr(GByteArray) v = g_byte_array_new();

    g_byte_array_append(v, s->data, MIN(cut, s->len));
    if (flip_at < v->len)
        v->data[flip_at] ^= flip_mask;
    write_seed(dir, name, v->data, v->len);
}

/* Truncations at and inside the first record of each type in @types (a
 * mask of 1 << type), and one bit flipped in its header and in its
 * payload. */
static guint
write_variants(const char *dir, const GByteArray *s, const char *base, guint types_mask)
{
    static const char *const names[] = { "?", "setup", "pages", "zero", "round", "end",
                                         "ack", "cancel", "cpus", "device" };
    g_autoptr(GArray) starts = g_array_new(FALSE, FALSE, sizeof(guint64));
    g_autoptr(GArray) types = g_array_new(FALSE, FALSE, sizeof(guint32));
    guint seen = 0, n = 0;
    char name[128];

    stream_records(s, starts, types);
    for (guint i = 0; i < starts->len; i++) {
        guint32 type = g_array_index(types, guint32, i);
        gsize at = g_array_index(starts, guint64, i);
        gsize len = le_get32(s->data + at + 4);
        const char *what = type < G_N_ELEMENTS(names) ? names[type] : "?";

        if (type >= 32 || !(types_mask & (1u << type)) || (seen & (1u << type)))
            continue;
        seen |= 1u << type;
        g_snprintf(name, sizeof(name), "%s-cut-before-%s.mig", base, what);
        write_variant(dir, s, name, at, G_MAXSIZE, 0);
        g_snprintf(name, sizeof(name), "%s-cut-in-%s.mig", base, what);
        write_variant(dir, s, name, at + 8 + len / 2, G_MAXSIZE, 0);
        g_snprintf(name, sizeof(name), "%s-flip-%s-length.mig", base, what);
        write_variant(dir, s, name, s->len, at + 4, 0x01);
        g_snprintf(name, sizeof(name), "%s-flip-%s-payload.mig", base, what);
        write_variant(dir, s, name, s->len, at + 8 + MIN(len / 2, 12), 0x10);
        n += 4;
    }
    return n;
}

/* @s without its ZERO records: still a valid stream (a page never sent
 * counts for nothing in the checksum), but one that does not read all
 * the destination's RAM, as a ZERO sweep over 64 MiB does (about 120 ms
 * under the fuzzer's instrumentation, against 1 ms for the rest).  END's page
 * count is fixed, and its checksum is what a destination computes:
 * migration_stats.checksum, filled even when END's does not match. */
static GByteArray *
without_zero_records(const GByteArray *s)
{
    g_autoptr(GArray) starts = g_array_new(FALSE, FALSE, sizeof(guint64));
    g_autoptr(GArray) types = g_array_new(FALSE, FALSE, sizeof(guint32));
    GByteArray *v = g_byte_array_new();
    migration_params p = { .timeout_ms = 1000 };
    g_autoptr(GError) err = NULL;
    migration_stats st;
    guint64 pages = 0;
    vm *scratch;
    vmm_machine *m;
    int fd;

    g_byte_array_append(v, s->data, 8);
    stream_records(s, starts, types);
    for (guint i = 0; i < starts->len; i++) {
        guint32 type = g_array_index(types, guint32, i);
        gsize at = g_array_index(starts, guint64, i);

        if (type == 3)
            continue;
        if (type == 2)
            pages += le_get32(s->data + at + 8 + 4);
        g_byte_array_append(v, s->data + at, 8 + le_get32(s->data + at + 4));
    }
    if (g_array_index(types, guint32, types->len - 1) != 5)
        die("the stream does not end with END");
    le_put64(v->data + v->len - 8, pages);
    le_put64(v->data + v->len - 16, 0);
    scratch = new_vm();
    m = new_machine(scratch);
    fd = stream_fd(v->data, v->len);
    if (migration__receive_machine(scratch, m, fd, &p, &st, &err) ||
        !g_error_matches(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA) ||
        !strstr(err->message, "checksum mismatch"))
        die("receiving the stream without ZERO records: %s", err ? err->message : "no error");
    close(fd);
    le_put64(v->data + v->len - 16, st.checksum);
    vmm_machine__free(m);
    vm__free(scratch);
    return v;
}

/* END replaced by CANCEL, as a source that gave up at the last moment
 * sends it. */
static GByteArray *
cancelled(const GByteArray *s)
{
    static const char reason[] = "guest mapped DMA through its vIOMMU (seed 004)";
    GByteArray *v = g_byte_array_new();
    guint8 hdr[8];

    g_byte_array_append(v, s->data, s->len - 24);
    le_put32(hdr, 7);
    le_put32(hdr + 4, sizeof(reason) - 1);
    g_byte_array_append(v, hdr, 8);
    g_byte_array_append(v, (const guint8 *)reason, sizeof(reason) - 1);
    return v;
}

/* A second final ROUND before END: round n + 1 after the final round n. */
static GByteArray *
round_after_final(const GByteArray *s)
{
    GByteArray *v = g_byte_array_new();
    const guint8 *round = s->data + s->len - 24 - 56;

    if (le_get32(round) != 4)
        die("no ROUND before END");
    g_byte_array_append(v, s->data, s->len - 24);
    g_byte_array_append(v, round, 56);
    le_put32(v->data + v->len - 48, le_get32(round + 8) + 1);
    g_byte_array_append(v, s->data + s->len - 24, 24);
    return v;
}

/* A fresh destination takes @s whole, or the seed is no real stream. */
static void
check_received(const GByteArray *s, const char *name)
{
    migration_params p = { .timeout_ms = 1000 };
    g_autoptr(GError) err = NULL;
    vm *dst = new_vm();
    vmm_machine *m = new_machine(dst);
    int fd = stream_fd(s->data, s->len);

    if (!migration__receive_machine(dst, m, fd, &p, NULL, &err))
        die("%s is not received: %s", name, err->message);
    close(fd);
    vm__load_cpus(dst, NULL, 0, NULL);
    vmm_machine__free(m);
    vm__free(dst);
}

/*
 * The seed corpus, into @dir:
 *   guest.mig      a guest that ran a few passes on 2 vCPUs (the boot
 *                  region with its guest_params and stacks, a CPUS
 *                  record), a balloon holding 4 pages (a DEVICE record).
 *                  pc.ram is zeroed while paused but for a few pages per
 *                  vCPU, so the stream stays small (ZERO records for the
 *                  rest): the guest wrote all 32 MiB it touches.
 *   guest-min.mig  the same without its ZERO records (without_zero_records())
 *   fresh.mig      a VM that never started, no devices: no CPUS, no DEVICE
 *   guest-min-*, guest-zero-*
 *                  truncated and bit-flipped variants, at and in the first
 *                  record of each type
 *   guest-min-ack.mig
 *                  SETUP asks for the return path (ACK)
 *   guest-min-round-after-final.mig
 *                  a second final ROUND
 *   guest-min-cancel*.mig
 *                  CANCEL instead of END, and variants
 * guest.mig, guest-min.mig and fresh.mig are checked to be received by a
 * fresh destination.
 */
static void
make_seeds(const char *dir)
{
    vm *src = new_vm();
    vmm_machine *m = new_machine(src);
    g_autoptr(GError) err = NULL;
    GByteArray *s, *min, *v;
    guint64 start, end, bal_start, bal_end;
    vm_result r;
    guint n = 0;

    if (g_mkdir_with_parents(dir, 0755) < 0)
        die("%s: %s", dir, g_strerror(errno));

    /* A running guest, paused, a few of its pages kept. */
    if (!vm__start(src, &err))
        die("starting the guest: %s", err->message);
    wait_passes(src, 3);
    vm__pause(src);
    vm__touch_range(src, &start, &end);
    for (guint64 a = start + 8 * PAGE; a < end; a += PAGE)
        memset(vm__ram_hva(src, a), 0, PAGE);
    vm__balloon_range(src, &bal_start, &bal_end);
    for (guint i = 0; i < 4; i++) {
        guint64 gpa = bal_start + 4 * MiB + i * PAGE;

        *(guint32 *)vm__ram_hva(src, gpa) = 0xba110000 + i;
        if (!virtio_balloon__inflate(m, gpa, &err))
            die("inflating the balloon: %s", err->message);
    }
    s = send_to_bytes(src, m);
    vm__stop(src, &r);
    vmm_machine__free(m);
    vm__free(src);
    min = without_zero_records(s);
    check_received(s, "guest.mig");
    check_received(min, "guest-min.mig");
    write_seed(dir, "guest.mig", s->data, s->len);
    write_seed(dir, "guest-min.mig", min->data, min->len);
    n += 2;
    n += write_variants(dir, min, "guest-min", ~0u);
    n += write_variants(dir, s, "guest-zero", 1u << 3);
    /* SETUP asks for the return path: the destination writes ACK. */
    v = g_byte_array_append(g_byte_array_new(), min->data, min->len);
    le_put32(v->data + 20, 1);
    check_received(v, "guest-min-ack.mig");
    write_seed(dir, "guest-min-ack.mig", v->data, v->len);
    g_byte_array_unref(v);
    v = round_after_final(min);
    write_seed(dir, "guest-min-round-after-final.mig", v->data, v->len);
    g_byte_array_unref(v);
    v = cancelled(min);
    write_seed(dir, "guest-min-cancel.mig", v->data, v->len);
    n += 3;
    n += write_variants(dir, v, "guest-min-cancel", 1u << 7);
    g_byte_array_unref(v);
    g_printerr("make-seeds: guest.mig of %u bytes, guest-min.mig of %u, %u variants\n",
               s->len, min->len, n - 2);
    g_byte_array_unref(s);
    g_byte_array_unref(min);

    /* A VM that never ran, without devices. */
    src = new_vm();
    s = send_to_bytes(src, NULL);
    check_received(s, "fresh.mig");
    write_seed(dir, "fresh.mig", s->data, s->len);
    n++;
    g_printerr("make-seeds: fresh.mig of %u bytes; %u seeds in %s\n", s->len, n, dir);
    g_byte_array_unref(s);
    vm__free(src);
}

/* ------------------------------------------------------------------ */
/* The target                                                          */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *seeds = g_getenv("DMG_FUZZ_MAKE_SEEDS");

    (void)argc;
    (void)argv;
    if (seeds && *seeds) {
        make_seeds(seeds);
        exit(0);
    }
    fuzz_dst = new_vm();
    fuzz_machine = new_machine(fuzz_dst);
    return 0;
}

/* The receive reports each ROUND with the source's figures. */
static void
on_round(const migration_round_stats *r, void *opaque)
{
    guint *rounds = opaque;

    if (r->usec == 0 || r->round != *rounds) {
        fprintf(stderr, "round %u reported as round %u, %" G_GUINT64_FORMAT " us\n",
                *rounds, r->round, r->usec);
        abort();
    }
    (*rounds)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    guint rounds = 0;
    migration_params p = { .timeout_ms = 1000, .progress = on_round, .opaque = &rounds };
    migration_stats st;
    GError *err = NULL;
    int fd = stream_fd(data, size);
    gboolean ok;

    ok = migration__receive_machine(fuzz_dst, fuzz_machine, fd, &p, &st, &err);
    /* Exactly one of success and an error; the error readable. */
    if (ok == (err != NULL)) {
        fprintf(stderr, "migration__receive_machine returned %s with %s error\n",
                ok ? "TRUE" : "FALSE", err ? "an" : "no");
        abort();
    }
    if (err && (!err->message || !g_utf8_validate(err->message, -1, NULL))) {
        fprintf(stderr, "error message is not valid UTF-8\n");
        abort();
    }
    /* The destination is never started without autostart. */
    if (vm__started(fuzz_dst) || vm__paused(fuzz_dst)) {
        fprintf(stderr, "the destination runs after a receive without autostart\n");
        abort();
    }
    /* A received vCPU state would be used by the next vm__start: drop it
     * (the receive does so itself on failure). */
    if (ok)
        vm__load_cpus(fuzz_dst, NULL, 0, NULL);
    g_clear_error(&err);
    close(fd);
    return 0;
}

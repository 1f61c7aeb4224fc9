/*
 * bench-migration.c: live migration of the embedded VMM over TCP on
 * loopback, in plain text and over TLS (gnutls, X.509 certificates made
 * with certtool by tests/tls-certs.sh), beside the memcpy bandwidth
 * measured in the same run:
 *
 *   (a) throughput: a 1 GiB guest whose RAM is all data (no zero page),
 *       vCPUs not running, migrated once plain and once over TLS; GB/s of
 *       stream bytes over the whole migration, and its ratio to memcpy;
 *   (b) total time and downtime of a running guest of 1 GiB and 4 GiB
 *       (RAM all data, the guest program dirtying its pages at a given
 *       rate, DIRTY_RATE), plain and over TLS; the downtime target is
 *       given as the bytes left for stop-and-copy (DOWNTIME).  "dirty
 *       MiB/s" is measured: the pages dirtied during the live rounds over
 *       their time; a round long enough for the guest to rewrite its
 *       whole 64 MiB working set shows less than the rate.
 *
 * Source and destination are two VMs in this process, the destination's
 * receive on a thread: both ends' CPU cost is in the figures, as it is on
 * one host.  A warm-up pass touches as much memory as the runs will use
 * first: on a VM the first touch of guest-physical memory also pays the
 * host's fault (bench-vfio does the same), which would charge the
 * hypervisor's allocation to whichever run comes first.  The kernel still
 * zeroes every page the destination faults in; that stays in the figures.
 * A benchmark that prints figures, not a test: it exits 0
 * whatever the figures, 77 without a usable /dev/kvm or certtool.  A size
 * that does not fit twice in MemAvailable is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "migration/migration.h"
#include "migration/socket.h"
#include "migration/tls.h"
#include "vm.h"

#define MiB (G_GUINT64_CONSTANT(1024) * 1024)
#define GiB (1024 * MiB)
#define PAGE G_GUINT64_CONSTANT(4096)
#define DIRTY_RATE (64 * MiB)            /* bytes/s, the running guests */
#define DOWNTIME (8 * MiB)
#define MARGIN GiB

static guint64
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (guint64)ts.tv_sec * G_GUINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

/* memcpy of 1 GiB, best of three, GB/s (bytes copied per ns). */
static double
memcpy_gbs(void)
{
    guint8 *a = g_malloc(GiB), *b = g_malloc(GiB);
    double best = 0;

    memset(a, 0x5a, GiB);
    memset(b, 0xa5, GiB);
    for (int i = 0; i < 3; i++) {
        guint64 t0 = now_ns();

        memcpy(b, a, GiB);
        best = MAX(best, (double)GiB / (double)(now_ns() - t0));
    }
    if (b[GiB - 1] != 0x5a)
        g_error("memcpy went wrong");
    g_free(a);
    g_free(b);
    return best;
}

static guint64
mem_available(void)
{
    g_autofree char *text = NULL;
    const char *p;

    if (!g_file_get_contents("/proc/meminfo", &text, NULL, NULL) ||
        !(p = strstr(text, "MemAvailable:")))
        return 0;
    return g_ascii_strtoull(p + strlen("MemAvailable:"), NULL, 10) * 1024;
}

/* Every page of pc.ram holds data, so none goes as a ZERO record. */
static void
fill_ram(vm *v)
{
    memory_region *mr = vm__ram_region(v);

    for (guint64 off = 0; off < mr->size; off += PAGE) {
        guint64 *w = (guint64 *)((guint8 *)mr->ram + off);

        for (guint i = 0; i < PAGE / 8; i += 64)
            w[i] = off ^ G_GUINT64_CONSTANT(0x9e3779b97f4a7c15) ^ i;
    }
}

static vm *
bench_vm(guint64 size, guint64 dirty_rate)
{
    vm_config cfg = { .accel = VM_ACCEL_KVM, .atomic = true, .nr_vcpus = 2,
                      .ram_size = size, .dirty_rate = dirty_rate };
    g_autoptr(GError) err = NULL;
    vm *v = vm__new(&cfg, &err);

    if (!v)
        g_error("cannot create a %" G_GUINT64_FORMAT " MiB VM: %s", size / MiB, err->message);
    return v;
}

typedef struct {
    vm *dst;
    int lfd;
    const char *certs;                   /* NULL: plain */
    gboolean ok;
    GError *err;
    migration_stats st;
} receiver;

static gpointer
receiver_main(gpointer data)
{
    receiver *rx = data;
    migration_tls_config tc = { .x509_dir = rx->certs, .verify_peer = true };
    migration_params p = { .timeout_ms = 60000 };
    g_autoptr(migration_tls) tls = NULL;
    int fd = migration_socket__accept(rx->lfd, 60000, &rx->err);

    if (fd < 0)
        return NULL;
    if (rx->certs &&
        !(tls = migration_tls__handshake(fd, MIGRATION_TLS_SERVER, &tc, 60000, &rx->err))) {
        close(fd);
        return NULL;
    }
    p.tls = tls;
    rx->ok = migration__receive(rx->dst, fd, &p, &rx->st, &rx->err);
    g_clear_pointer(&tls, migration_tls__free);
    close(fd);
    return NULL;
}

typedef struct {
    const char *transport;
    migration_stats st;
    char tls_desc[128];
    guint64 live_dirty_bytes;            /* dirtied during the live rounds */
    guint64 live_usec;
} run_result;

/* The guest's measured dirty rate: what it dirtied during each live round
 * over that round's time. */
static void
on_round(const migration_round_stats *r, void *opaque)
{
    run_result *out = opaque;

    if (r->final)
        return;
    out->live_dirty_bytes += r->dirty_left * PAGE;
    out->live_usec += r->usec;
}

/* One migration of @src into a fresh VM of the same size, over loopback. */
static gboolean
migrate_once(vm *src, guint64 size, const char *certs, run_result *out)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(migration_tls) tls = NULL;
    migration_tls_config tc = { .x509_dir = certs, .hostname = "localhost" };
    migration_params p = { .downtime_bytes = DOWNTIME, .max_rounds = 30, .timeout_ms = 60000,
                           .return_path = true, .progress = on_round, .opaque = out };
    receiver rx = { .dst = bench_vm(size, 0), .certs = certs };
    g_autofree char *addr = NULL;
    GThread *t;
    int fd;

    if ((rx.lfd = migration_socket__listen("127.0.0.1:0", &err)) < 0)
        g_error("%s", err->message);
    addr = g_strdup_printf("127.0.0.1:%u", migration_socket__port(rx.lfd));
    t = g_thread_new("receiver", receiver_main, &rx);
    if ((fd = migration_socket__connect(addr, 60000, &err)) < 0)
        g_error("%s", err->message);
    if (certs && !(tls = migration_tls__handshake(fd, MIGRATION_TLS_CLIENT, &tc, 60000, &err)))
        g_error("%s", err->message);
    if (tls)
        g_strlcpy(out->tls_desc, migration_tls__description(tls), sizeof(out->tls_desc));
    p.tls = tls;
    if (!migration__send(src, fd, &p, &out->st, &err))
        g_printerr("migration failed: %s\n", err->message);
    g_clear_pointer(&tls, migration_tls__free);
    close(fd);
    g_thread_join(t);
    close(rx.lfd);
    if (rx.err)
        g_printerr("destination: %s\n", rx.err->message);
    vm__free(rx.dst);
    out->transport = certs ? "TLS" : "plain";
    return !err && rx.ok;
}

static double
gbs(const migration_stats *st)
{
    return (double)st->bytes / (double)MAX(st->usec, 1) / 1000.0;
}

static void
bench_throughput(const char *certs, double memcpy_rate)
{
    vm *src = bench_vm(GiB, 0);

    fill_ram(src);
    printf("\n(a) throughput, 1 GiB of data, vCPUs stopped\n");
    printf("  %-6s %10s %10s %12s  %s\n", "stream", "MiB", "seconds", "GB/s", "vs memcpy");
    for (int i = 0; i < 2; i++) {
        run_result r = { 0 };

        if (!migrate_once(src, GiB, i ? certs : NULL, &r))
            continue;
        printf("  %-6s %10.0f %10.2f %12.2f  %.3fx%s%s\n", r.transport,
               r.st.bytes / (double)MiB, r.st.usec / 1e6, gbs(&r.st), gbs(&r.st) / memcpy_rate,
               *r.tls_desc ? "  " : "", r.tls_desc);
    }
    vm__free(src);
}

static void
bench_live(guint64 size, const char *certs)
{
    for (int i = 0; i < 2; i++) {
        g_autoptr(GError) err = NULL;
        run_result r = { 0 };
        vm_result vr;
        vm *src;

        if (mem_available() < 2 * size + MARGIN) {
            printf("  %4" G_GUINT64_FORMAT " GiB  skipped: MemAvailable below twice the guest\n",
                   size / GiB);
            return;
        }
        src = bench_vm(size, DIRTY_RATE);
        fill_ram(src);
        if (!vm__start(src, &err))
            g_error("%s", err->message);
        g_usleep(500 * 1000);            /* the guest writes at its rate */
        if (migrate_once(src, size, i ? certs : NULL, &r))
            printf("  %4" G_GUINT64_FORMAT " GiB  %-6s %6u %10.2f %12.1f %10.2f %12.1f  %s\n",
                   size / GiB, r.transport, r.st.rounds, r.st.usec / 1e6,
                   r.st.downtime_usec / 1000.0, gbs(&r.st),
                   r.live_dirty_bytes / (double)MiB / (MAX(r.live_usec, 1) / 1e6),
                   r.st.converged ? "converged" : "round limit");
        vm__stop(src, &vr);
        vm__free(src);
    }
}

/* Touch @bytes of anonymous memory once, in 1 GiB pieces, and give it
 * back. */
static void
warm_up(guint64 bytes)
{
    guint64 t0 = now_ns();
    GPtrArray *pieces = g_ptr_array_new();

    for (guint64 done = 0; done < bytes; done += GiB) {
        void *p = mmap(NULL, GiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
            break;
        memset(p, 1, GiB);
        g_ptr_array_add(pieces, p);
    }
    printf("warm-up: touched %u GiB in %.1f s\n", pieces->len, (now_ns() - t0) / 1e9);
    for (guint i = 0; i < pieces->len; i++)
        munmap(g_ptr_array_index(pieces, i), GiB);
    g_ptr_array_free(pieces, TRUE);
}

static char *
make_certs(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("bench-migration-XXXXXX", &err);
    const char *argv[] = { "bash", TLS_CERTS_SCRIPT, dir, NULL };
    int status;

    if (!dir ||
        !g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                      &status, &err) ||
        !g_spawn_check_wait_status(status, &err)) {
        g_printerr("bench-migration: cannot make TLS certificates: %s\n",
                   err ? err->message : "no temporary directory");
        return NULL;
    }
    return g_build_filename(dir, "good", NULL);
}

int
main(void)
{
    g_autofree char *certs = NULL;
    g_autofree char *root = NULL;
    double mc;
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        printf("bench-migration: no usable /dev/kvm: %s\n", g_strerror(errno));
        return 77;
    }
    close(fd);
    if (!(certs = make_certs()))
        return 77;
    root = g_path_get_dirname(certs);
    /* Both VMs of the largest run, and the memcpy buffers. */
    warm_up(MIN(10 * GiB, mem_available() > MARGIN ? mem_available() - MARGIN : 0));
    mc = memcpy_gbs();
    printf("bench-migration: embedded VMM live migration over TCP loopback\n");
    printf("memcpy (1 GiB, best of 3): %.2f GB/s\n", mc);
    bench_throughput(certs, mc);
    printf("\n(b) running guest dirtying %" G_GUINT64_FORMAT " MiB/s, downtime target %"
           G_GUINT64_FORMAT " MiB, RAM all data\n", DIRTY_RATE / MiB, DOWNTIME / MiB);
    printf("  %8s %-6s %6s %10s %12s %10s %12s\n", "guest", "stream", "rounds", "total s",
           "downtime ms", "GB/s", "dirty MiB/s");
    bench_live(GiB, certs);
    bench_live(4 * GiB, certs);
    {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", root);

        if (system(cmd) != 0)
            g_printerr("bench-migration: could not remove %s\n", root);
    }
    return 0;
}

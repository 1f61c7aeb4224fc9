/*
 * test-migration-tls.c: live migration of a running guest over TCP on
 * loopback with TLS (migration/tls_session.c and tls_creds.c, gnutls, certificates made by
 * tls-certs.sh with certtool), and the bad peers of the issue: a wrong
 * certificate, a peer that disappears mid-stream, garbage inside the
 * TLS session.  Every failure leaves the source running with its memory
 * intact (assert_source_runs) and the destination not started.
 */
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "migration-rig.h"
#include "migration/migration.h"
#include "migration/socket.h"
#include "migration/tls.h"

#ifndef TLS_CERTS_SCRIPT
#error "TLS_CERTS_SCRIPT: tests/meson.build passes the path of tls-certs.sh"
#endif

static char *certs;                      /* tls-certs.sh's output */

typedef enum {
    PEER_RECEIVE,                        /* migration__receive */
    PEER_VANISH,                         /* read 8 MiB of the stream, then close */
} peer_kind;

typedef struct peer {
    GThread *thread;
    vm *dst;
    int lfd;
    const char *dir;                     /* its certificates */
    peer_kind kind;
    gboolean ok;
    GError *err;
    migration_stats st;
} peer;

static gpointer
peer_main(gpointer data)
{
    peer *pr = data;
    migration_tls_config tc = { .x509_dir = pr->dir, .verify_peer = true };
    migration_params p = { .timeout_ms = 20000 };
    migration_tls *tls = NULL;
    int fd = migration_socket__accept(pr->lfd, 20000, &pr->err);

    if (fd < 0)
        return NULL;
    if ((tls = migration_tls__handshake(fd, MIGRATION_TLS_SERVER, &tc, 20000, &pr->err))) {
        if (pr->kind == PEER_RECEIVE) {
            p.tls = tls;
            pr->ok = migration__receive(pr->dst, fd, &p, &pr->st, &pr->err);
        } else {
            g_autofree guint8 *buf = g_malloc(MiB);
            guint64 got = 0;
            gssize n;

            while (got < 8 * MiB && (n = migration_tls__read(tls, buf, MiB, 20000, &pr->err)) > 0)
                got += n;
            /* Gone: no close_notify, the socket just closes. */
            shutdown(fd, SHUT_RDWR);
        }
    }
    /* After the shutdown its close_notify cannot go out: gone for good. */
    g_clear_pointer(&tls, migration_tls__free);
    close(fd);
    return NULL;
}

static peer *
peer_start(vm *dst, const char *dir, peer_kind kind, char **address)
{
    g_autoptr(GError) err = NULL;
    peer *pr = g_new0(peer, 1);

    pr->dst = dst;
    pr->dir = dir;
    pr->kind = kind;
    pr->lfd = migration_socket__listen("127.0.0.1:0", &err);
    g_assert_no_error(err);
    *address = g_strdup_printf("127.0.0.1:%u", migration_socket__port(pr->lfd));
    pr->thread = g_thread_new("peer", peer_main, pr);
    return pr;
}

static void
peer_join(peer *pr)
{
    g_thread_join(pr->thread);
    pr->thread = NULL;
}

static void
peer_free(peer *pr)
{
    if (pr->thread)
        g_thread_join(pr->thread);
    close(pr->lfd);
    g_clear_error(&pr->err);
    g_free(pr);
}

/* Connect, handshake as the source with @dir's certificates, migrate. */
static gboolean
source_migrate(vm *src, const char *address, const char *dir, migration_stats *st,
               GError **error)
{
    migration_tls_config tc = { .x509_dir = dir, .hostname = "localhost" };
    migration_params p = { .downtime_bytes = 8 * MiB, .max_rounds = 6, .timeout_ms = 20000,
                           .return_path = true };
    g_autoptr(migration_tls) tls = NULL;
    int fd = migration_socket__connect(address, 20000, error);
    gboolean ok = FALSE;

    *st = (migration_stats){ 0 };
    if (fd < 0)
        return FALSE;
    if ((tls = migration_tls__handshake(fd, MIGRATION_TLS_CLIENT, &tc, 20000, error))) {
        g_test_message("TLS session: %s", migration_tls__description(tls));
        p.tls = tls;
        ok = migration__send(src, fd, &p, st, error);
    }
    g_clear_pointer(&tls, migration_tls__free);
    close(fd);
    return ok;
}

static char *
dir_of(const char *name)
{
    return g_build_filename(certs, name, NULL);
}

static void
test_full(void)
{
    g_autofree char *good = dir_of("good"), *address = NULL;
    g_autoptr(GError) err = NULL;
    vm_accel accel = best_accel();
    /* Small and slow to dirty: the test runs under valgrind too, where
     * every byte of AES costs. */
    vm *src = new_vm_rate(accel, 64, 16 * MiB), *dst = new_vm(accel, 64);
    peer *pr = peer_start(dst, good, PEER_RECEIVE, &address);
    migration_stats st;
    vm_result r;
    guint32 at = 0;

    g_assert_true(vm__start(src, &err));
    wait_passes(src, 1);

    g_assert_true(source_migrate(src, address, good, &st, &err));
    g_assert_no_error(err);
    peer_join(pr);
    g_assert_no_error(pr->err);
    g_assert_true(pr->ok);
    g_test_message("%u rounds, %.1f MiB over TLS in %.0f ms, downtime %.1f ms", st.rounds,
                   st.bytes / (double)MiB, st.usec / 1000.0, st.downtime_usec / 1000.0);
    /* Switch-over: the same RAM on both sides, every page. */
    g_assert_true(vm__paused(src));
    g_assert_cmphex(pr->st.checksum, ==, st.checksum);
    g_assert_true(memcmp(vm__ram_region(src)->ram, vm__ram_region(dst)->ram,
                         vm__ram_region(src)->size) == 0);
    g_assert_cmphex(migration__ram_checksum(src), ==, migration__ram_checksum(dst));
    /* The guest continues on the destination from where it was. */
    at = params_of(dst, 0)->pass;
    g_assert_true(vm__start(dst, &err));
    wait_passes(dst, 2);
    g_assert_cmpuint(params_of(dst, 0)->pass, >=, at + 2);
    vm__stop(dst, &r);
    g_assert_true(r.checksum_ok);
    g_assert_cmpuint(r.guest_errors, ==, 0);
    vm__stop(src, &r);
    peer_free(pr);
    vm__free(dst);
    vm__free(src);
}

/* The source trusts another CA than the one that signed the destination's
 * certificate (or the destination another than the source's): the
 * handshake fails on both sides, nothing of the guest is sent. */
static void
test_wrong_certificate(gconstpointer data)
{
    const char *client_dir = data;
    g_autofree char *good = dir_of("good"), *theirs = dir_of(client_dir), *address = NULL;
    g_autoptr(GError) err = NULL;
    vm_accel accel = best_accel();
    vm *src = running_vm(accel, 64), *dst = new_vm(accel, 64);
    peer *pr = peer_start(dst, good, PEER_RECEIVE, &address);
    migration_stats st;

    g_assert_false(source_migrate(src, address, theirs, &st, &err));
    peer_join(pr);
    g_assert_nonnull(err);
    g_test_message("source: %s", err->message);
    g_assert_nonnull(pr->err);
    g_test_message("destination: %s", pr->err->message);
    g_assert_nonnull(strstr(err->message, "certificate"));
    g_assert_nonnull(strstr(pr->err->message, "certificate"));
    g_assert_cmpuint(st.bytes, ==, 0);
    g_assert_false(pr->ok);
    g_assert_false(vm__started(dst));
    assert_source_runs(src);
    peer_free(pr);
    vm__free(dst);
    vm__free(src);
}

/* The destination vanishes after 8 MiB of a TLS stream. */
static void
test_peer_vanishes(void)
{
    g_autofree char *good = dir_of("good"), *address = NULL;
    g_autoptr(GError) err = NULL;
    vm_accel accel = best_accel();
    vm *src = running_vm(accel, 128);
    peer *pr = peer_start(NULL, good, PEER_VANISH, &address);
    migration_stats st;

    g_assert_false(source_migrate(src, address, good, &st, &err));
    g_test_message("source: %s", err->message);
    g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_assert_nonnull(strstr(err->message, "the guest keeps running on the source"));
    g_assert_cmpuint(st.bytes, >=, 8 * MiB);
    assert_source_runs(src);
    peer_free(pr);
    vm__free(src);
}

/* A TLS client that is not a migration source: valid TLS, garbage inside. */
static void
test_garbage_in_tls(void)
{
    g_autofree char *good = dir_of("good"), *address = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(migration_tls) tls = NULL;
    migration_tls_config tc = { .x509_dir = good, .hostname = "localhost" };
    vm *dst = new_vm(best_accel(), 64);
    peer *pr = peer_start(dst, good, PEER_RECEIVE, &address);
    const char junk[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    int fd = migration_socket__connect(address, 5000, &err);

    g_assert_no_error(err);
    tls = migration_tls__handshake(fd, MIGRATION_TLS_CLIENT, &tc, 5000, &err);
    g_assert_no_error(err);
    g_assert_true(migration_tls__write_all(tls, junk, sizeof(junk) - 1, 5000, &err));
    peer_join(pr);
    g_clear_pointer(&tls, migration_tls__free);
    close(fd);
    g_test_message("destination: %s", pr->err->message);
    g_assert_error(pr->err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    g_assert_nonnull(strstr(pr->err->message, "not a dmaguard migration stream"));
    g_assert_false(vm__started(dst));
    peer_free(pr);
    vm__free(dst);
}

static char *
make_certs(void)
{
    g_autoptr(GError) err = NULL;
    char *dir = g_dir_make_tmp("dmg-migration-tls-XXXXXX", &err);
    const char *argv[] = { "bash", TLS_CERTS_SCRIPT, dir, NULL };
    g_autofree char *out = NULL;
    int status;

    g_assert_no_error(err);
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, &out,
                      &status, &err) ||
        !g_spawn_check_wait_status(status, &err))
        g_error("%s failed: %s: %s", TLS_CERTS_SCRIPT, err->message, out ? out : "");
    return dir;
}

int
main(int argc, char **argv)
{
    int ret;
    g_autofree char *rm = NULL;

    g_test_init(&argc, &argv, NULL);
    certs = make_certs();
    g_test_add_func("/migration-tls/full", test_full);
    g_test_add_data_func("/migration-tls/source-trusts-another-ca", "other", test_wrong_certificate);
    g_test_add_data_func("/migration-tls/source-certificate-from-another-ca", "badclient",
                         test_wrong_certificate);
    g_test_add_func("/migration-tls/destination-vanishes-mid-stream", test_peer_vanishes);
    g_test_add_func("/migration-tls/garbage-inside-tls", test_garbage_in_tls);
    ret = g_test_run();
    rm = g_strdup_printf("rm -rf '%s'", certs);
    if (system(rm) != 0)
        g_printerr("could not remove %s\n", certs);
    g_free(certs);
    return ret;
}

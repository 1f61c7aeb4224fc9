/*
 * migration/channel.c: the migration's byte stream (migration/channel.h).
 */
#include "migration/channel.h"

#include <errno.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmg_i18n.h"

void
mig_chan__init(mig_chan *c, int fd, migration_tls *tls, guint timeout_ms, const char *peer)
{
    struct stat st;

    c->fd = fd;
    c->tls = tls;
    c->sock = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    c->timeout_ms = timeout_ms ? timeout_ms : MIG_DEFAULT_TIMEOUT_MS;
    c->bytes = 0;
    c->peer = peer;
}

static gboolean
mig_chan__wait(mig_chan *c, short events, GError **error)
{
    struct pollfd pfd = { .fd = c->fd, .events = events };
    int r;

    do
        r = poll(&pfd, 1, (int)MIN(c->timeout_ms, (guint)G_MAXINT));
    while (r < 0 && errno == EINTR);
    if (r > 0)
        return TRUE;
    if (r == 0)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    events == POLLIN ? _("no data from the migration %s for %u ms (after %" PRIu64 " bytes)")
                                     : _("the migration %s took no data for %u ms (after %" PRIu64 " bytes)"),
                    c->peer, c->timeout_ms, c->bytes);
    else
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("waiting for the migration %s failed: %s"), c->peer, g_strerror(errno));
    return FALSE;
}

static gboolean
mig_chan__errno(mig_chan *c, int err, bool writing, GError **error)
{
    if (err == EPIPE || err == ECONNRESET || err == ENOTCONN)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                    _("the migration %s went away after %" PRIu64 " bytes: %s"),
                    c->peer, c->bytes, g_strerror(err));
    else
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                    writing ? _("writing the migration stream failed after %" PRIu64 " bytes: %s")
                            : _("reading the migration stream failed after %" PRIu64 " bytes: %s"),
                    c->bytes, g_strerror(err));
    return FALSE;
}

/* MSG_NOSIGNAL on a socket; elsewhere SIGPIPE blocked in this thread
 * around the write, and taken if the write raised it. */
static gssize
mig_chan__writev_once(mig_chan *c, struct iovec *iov, int n)
{
    static const struct timespec zero;
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
    sigset_t pipe_set, old;
    gssize r;
    int err;

    if (c->sock)
        return sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    r = writev(c->fd, iov, n);
    err = errno;
    if (r < 0 && err == EPIPE && !sigismember(&old, SIGPIPE))
        sigtimedwait(&pipe_set, NULL, &zero);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return r;
}

/* Through TLS: small pieces (record headers) gathered, so a record of
 * the stream is not split into a TLS record per header. */
static gboolean
mig_chan__writev_tls(mig_chan *c, struct iovec *iov, int n, GError **error)
{
    guint8 small[256];
    gsize fill = 0;

    for (int i = 0; i <= n; i++) {
        bool last = i == n;

        if (!last && iov[i].iov_len <= sizeof(small) - fill) {
            memcpy(small + fill, iov[i].iov_base, iov[i].iov_len);
            fill += iov[i].iov_len;
            continue;
        }
        if (fill && !migration_tls__write_all(c->tls, small, fill, c->timeout_ms, error))
            return FALSE;
        c->bytes += fill;
        fill = 0;
        if (last)
            break;
        if (!migration_tls__write_all(c->tls, iov[i].iov_base, iov[i].iov_len,
                                      c->timeout_ms, error))
            return FALSE;
        c->bytes += iov[i].iov_len;
    }
    return TRUE;
}

gboolean
mig_chan__writev(mig_chan *c, struct iovec *iov, int n, GError **error)
{
    if (c->tls)
        return mig_chan__writev_tls(c, iov, n, error);
    while (n > 0) {
        gssize r;

        if (!mig_chan__wait(c, POLLOUT, error))
            return FALSE;
        r = mig_chan__writev_once(c, iov, n);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (r < 0)
            return mig_chan__errno(c, errno, true, error);
        c->bytes += r;
        for (; n > 0 && (gsize)r >= iov->iov_len; iov++, n--)
            r -= iov->iov_len;
        if (n > 0) {
            iov->iov_base = (guint8 *)iov->iov_base + r;
            iov->iov_len -= r;
        }
    }
    return TRUE;
}

/* Into @buf until *@got == @len or the end of the stream (TRUE both);
 * ECONNRESET counts as that end when @reset_ends. */
static gboolean
mig_chan__fill(mig_chan *c, void *buf, gsize len, gsize *got, bool reset_ends,
               GError **error)
{
    *got = 0;
    while (*got < len) {
        gssize r;

        if (c->tls) {
            if ((r = migration_tls__read(c->tls, (guint8 *)buf + *got, len - *got,
                                         c->timeout_ms, error)) < 0)
                return FALSE;
        } else if (!mig_chan__wait(c, POLLIN, error)) {
            return FALSE;
        } else {
            r = c->sock ? recv(c->fd, (guint8 *)buf + *got, len - *got, MSG_DONTWAIT)
                        : read(c->fd, (guint8 *)buf + *got, len - *got);
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (r < 0 && errno == ECONNRESET && reset_ends)
            r = 0;
        if (r < 0)
            return mig_chan__errno(c, errno, false, error);
        if (r == 0)
            return TRUE;
        *got += r;
        c->bytes += r;
    }
    return TRUE;
}

/* 1: @len bytes read; 0: end of stream before the first byte, when
 * @eof_ok; -1: error (a stream ending inside @what is truncated). */
int
mig_chan__read(mig_chan *c, void *buf, gsize len, const char *what, bool eof_ok,
               GError **error)
{
    gsize got;

    if (!mig_chan__fill(c, buf, len, &got, false, error))
        return -1;
    if (got == len)
        return 1;
    if (got == 0 && eof_ok)
        return 0;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                _("migration stream ended after %" PRIu64 " bytes in the middle of %s"),
                c->bytes, what);
    return -1;
}

gboolean
mig_chan__read_all(mig_chan *c, void *buf, gsize len, const char *what, GError **error)
{
    return mig_chan__read(c, buf, len, what, false, error) == 1;
}

gboolean
mig_chan__read_upto(mig_chan *c, void *buf, gsize len, gsize *got, GError **error)
{
    return mig_chan__fill(c, buf, len, got, true, error);
}

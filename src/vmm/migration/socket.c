/*
 * migration/socket.c: the TCP and UNIX transports of the migration
 * stream, with plain getaddrinfo and non-blocking connect, so that the
 * fds are ours from the start (CLOEXEC, no GSocket to steal them from)
 * and a connect cannot hang past its timeout.
 */
#include "migration/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dmg_i18n.h"

#define SOCKET_DEFAULT_TIMEOUT_MS 30000u
#define SOCKET_BACKLOG 16

/* A parsed address: either @path (unix:) or @host and @port (TCP). */
typedef struct sock_addr {
    char *path;
    char *host;                          /* NULL: any address (listen only) */
    char *port;
} sock_addr;

static void
sock_addr__clear(sock_addr *a)
{
    g_clear_pointer(&a->path, g_free);
    g_clear_pointer(&a->host, g_free);
    g_clear_pointer(&a->port, g_free);
}

static gboolean
sock_addr__invalid(const char *address, GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                _("invalid migration address '%s': expected HOST:PORT or unix:PATH"), address);
    return FALSE;
}

/* Decimal 0..65535, nothing else: getaddrinfo would also take service
 * names, which a migration URI never carries. */
static gboolean
sock_addr__port_ok(const char *port)
{
    guint64 v;

    return g_ascii_string_to_unsigned(port, 10, 0, 65535, &v, NULL);
}

static gboolean
sock_addr__parse_unix(const char *address, sock_addr *a, GError **error)
{
    const char *path = address + strlen("unix:");

    if (!*path)
        return sock_addr__invalid(address, error);
    if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
                    _("invalid migration address '%s': a UNIX socket path has at most %zu bytes"),
                    address, sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
        return FALSE;
    }
    a->path = g_strdup(path);
    return TRUE;
}

/* "HOST:PORT" or "[V6]:PORT"; an empty host only where @listening. */
static gboolean
sock_addr__parse_tcp(const char *address, const char *rest, bool listening,
                     sock_addr *a, GError **error)
{
    const char *colon;

    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');

        if (!close || close[1] != ':' || close == rest + 1)
            return sock_addr__invalid(address, error);
        a->host = g_strndup(rest + 1, close - rest - 1);
        colon = close + 1;
    } else {
        colon = strrchr(rest, ':');
        /* an IPv6 address needs its brackets: "::1:80" is ambiguous */
        if (!colon || memchr(rest, ':', colon - rest))
            return sock_addr__invalid(address, error);
        if (colon > rest)
            a->host = g_strndup(rest, colon - rest);
        else if (!listening)
            return sock_addr__invalid(address, error);
    }
    a->port = g_strdup(colon + 1);
    if (!sock_addr__port_ok(a->port) || (!listening && atoi(a->port) == 0))
        return sock_addr__invalid(address, error);
    return TRUE;
}

static gboolean
sock_addr__parse_any(const char *address, bool listening, sock_addr *a, GError **error)
{
    if (!address || !*address)
        return sock_addr__invalid(address ? address : "", error);
    if (g_str_has_prefix(address, "unix:"))
        return sock_addr__parse_unix(address, a, error);
    /* a listener given only a port stays on this host, never the network */
    if (listening && sock_addr__port_ok(address)) {
        a->host = g_strdup("127.0.0.1");
        a->port = g_strdup(address);
        return TRUE;
    }
    if (g_str_has_prefix(address, "tcp:"))
        return sock_addr__parse_tcp(address, address + 4, listening, a, error);
    return sock_addr__parse_tcp(address, address, listening, a, error);
}

/* On failure @a holds nothing: the parsers may have filled half of it. */
static gboolean
sock_addr__parse(const char *address, bool listening, sock_addr *a, GError **error)
{
    memset(a, 0, sizeof(*a));
    if (sock_addr__parse_any(address, listening, a, error))
        return TRUE;
    sock_addr__clear(a);
    return FALSE;
}

static struct addrinfo *
sock_addr__resolve(const char *address, const sock_addr *a, bool listening,
                   GError **error)
{
    struct addrinfo hints = {
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICSERV | (listening ? AI_PASSIVE : 0),
    };
    struct addrinfo *res = NULL;
    int r = getaddrinfo(a->host, a->port, &hints, &res);

    if (r == 0)
        return res;
    g_set_error(error, G_IO_ERROR,
                r == EAI_NONAME || r == EAI_NODATA ? G_IO_ERROR_HOST_NOT_FOUND
                                                   : G_IO_ERROR_FAILED,
                listening ? _("cannot listen on the migration address %s: unknown host (%s)")
                          : _("cannot connect to the migration destination %s: unknown host (%s)"),
                address, r == EAI_SYSTEM ? g_strerror(errno) : gai_strerror(r));
    return NULL;
}

static void
sock_addr__unix(const sock_addr *a, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    g_strlcpy(sun->sun_path, a->path, sizeof(sun->sun_path));
}

/* ------------------------------------------------------------------ */
/* Connect                                                              */

static gint64
socket__deadline(guint timeout_ms)
{
    return g_get_monotonic_time() + (gint64)(timeout_ms ? timeout_ms : SOCKET_DEFAULT_TIMEOUT_MS) * 1000;
}

/* Milliseconds left before @deadline, rounded up so that poll never
 * spins on 0 before the time is really up. */
static int
socket__left_ms(gint64 deadline)
{
    gint64 left = deadline - g_get_monotonic_time();

    return left <= 0 ? 0 : (int)MIN((left + 999) / 1000, G_MAXINT);
}

/* Wait for a non-blocking connect to finish; 0 or the errno. */
static int
socket__connect_wait(int fd, gint64 deadline)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    socklen_t len = sizeof(int);
    int r, err = 0;

    do
        r = poll(&pfd, 1, socket__left_ms(deadline));
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return ETIMEDOUT;
    if (r < 0)
        return errno;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

static gboolean
socket__set_blocking(int fd, bool blocking)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return FALSE;
    fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
    return fcntl(fd, F_SETFL, fl) == 0;
}

/* One attempt; the fd (blocking again) or -1 with errno.  A UNIX
 * listener with a full backlog answers EAGAIN: try again until the
 * deadline, as a TCP SYN would be retransmitted. */
static int
socket__connect_one(int family, const struct sockaddr *sa, socklen_t salen, gint64 deadline)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int err = 0;

    if (fd < 0)
        return -1;
    while (connect(fd, sa, salen) < 0) {
        err = errno;
        if (err == EINTR)
            continue;
        if (err == EAGAIN && family == AF_UNIX && socket__left_ms(deadline) > 0) {
            g_usleep(10000);
            continue;
        }
        if (err == EINPROGRESS)
            err = socket__connect_wait(fd, deadline);
        break;
    }
    if (err == 0 && socket__set_blocking(fd, true))
        return fd;
    err = err ? err : errno;
    close(fd);
    errno = err;
    return -1;
}

static int
socket__connect_error(const char *address, int err, GError **error)
{
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("cannot connect to the migration destination %s: %s"),
                address, g_strerror(err));
    return -1;
}

static int
socket__connect_tcp(const char *address, const sock_addr *a, gint64 deadline,
                    GError **error)
{
    struct addrinfo *res = sock_addr__resolve(address, a, false, error);
    int fd = -1, err = ECONNREFUSED;

    if (!res)
        return -1;
    /* every address the name has, as QEMU's inet_connect_saddr does */
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket__connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline);
        if (fd < 0)
            err = errno;
    }
    freeaddrinfo(res);
    return fd >= 0 ? fd : socket__connect_error(address, err, error);
}

int
migration_socket__connect(const char *address, guint timeout_ms, GError **error)
{
    sock_addr a;
    gint64 deadline = socket__deadline(timeout_ms);
    int fd;

    if (!sock_addr__parse(address, false, &a, error))
        return -1;
    if (a.path) {
        struct sockaddr_un sun;

        sock_addr__unix(&a, &sun);
        fd = socket__connect_one(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun), deadline);
        if (fd < 0)
            socket__connect_error(address, errno, error);
    } else {
        fd = socket__connect_tcp(address, &a, deadline, error);
    }
    sock_addr__clear(&a);
    return fd;
}

/* ------------------------------------------------------------------ */
/* Listen and accept                                                    */

static int
socket__listen_error(const char *address, int err, GError **error)
{
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("cannot listen on the migration address %s: %s"),
                address, g_strerror(err));
    return -1;
}

/* The listener is non-blocking so that a connection reset between
 * poll() and accept() cannot block migration_socket__accept. */
static int
socket__listen_one(int family, const struct sockaddr *sa, socklen_t salen)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1, err;

    if (fd < 0)
        return -1;
    /* a destination restarted right after a failed migration must not
     * wait out TIME_WAIT on its port */
    if (family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, sa, salen) == 0 && listen(fd, SOCKET_BACKLOG) == 0)
        return fd;
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

/* A socket file left by a destination that died is in the way of bind;
 * anything else at @path is not ours to remove. */
static void
socket__unlink_stale(const char *path)
{
    struct stat st;

    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
}

static int
socket__listen_tcp(const char *address, const sock_addr *a, GError **error)
{
    struct addrinfo *res = sock_addr__resolve(address, a, true, error);
    int fd = -1, err = EADDRNOTAVAIL;

    if (!res)
        return -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket__listen_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen);
        if (fd < 0)
            err = errno;
    }
    freeaddrinfo(res);
    return fd >= 0 ? fd : socket__listen_error(address, err, error);
}

int
migration_socket__listen(const char *address, GError **error)
{
    sock_addr a;
    int fd;

    if (!sock_addr__parse(address, true, &a, error))
        return -1;
    if (a.path) {
        struct sockaddr_un sun;

        sock_addr__unix(&a, &sun);
        socket__unlink_stale(a.path);
        fd = socket__listen_one(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun));
        if (fd < 0)
            socket__listen_error(address, errno, error);
    } else {
        fd = socket__listen_tcp(address, &a, error);
    }
    sock_addr__clear(&a);
    return fd;
}

guint
migration_socket__port(int lfd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

static int
socket__accept_error(int lfd, int err, guint timeout_ms, GError **error)
{
    g_autofree char *where = migration_socket__peer_local(lfd);

    if (err == ETIMEDOUT)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                    _("no migration source connected to %s within %u ms"), where, timeout_ms);
    else
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                    _("accepting the migration connection on %s failed: %s"),
                    where, g_strerror(err));
    return -1;
}

/* Errors of accept() that concern the connection that went away, not
 * the listener: wait for the next one (accept(2), "Error handling"). */
static bool
socket__accept_retry(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED ||
           err == EPROTO || err == ENETDOWN || err == ENOPROTOOPT || err == EHOSTDOWN ||
           err == ENONET || err == EHOSTUNREACH || err == EOPNOTSUPP || err == ENETUNREACH;
}

int
migration_socket__accept(int lfd, guint timeout_ms, GError **error)
{
    gint64 deadline = timeout_ms ? g_get_monotonic_time() + (gint64)timeout_ms * 1000 : 0;

    for (;;) {
        struct pollfd pfd = { .fd = lfd, .events = POLLIN };
        int r = poll(&pfd, 1, deadline ? socket__left_ms(deadline) : -1);
        int fd;

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return socket__accept_error(lfd, errno, timeout_ms, error);
        if (r == 0)
            return socket__accept_error(lfd, ETIMEDOUT, timeout_ms, error);
        /* accept4 does not pass O_NONBLOCK on: the connection is blocking */
        fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (!socket__accept_retry(errno))
            return socket__accept_error(lfd, errno, timeout_ms, error);
    }
}

/* ------------------------------------------------------------------ */
/* Addresses as text                                                    */

static char *
socket__format(const struct sockaddr_storage *ss, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        return g_strdup_printf("%s:%u", host, ntohs(in->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        return g_strdup_printf("[%s]:%u", host, ntohs(in6->sin6_port));
    }
    if (ss->ss_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path)) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
        gsize n = len - offsetof(struct sockaddr_un, sun_path);

        if (un->sun_path[0] == '\0')    /* Linux's abstract namespace */
            return n > 1 ? g_strdup_printf("@%.*s", (int)(n - 1), un->sun_path + 1) : NULL;
        return g_strndup(un->sun_path, n);
    }
    return NULL;
}

/* This end's own address, for a listener or a UNIX peer without a name. */
char *
migration_socket__peer_local(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char *s = NULL;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        s = socket__format(&ss, len);
    return s ? s : g_strdup_printf(_("fd %d"), fd);
}

char *
migration_socket__peer(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char *s = NULL;

    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        s = socket__format(&ss, len);
    /* the connecting end of a UNIX socket is unnamed: name the path it
     * reached, which is the one the person typed */
    if (!s && ss.ss_family == AF_UNIX)
        return migration_socket__peer_local(fd);
    return s ? s : g_strdup_printf(_("fd %d"), fd);
}

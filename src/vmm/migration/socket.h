/*
 * migration/socket.h: the transports of the migration stream, as QEMU's
 * -incoming / migrate URIs name them:
 *   "HOST:PORT", "[IPV6]:PORT", "tcp:HOST:PORT"   TCP
 *   "unix:PATH"                                   a UNIX socket
 * A listener given only "PORT" listens on the loopback address
 * (127.0.0.1); "tcp::PORT" (an empty host) listens on every address, as
 * in QEMU.  Every fd is the caller's, CLOEXEC; connected fds are
 * blocking, listeners non-blocking.
 * Errors: G_IO_ERROR_INVALID_ARGUMENT ("invalid migration address
 * '%s': expected HOST:PORT or unix:PATH"), G_IO_ERROR_HOST_NOT_FOUND,
 * G_IO_ERROR_TIMED_OUT, else the G_IO_ERROR of the errno
 * (CONNECTION_REFUSED, NOT_FOUND for a UNIX path, ADDRESS_IN_USE, ...).
 */
#pragma once

#include <glib.h>

/* Connect within @timeout_ms (0: 30 s).  Returns the fd, or -1 with an
 * error naming the address ("Connection refused", "unknown host"). */
int migration_socket__connect(const char *address, guint timeout_ms, GError **error);

/* Bind and listen; port 0 picks a free port (see migration_socket__port).
 * A socket file left at a UNIX path is replaced; the caller removes the
 * file when done. */
int migration_socket__listen(const char *address, GError **error);
/* The TCP port @lfd listens on, 0 for a UNIX socket. */
guint migration_socket__port(int lfd);
/* Accept one connection within @timeout_ms (0: wait forever). */
int migration_socket__accept(int lfd, guint timeout_ms, GError **error);
/* The peer's address as text, for messages: "127.0.0.1:4567",
 * "[::1]:4567", or a UNIX socket's path (the one both ends share). */
char *migration_socket__peer(int fd);
/* This end's own address as text (a listener's, for messages). */
char *migration_socket__peer_local(int fd);

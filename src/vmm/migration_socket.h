/*
 * migration_socket.h: the transports of the migration stream, as QEMU's
 * -incoming / migrate URIs name them:
 *   "HOST:PORT", "[IPV6]:PORT", "tcp:HOST:PORT"   TCP
 *   "unix:PATH"                                   a UNIX socket
 * A listener given only "PORT" listens on the loopback address.
 */
#pragma once

#include <glib.h>

/* Connect within @timeout_ms (0: 30 s).  Returns the fd, or -1 with an
 * error naming the address ("Connection refused", "unknown host"). */
int migration_socket__connect(const char *address, guint timeout_ms, GError **error);

/* Bind and listen; port 0 picks a free port (see migration_socket__port). */
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

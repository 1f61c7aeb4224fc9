/*
 * migration/channel.h: the VMM's byte stream to a migration peer, for
 * the migration stream (migration/migration.h) and anything said on the same
 * connection before it (the prepare exchange): a socket, pipe or file,
 * or a TLS session on a socket; never blocking past a timeout, never
 * raising SIGPIPE.  Counts the bytes it moved, for progress and error
 * messages.  Its own errors name the peer "the migration <peer>"; a TLS
 * session's come as migration/tls.h words them.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "migration/tls.h"

#define MIG_DEFAULT_TIMEOUT_MS 30000u

typedef struct mig_chan {
    int fd;
    migration_tls *tls;                  /* the session on fd, or NULL */
    bool sock;
    guint timeout_ms;
    guint64 bytes;                       /* moved so far */
    const char *peer;                    /* "source", "destination 127.0.0.1:4567" */
} mig_chan;

/* @peer names the other end in messages, after "the migration ":
 * "source", "destination", "destination 127.0.0.1:4567".  @tls is the
 * session on @fd, or NULL for plain I/O; @timeout_ms bounds each wait
 * (0: MIG_DEFAULT_TIMEOUT_MS). */
void mig_chan__init(mig_chan *c, int fd, migration_tls *tls, guint timeout_ms,
                    const char *peer);
/* All of @iov (which it consumes), or an error naming the peer. */
gboolean mig_chan__writev(mig_chan *c, struct iovec *iov, int n, GError **error);
/* 1: @len bytes read; 0: end of stream before the first byte, when
 * @eof_ok; -1: error (a stream ending inside @what is truncated). */
int mig_chan__read(mig_chan *c, void *buf, gsize len, const char *what, bool eof_ok,
                   GError **error);
gboolean mig_chan__read_all(mig_chan *c, void *buf, gsize len, const char *what,
                            GError **error);
/* Up to @len bytes, for a caller that shows what arrived: TRUE with
 * *@got == @len, or *@got < @len when the stream ended first.  On a plain
 * connection a reset by the peer counts as its end (a peer that closes
 * with data unread resets the connection); a TLS session reports it, as
 * it does an end without close_notify.  FALSE with @error otherwise,
 * *@got what arrived before it. */
gboolean mig_chan__read_upto(mig_chan *c, void *buf, gsize len, gsize *got,
                             GError **error);

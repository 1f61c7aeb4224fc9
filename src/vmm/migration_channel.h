/*
 * migration_channel.h: the byte stream a migration runs on (internal to
 * migration*.c): a socket, pipe or file, or a TLS session on a socket;
 * never blocking past a timeout, never raising SIGPIPE.  Counts the
 * bytes it moved, for progress and error messages.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "migration_tls.h"

#define MIG_DEFAULT_TIMEOUT_MS 30000u

typedef struct mig_chan {
    int fd;
    migration_tls *tls;                  /* the session on fd, or NULL */
    bool sock;
    guint timeout_ms;
    guint64 bytes;                       /* moved so far */
    const char *peer;                    /* "source" or "destination" */
} mig_chan;

/* @peer names the other end in messages ("source", "destination"). */
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

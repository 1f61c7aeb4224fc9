/*
 * uring-probe.c: io_uring's fixed buffers, probed once (uring-probe.h).
 * valgrind 3.19 runs the tests that use them: it wraps
 * io_uring_setup/enter/register, and the data the kernel moves through
 * the fixed buffers lands in mmap'd guest memory (always "defined" to
 * memcheck) or comes back by pread.
 */
#include "uring-probe.h"

#include <liburing.h>

const char *
uring_unusable(void)
{
    static const char *why;
    static gsize once;

    if (g_once_init_enter(&once)) {
        struct io_uring ring;
        int ret;

        if (g_getenv("DMG_TEST_NO_URING")) {
            why = "DMG_TEST_NO_URING is set";
        } else if ((ret = io_uring_queue_init(1, &ring, 0)) < 0) {
            why = g_strdup_printf("io_uring_setup failed: %s", g_strerror(-ret));
        } else {
            if ((ret = io_uring_register_buffers_sparse(&ring, 1)) < 0)
                why = g_strdup_printf("sparse fixed buffers: %s", g_strerror(-ret));
            io_uring_queue_exit(&ring);
        }
        g_once_init_leave(&once, 1);
    }
    return why;
}

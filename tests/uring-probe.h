/*
 * uring-probe.h: whether io_uring's fixed buffers work here, for the
 * tests of the soft IOMMU that pins with them.
 */
#pragma once

#include <glib.h>

/* Why io_uring cannot be used (kernel.io_uring_disabled, a seccomp
 * filter, an old kernel, or DMG_TEST_NO_URING set), or NULL. */
const char *uring_unusable(void);

#define SKIP_IF_NO_URING()                                              \
    do {                                                                \
        if (uring_unusable()) {                                         \
            g_test_skip(uring_unusable());                              \
            return;                                                     \
        }                                                               \
    } while (0)

/*
 * test-paths.h: files of the source tree, for the unit tests.
 */
#pragma once

#include <glib.h>

/* $DMAGUARD_SOURCE_ROOT (set by meson), else the tree above the test's
 * G_TEST_DIST, joined with the NULL-terminated components.  Caller frees. */
char *source_path(const char *first, ...) G_GNUC_NULL_TERMINATED;

/*
 * dmg_file.h: the one reader for the files dmaguard is given (domain XML,
 * sysfs attributes, profile files), so that the same bytes give the same
 * verdict in check, argv, run, migrate and the hook, and a FIFO, a device
 * node or an endless file cannot hang or exhaust it.
 */
#pragma once

#include <glib.h>

/* The documented input limits (docs/virt-dmaguard.rst, LIMITS). */
#define DMG_FILE_MAX_XML (16 * 1024 * 1024)      /* a domain's XML */
#define DMG_FILE_MAX_SYSFS 4096                  /* one sysfs attribute */
#define DMG_FILE_MAX_PROFILE (1024 * 1024)       /* a host profile file */

/* Read @path whole into a NUL-terminated buffer: opened with O_NONBLOCK
 * and O_CLOEXEC, then fstat()ed, so only a regular file is read (a FIFO or
 * a device is refused before any read blocks), and at most @max bytes
 * (more is an error naming the limit).  Symlinks are followed, as the
 * kernel's sysfs links need.  Error messages name the file and the
 * expected form, never its contents. */
gboolean dmg_file_read(const char *path, gsize max, char **contents, gsize *len,
                       GError **error);

/*
 * dmg_file.c: the one bounded reader (dmg_file.h).
 */
#include "dmg_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmg_i18n.h"

/* "16 MiB" for a message: the limit, never the file. */
static char *
dmg_file_limit_string(gsize max)
{
    if (max % (1024 * 1024) == 0)
        return g_strdup_printf("%u MiB", (unsigned)(max / (1024 * 1024)));
    if (max % 1024 == 0)
        return g_strdup_printf("%u KiB", (unsigned)(max / 1024));
    return g_strdup_printf("%u bytes", (unsigned)max);
}

gboolean
dmg_file_read(const char *path, gsize max, char **contents, gsize *len, GError **error)
{
    g_autofree char *buf = NULL;
    struct stat st;
    gsize got = 0;
    int fd;

    *contents = NULL;
    if (len)
        *len = 0;
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)) < 0) {
        int e = errno;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
                    _("%s: cannot open it: %s"), path, g_strerror(e));
        return FALSE;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    _("%s is not a regular file (a FIFO, a device or a directory); give a file"),
                    path);
        return FALSE;
    }
    /* sysfs and procfs report a size of 4096 or 0 whatever they hold:
     * read until the end, within @max + 1 to see an overlong one. */
    buf = g_malloc(max + 2);
    for (;;) {
        ssize_t n = read(fd, buf + got, max + 1 - got);

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            int e = errno;

            close(fd);
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e),
                        _("%s: cannot read it: %s"), path, g_strerror(e));
            return FALSE;
        }
        if (n == 0)
            break;
        got += (gsize)n;
        if (got > max) {
            g_autofree char *limit = dmg_file_limit_string(max);

            close(fd);
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        _("%s is larger than %s, the most dmaguard reads of such a file"),
                        path, limit);
            return FALSE;
        }
    }
    close(fd);
    buf[got] = '\0';
    *contents = g_steal_pointer(&buf);
    if (len)
        *len = got;
    return TRUE;
}

/*
 * dmg_text.c: escaping for terminals and logs (dmg_text.h).
 */
#include "dmg_text.h"

#include <string.h>

char *
dmg_text_escape_controls(const char *s)
{
    GString *out;
    const char *p, *end;

    if (!s)
        return g_strdup("");
    end = s + strlen(s);
    out = g_string_sized_new(end - s);
    for (p = s; p < end;) {
        gunichar c = g_utf8_get_char_validated(p, end - p);

        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append_printf(out, "\\x%02x", (unsigned char)*p);
            p++;
            continue;
        }
        if (c == '\n')
            g_string_append(out, "\\n");
        else if (c == '\t')
            g_string_append(out, "\\t");
        else if (c == '\r')
            g_string_append(out, "\\r");
        else if (c < 0x20 || c == 0x7f)
            g_string_append_printf(out, "\\x%02x", (unsigned)c);
        else if (c >= 0x80 && c <= 0x9f)
            g_string_append_printf(out, "\\u%04x", (unsigned)c);
        else
            g_string_append_len(out, p, g_utf8_next_char(p) - p);
        p = g_utf8_next_char(p);
    }
    return g_string_free(out, FALSE);
}

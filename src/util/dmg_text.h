/*
 * dmg_text.h: text for a terminal or a log, from strings dmaguard did not
 * write (aliases, paths, QEMU's and libvirt's words).
 */
#pragma once

#include <glib.h>

/* @s with every control character (C0, DEL, C1) and every byte that is
 * not UTF-8 written as a visible escape (\n, \t, \r, \x1b, \u009b), so
 * that an alias holding a newline cannot forge a line of a report and an
 * ESC cannot drive the terminal.  Everything else is kept as it is. */
char *dmg_text_escape_controls(const char *s);

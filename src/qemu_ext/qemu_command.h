/*
 * qemu_command.h: the QEMU command line behind a verdict, built from the
 * realized VMM machine (one model, two outputs: verdicts and argv), in the
 * style of libvirt's qemuBuildCommandLine().
 */
#pragma once

#include <glib.h>

#include "machine.h"
#include "qemu_profile.h"

#define DMG_QEMU_COMMAND_ERROR (dmg_qemu_command_error_quark())
GQuark dmg_qemu_command_error_quark(void);

typedef enum {
    DMG_QEMU_COMMAND_ERROR_CONFIG,       /* QEMU or libvirt would refuse it */
    DMG_QEMU_COMMAND_ERROR_UNSUPPORTED,  /* a machine we build no argv for */
} dmgQemuCommandError;

/* One string per line: the binary, then "-option value" with the value
 * shell-quoted as libvirt's .args files show it.  A property this QEMU
 * lacks becomes an error finding on @m (so `check` reports it too); with
 * any error finding the result is NULL and @error lists them all. */
GPtrArray *dmg_qemu_command_build(vmm_machine *m, const dmgQemuProfile *qemu,
                                  GError **error);

/* The lines joined libvirt-style: " \\\n" between them, "\n" at the end. */
char *dmg_qemu_command_format(GPtrArray *lines);

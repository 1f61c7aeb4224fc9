/*
 * virt_dmaguard.h: subcommands of the virt-dmaguard tool.
 */
#pragma once

#include <glib.h>

#include "host_profile.h"
#include "qemu_profile.h"

/* Documented in docs/virt-dmaguard.rst. */
enum {
    DMG_EXIT_OK = 0,
    DMG_EXIT_CONFIG_ERRORS = 1,
    DMG_EXIT_BAD_INPUT = 2,
};

int dmg_cmd_check(int argc, char **argv);
int dmg_cmd_argv(int argc, char **argv);

/* --sysfs, --qemu-version, --qemu-feature, --host-profile */
GOptionGroup *dmg_profile_option_group(char **sysfs, char **qemu_version,
                                       char ***qemu_features, char **host_profile);
dmgHostProfile *dmg_profile_host(const char *sysfs, const char *profile_file,
                                 GError **error);
/* The example host's sysfs tree that matches the example node, or NULL. */
char *dmg_example_sysfs(void);
dmgQemuProfile *dmg_profile_qemu(const char *version, char **features,
                                 GError **error);

/*
 * qemu_probe.h: what an emulator binary is: its version and the
 * properties of the device types dmaguard emits.  Asked once per binary,
 * in one QMP session (query-version, device-list-properties: libvirt's
 * virQEMUCapsInitQMP asks the same way), and cached by the binary's path,
 * size and mtime: in memory for the process, and in a key file per binary
 * under a cache directory.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define DMG_QEMU_PROBE_ERROR dmg_qemu_probe_error_quark()
GQuark dmg_qemu_probe_error_quark(void);

typedef enum {
    DMG_QEMU_PROBE_ERROR_MISSING,    /* no such file, not executable, relative */
    DMG_QEMU_PROBE_ERROR_FAILED,     /* cannot be run, or exited with an error */
    DMG_QEMU_PROBE_ERROR_TIMEOUT,    /* no answer before the deadline */
    DMG_QEMU_PROBE_ERROR_NOT_QEMU,   /* its output is not QEMU's QMP */
} dmgQemuProbeError;

/* Every spawn is killed after this long; the output read is capped. */
#define DMG_QEMU_PROBE_DEADLINE_MS 10000
#define DMG_QEMU_PROBE_MAX_OUTPUT (1024 * 1024)

typedef struct _dmgQemuProbe dmgQemuProbe;
typedef struct _dmgQemuProber dmgQemuProber;

/* NULL-terminated: the -device types qemu_command.c emits, the ones whose
 * properties a probe lists. */
const char *const *dmg_qemu_probe_device_types(void);

dmgQemuProbe *dmg_qemu_probe_ref(dmgQemuProbe *p);
void dmg_qemu_probe_unref(dmgQemuProbe *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgQemuProbe, dmg_qemu_probe_unref);

const char *dmg_qemu_probe_path(const dmgQemuProbe *p);
void dmg_qemu_probe_version(const dmgQemuProbe *p, unsigned *major,
                            unsigned *minor, unsigned *micro);
/* Whether @type was asked about: one of dmg_qemu_probe_device_types(). */
bool dmg_qemu_probe_knows_type(const dmgQemuProbe *p, const char *type);
/* Whether the binary has the device type @type. */
bool dmg_qemu_probe_has_type(const dmgQemuProbe *p, const char *type);
bool dmg_qemu_probe_has_property(const dmgQemuProbe *p, const char *type,
                                 const char *prop);

/* @cache_dir: where the probes are kept, NULL for none; it is created if
 * needed, and not used when it cannot be written or is not the caller's
 * alone (another owner, group or world writable).  @hint ends every
 * error message: what to do instead of probing (translated, e.g. "pass
 * --qemu-version"). */
dmgQemuProber *dmg_qemu_prober_new(const char *cache_dir, const char *hint);
void dmg_qemu_prober_free(dmgQemuProber *pr);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(dmgQemuProber, dmg_qemu_prober_free);
void dmg_qemu_prober_set_deadline(dmgQemuProber *pr, guint ms);

/* The probe of the binary at @path (absolute): from this process's
 * memory, else the cache file, else by running it.  A failure is
 * remembered for the process too, so a fleet check asks a broken binary
 * once. */
dmgQemuProbe *dmg_qemu_prober_probe(dmgQemuProber *pr, const char *path,
                                    GError **error);
/* How many binaries this prober has run (for tests). */
guint dmg_qemu_prober_spawns(const dmgQemuProber *pr);
/* The cache file for @path, or NULL without a usable cache directory. */
char *dmg_qemu_prober_cache_file(dmgQemuProber *pr, const char *path);

/* $XDG_CACHE_HOME/dmaguard: virt-dmaguard's cache directory. */
char *dmg_qemu_probe_user_cache_dir(void);

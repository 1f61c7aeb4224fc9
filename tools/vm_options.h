/*
 * vm_options.h: what `run`, `migrate` and `incoming` share about the VM
 * a realized domain runs in, about the output of a migration, and the
 * pieces of their --json documents.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdio.h>

#include "machine.h"
#include "migration/migration.h"
#include "vm.h"

#define DMG_VM_MAX_VCPUS 64

/* --accel: kvm (also for NULL) or soft; anything else is a usage error. */
gboolean dmg_vm_parse_accel(const char *name, vm_accel *accel, GError **error);
const char *dmg_vm_accel_name(vm_accel accel);

/* --memory: KiB, or a size with a unit (512M, 2G); NULL leaves 0. */
gboolean dmg_vm_parse_memory(const char *value, guint64 *bytes, GError **error);

/* The VM @m's domain runs in: pc.ram of @memory bytes (0: the domain's),
 * the plugged part of each memory device scaled alike.  Free with
 * dmg_vm_config_clear. */
void dmg_vm_config(const vmm_machine *m, vm_accel accel, const char *kvm_device,
                   bool atomic, unsigned vcpus, guint64 memory, vm_config *cfg);
void dmg_vm_config_clear(vm_config *cfg);

/* Every vCPU (and io_uring) thread must be gone once the VM is freed.
 * KVM's own worker (kvm-nx-lpage-recovery, Linux 6.13+) leaves with the
 * VM fd; give it a moment. */
gboolean dmg_check_threads(GError **error);

/* One line per migration round, on both sides:
 *   round N: X MiB sent, D dirty pages left, T MB/s [(stop-and-copy)] */
void dmg_print_round(FILE *fp, const migration_round_stats *r);

/* The TLS files a side needs in @dir (NULL: libvirt's default
 * /etc/pki/qemu), checked before anything starts, so that a typo is a
 * usage error and not a failed migration.  @server: the destination's
 * files (server-cert.pem, server-key.pem), else the source's (its client
 * certificate is optional, but both files or neither). */
gboolean dmg_tls_files_check(const char *dir, bool server, GError **error);

/* Syntax only (HOST:PORT, [V6]:PORT, tcp:HOST:PORT, unix:PATH, and for
 * a listener [HOST]:PORT or PORT), so that a bad address is a usage
 * error before the guest runs.  Sets @host to the HOST part of a TCP
 * address (NULL for unix:) when @host is given. */
gboolean dmg_migration_address_check(const char *address, bool listening, char **host,
                                      GError **error);

/* Seconds as a whole count of milliseconds for the migration calls. */
guint dmg_timeout_ms(double seconds);

/* --json: the object built in @b (begun and ended by the caller), pretty
 * printed on standard output with a newline. */
void dmg_json_print(JsonBuilder *b);

/* Member @name: @value, or null when @value is NULL. */
void dmg_json_member_string(JsonBuilder *b, const char *name, const char *value);

/* Integer members, in the table's order. */
typedef struct {
    const char *name;
    guint64 value;
} dmg_json_int;
void dmg_json_member_ints(JsonBuilder *b, const dmg_json_int *ints, gsize n);

/* The VM: accel, vcpus, ram_bytes. */
void dmg_json_members_vm(JsonBuilder *b, const vm_config *cfg);

/* What the guest program found: passes, guest_errors, checksum_ok. */
void dmg_json_members_guest(JsonBuilder *b, const vm_result *r);

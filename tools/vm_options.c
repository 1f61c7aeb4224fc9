/*
 * vm_options.c: the VM a realized domain runs in, for `run`, `migrate`
 * and `incoming`, the output both migration commands share, and the
 * pieces of the three commands' --json documents.
 */
#include "vm_options.h"

#include <errno.h>
#include <gio/gio.h>
#include <inttypes.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "dmg_i18n.h"
#include "virtio/memory_device.h"
#include "migration/tls.h"
#include "xml_util.h"

#define MiB (1024.0 * 1024.0)

gboolean
dmg_vm_parse_accel(const char *name, vm_accel *accel, GError **error)
{
    if (!name || strcmp(name, "kvm") == 0) {
        *accel = VM_ACCEL_KVM;
        return TRUE;
    }
    if (strcmp(name, "soft") == 0) {
        *accel = VM_ACCEL_SOFT;
        return TRUE;
    }
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                _("--accel '%s' is not an accelerator; use kvm or soft"), name);
    return FALSE;
}

const char *
dmg_vm_accel_name(vm_accel accel)
{
    return accel == VM_ACCEL_SOFT ? "soft" : "kvm";
}

gboolean
dmg_vm_parse_memory(const char *value, guint64 *bytes, GError **error)
{
    *bytes = 0;
    if (!value || dmg_size_parse(value, 1024, bytes))
        return TRUE;
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                _("--memory '%s' is not a memory size; give KiB or a size with a unit such as 512M"),
                value);
    return FALSE;
}

/* Scaled down to whole 2 MiB, never to nothing. */
static guint64
dmg_vm_scale(guint64 size, double factor)
{
    guint64 scaled = (guint64)(size * factor) & ~(2 * 1024 * 1024ULL - 1);

    return size && !scaled ? 2 * 1024 * 1024ULL : scaled;
}

void
dmg_vm_config(const vmm_machine *m, vm_accel accel, const char *kvm_device, bool atomic,
              unsigned vcpus, guint64 memory, vm_config *cfg)
{
    double factor = memory ? (double)memory / (double)m->cfg.ram_size : 1.0;

    *cfg = (vm_config){
        .accel = accel,
        .kvm_device = kvm_device,
        .atomic = atomic,
        .nr_vcpus = vcpus,
        .ram_size = memory ? memory : m->cfg.ram_size,
        .memory_devices = g_ptr_array_new_with_free_func(g_free),
        .churn_pause_us = 100,
    };
    for (guint i = 0; i < m->memory_devices->len; i++) {
        memory_device *md = g_ptr_array_index(m->memory_devices, i);
        vm_memory_device *d = g_new0(vm_memory_device, 1);

        d->alias = md->alias;
        d->size = dmg_vm_scale(md->cfg.model == MEMORY_DEVICE_VIRTIO_MEM ? md->cfg.requested
                                                                         : md->cfg.size, factor);
        if (d->size)
            g_ptr_array_add(cfg->memory_devices, d);
        else
            g_free(d);
    }
}

void
dmg_vm_config_clear(vm_config *cfg)
{
    if (cfg->memory_devices)
        g_ptr_array_free(cfg->memory_devices, TRUE);
    cfg->memory_devices = NULL;
}

gboolean
dmg_check_threads(GError **error)
{
    guint n = 0;

    for (int i = 0; i < 200; i++) {
        g_autoptr(GDir) d = g_dir_open("/proc/self/task", 0, NULL);

        for (n = 0; d && g_dir_read_name(d); n++)
            ;
        if (n <= 1)
            return TRUE;
        g_usleep(10000);
    }
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                _("internal error: %u threads still run after the VM was freed"), n - 1);
    return FALSE;
}

void
dmg_print_round(FILE *fp, const migration_round_stats *r)
{
    if (r->final)
        fprintf(fp, _("round %u: %.1f MiB sent, %" PRIu64 " dirty pages left, %.1f MB/s (stop-and-copy, vCPUs paused)\n"),
                r->round, r->bytes / MiB, r->dirty_left, r->mb_per_s);
    else
        fprintf(fp, _("round %u: %.1f MiB sent, %" PRIu64 " dirty pages left, %.1f MB/s\n"),
                r->round, r->bytes / MiB, r->dirty_left, r->mb_per_s);
    fflush(fp);
}

static gboolean
dmg_tls_file(const char *dir, const char *name, const char *who, GError **error)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    if (access(path, R_OK) == 0)
        return TRUE;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                _("cannot read %s: %s; %s needs %s in its TLS directory %s (--tls-x509-dir, libvirt's migrate_tls_x509_cert_dir)"),
                path, g_strerror(errno), who, name, dir);
    return FALSE;
}

gboolean
dmg_tls_files_check(const char *dir, bool server, GError **error)
{
    g_autofree char *cert = NULL, *key = NULL;

    dir = dir ? dir : MIGRATION_TLS_DEFAULT_DIR;
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    _("the TLS directory %s does not exist; give the directory with ca-cert.pem and %s with --tls-x509-dir"),
                    dir, server ? "server-cert.pem, server-key.pem" : "client-cert.pem, client-key.pem");
        return FALSE;
    }
    if (server)
        return dmg_tls_file(dir, "ca-cert.pem", _("the destination"), error) &&
               dmg_tls_file(dir, "server-cert.pem", _("the destination"), error) &&
               dmg_tls_file(dir, "server-key.pem", _("the destination"), error);
    if (!dmg_tls_file(dir, "ca-cert.pem", _("the source"), error))
        return FALSE;
    /* QEMU's client certificate is optional; half of one is a mistake */
    cert = g_build_filename(dir, "client-cert.pem", NULL);
    key = g_build_filename(dir, "client-key.pem", NULL);
    if (access(cert, F_OK) != 0 && access(key, F_OK) != 0)
        return TRUE;
    return dmg_tls_file(dir, "client-cert.pem", _("the source"), error) &&
           dmg_tls_file(dir, "client-key.pem", _("the source"), error);
}

static gboolean
dmg_address_invalid(const char *address, bool listening, GError **error)
{
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                listening ? _("invalid listen address '%s': expected [HOST:]PORT, [IPV6]:PORT or unix:PATH")
                          : _("invalid migration address '%s': expected HOST:PORT, [IPV6]:PORT or unix:PATH"),
                address);
    return FALSE;
}

static gboolean
dmg_port_ok(const char *port, bool listening)
{
    guint64 v;

    return g_ascii_string_to_unsigned(port, 10, listening ? 0 : 1, 65535, &v, NULL);
}

gboolean
dmg_migration_address_check(const char *address, bool listening, char **host,
                            GError **error)
{
    const char *rest = address, *colon;
    g_autofree char *h = NULL;

    if (host)
        *host = NULL;
    if (!address || !*address)
        return dmg_address_invalid("", listening, error);
    if (g_str_has_prefix(address, "unix:")) {
        if (!address[5] || strlen(address + 5) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
            return dmg_address_invalid(address, listening, error);
        return TRUE;
    }
    if (listening && dmg_port_ok(address, true))
        return TRUE;
    if (g_str_has_prefix(rest, "tcp:"))
        rest += 4;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');

        if (!close || close[1] != ':' || close == rest + 1)
            return dmg_address_invalid(address, listening, error);
        h = g_strndup(rest + 1, close - rest - 1);
        colon = close + 1;
    } else {
        colon = strrchr(rest, ':');
        if (!colon || memchr(rest, ':', colon - rest) || (colon == rest && !listening))
            return dmg_address_invalid(address, listening, error);
        h = colon > rest ? g_strndup(rest, colon - rest) : NULL;
    }
    if (!dmg_port_ok(colon + 1, listening))
        return dmg_address_invalid(address, listening, error);
    if (host)
        *host = g_steal_pointer(&h);
    return TRUE;
}

guint
dmg_timeout_ms(double seconds)
{
    return seconds <= 0 ? 0 : (guint)MIN(seconds * 1000.0 + 0.5, (double)G_MAXUINT);
}

void
dmg_json_print(JsonBuilder *b)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    g_autofree char *out = NULL;

    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    out = json_generator_to_data(gen, NULL);
    printf("%s\n", out);
}

void
dmg_json_member_string(JsonBuilder *b, const char *name, const char *value)
{
    json_builder_set_member_name(b, name);
    if (value)
        json_builder_add_string_value(b, value);
    else
        json_builder_add_null_value(b);
}

void
dmg_json_member_ints(JsonBuilder *b, const dmg_json_int *ints, gsize n)
{
    for (gsize i = 0; i < n; i++) {
        json_builder_set_member_name(b, ints[i].name);
        json_builder_add_int_value(b, (gint64)ints[i].value);
    }
}

void
dmg_json_members_vm(JsonBuilder *b, const vm_config *cfg)
{
    const dmg_json_int ints[] = {
        { "vcpus", cfg->nr_vcpus }, { "ram_bytes", cfg->ram_size },
    };

    dmg_json_member_string(b, "accel", dmg_vm_accel_name(cfg->accel));
    dmg_json_member_ints(b, ints, G_N_ELEMENTS(ints));
}

void
dmg_json_members_guest(JsonBuilder *b, const vm_result *r)
{
    const dmg_json_int ints[] = {
        { "passes", r->passes }, { "guest_errors", r->guest_errors },
    };

    dmg_json_member_ints(b, ints, G_N_ELEMENTS(ints));
    json_builder_set_member_name(b, "checksum_ok");
    json_builder_add_boolean_value(b, r->checksum_ok);
}

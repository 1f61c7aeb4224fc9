/*
 * test-qemuxml2argv.c: golden command lines, after libvirt's
 * tests/qemuxml2argvtest.c.  Every tests/qemuxml2argv/NAME.xml is built
 * for each QEMU version below; the result must equal
 * NAME.ARCH-VERSION.args, or, for a domain QEMU would refuse,
 * NAME.ARCH-VERSION.err.  NAME.features lists downstream QEMU features,
 * one per line.  DMAGUARD_TEST_REGENERATE=1 rewrites the golden files.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "qemu_postparse.h"
#include "domain_conf.h"
#include "domain_realize.h"
#include "qemu_command.h"

static const char *const versions[] = { "7.2", "8.0", "8.1", "9.1", "11.0" };

typedef struct {
    char *name;                  /* without .xml */
    char *version;
} argv_case;

static bool
regenerate(void)
{
    return g_strcmp0(g_getenv("DMAGUARD_TEST_REGENERATE"), "1") == 0;
}

static char *
case_path(const char *name, const char *suffix)
{
    g_autofree char *file = g_strconcat(name, suffix, NULL);

    return g_test_build_filename(G_TEST_DIST, "qemuxml2argv", file, NULL);
}

static dmgQemuProfile *
case_qemu(const argv_case *tc)
{
    g_autofree char *path = case_path(tc->name, ".features");
    g_autofree char *text = NULL;
    dmgQemuProfile *qemu = dmg_qemu_profile_new();
    g_auto(GStrv) lines = NULL;

    g_assert_true(dmg_qemu_profile_set_version(qemu, tc->version, NULL));
    if (!g_file_get_contents(path, &text, NULL, NULL))
        return qemu;
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        if (**l)
            g_assert_true(dmg_qemu_profile_add_feature(qemu, g_strstrip(*l), NULL));
    }
    return qemu;
}

/* Build, and return the text that belongs in the golden file; @is_err
 * says which of the two files. */
static char *
case_build(const argv_case *tc, const dmgDomainDef *def, bool *is_err)
{
    g_autofree char *sysfs = g_test_build_filename(G_TEST_DIST, "sysfs", "host1", NULL);
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new(sysfs);
    g_autoptr(dmgQemuProfile) qemu = case_qemu(tc);
    g_autoptr(vmm_machine) m = NULL;
    g_autoptr(GPtrArray) lines = NULL;
    g_autoptr(GError) err = NULL;

    dmg_host_profile_read_sysfs(host);
    host->kvm_sync_mmu = 1;
    host->kvm_nr_memslots = 509;
    m = dmg_domain_realize(def, host, qemu, NULL);
    lines = dmg_qemu_command_build(m, qemu, &err);
    *is_err = lines == NULL;
    if (!lines)
        return g_strconcat(err->message, "\n", NULL);
    return dmg_qemu_command_format(lines);
}

/* Write @text to @want and remove the other kind of golden file. */
static void
case_regenerate(const char *want, const char *other, const char *text)
{
    g_assert_true(g_file_set_contents(want, text, -1, NULL));
    g_unlink(other);
}

static void
test_case(gconstpointer data)
{
    const argv_case *tc = data;
    g_autofree char *xml_path = case_path(tc->name, ".xml");
    g_autoptr(dmgDomainDef) def = dmg_domain_def_parse_file(xml_path, NULL);
    g_autofree char *base = NULL;
    g_autofree char *stem = NULL;
    g_autofree char *args = NULL;
    g_autofree char *errf = NULL;
    g_autofree char *got = NULL;
    g_autofree char *want = NULL;
    bool is_err;

    g_assert_nonnull(def);
    /* As libvirt starts it: its default devices, its rounded sizes. */
    dmg_qemu_domain_def_prepare(def);
    base = g_strdup_printf(".%s-%s", def->arch ? def->arch : "x86_64", tc->version);
    stem = case_path(tc->name, base);
    args = g_strconcat(stem, ".args", NULL);
    errf = g_strconcat(stem, ".err", NULL);
    got = case_build(tc, def, &is_err);
    if (regenerate()) {
        case_regenerate(is_err ? errf : args, is_err ? args : errf, got);
        return;
    }
    if (!g_file_get_contents(is_err ? errf : args, &want, NULL, NULL))
        g_error("%s: QEMU %s %s, but %s does not exist (DMAGUARD_TEST_REGENERATE=1 writes it):\n%s",
                tc->name, tc->version, is_err ? "refuses the domain" : "accepts the domain",
                is_err ? errf : args, got);
    g_assert_false(g_file_test(is_err ? args : errf, G_FILE_TEST_EXISTS));
    g_assert_cmpstr(got, ==, want);
}

static void
argv_case_free(gpointer data)
{
    argv_case *tc = data;

    g_free(tc->name);
    g_free(tc->version);
    g_free(tc);
}

int
main(int argc, char **argv)
{
    g_autofree char *dir = NULL;
    g_autoptr(GPtrArray) cases = g_ptr_array_new_with_free_func(argv_case_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    GDir *d;
    const char *entry;

    g_test_init(&argc, &argv, NULL);
    dir = g_test_build_filename(G_TEST_DIST, "qemuxml2argv", NULL);
    d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    while ((entry = g_dir_read_name(d))) {
        if (g_str_has_suffix(entry, ".xml"))
            g_ptr_array_add(names, g_strndup(entry, strlen(entry) - 4));
    }
    g_dir_close(d);
    g_ptr_array_sort(names, (GCompareFunc)g_strcmp0);
    for (guint i = 0; i < names->len; i++) {
        for (gsize v = 0; v < G_N_ELEMENTS(versions); v++) {
            argv_case *tc = g_new0(argv_case, 1);
            g_autofree char *path = NULL;

            tc->name = g_strdup(g_ptr_array_index(names, i));
            tc->version = g_strdup(versions[v]);
            g_ptr_array_add(cases, tc);
            path = g_strdup_printf("/qemuxml2argv/%s/%s", tc->name, tc->version);
            g_test_add_data_func(path, tc, test_case);
        }
    }
    return g_test_run();
}

/*
 * test-qemu-probe.c: the probe of a domain's own emulator (qemu_probe.c)
 * and the profile built from it (qemu_profile.c): the real
 * qemu-system-x86_64, fake ones from tests/fake-qemu.sh, the cache and
 * its key, and the errors.  Nothing here asserts on time: the hanging
 * binary's deadline is only checked to be reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "domain_conf.h"
#include "qemu_probe.h"
#include "qemu_profile.h"

#define REAL_QEMU "/usr/bin/qemu-system-x86_64"

typedef struct {
    char *dir;                   /* removed afterwards */
    char *cache;                 /* dir/cache */
} Fixture;

static void
rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, name, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
            rm_rf(p);
        else
            g_unlink(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(path);
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("dmg-probe-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->cache = g_build_filename(f->dir, "cache", NULL);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    rm_rf(f->dir);
    g_free(f->dir);
    g_free(f->cache);
}

/* tests/fake-qemu.sh as @dir/@name, with "key=value" lines replaced by
 * @edits (NULL-terminated). */
static char *
make_fake(const char *dir, const char *name, const char *const *edits)
{
    g_autofree char *src = g_test_build_filename(G_TEST_DIST, "fake-qemu.sh", NULL);
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_autofree char *out = NULL;
    char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_get_contents(src, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        for (const char *const *e = edits; e && *e; e++) {
            gsize klen = strchr(*e, '=') - *e + 1;

            if (strncmp(*l, *e, klen) == 0) {
                g_free(*l);
                *l = g_strdup(*e);
            }
        }
    }
    out = g_strjoinv("\n", lines);
    g_assert_true(g_file_set_contents(path, out, -1, NULL));
    g_assert_cmpint(g_chmod(path, 0755), ==, 0);
    return path;
}

static dmgDomainDef *
domain_with_emulator(const char *emulator)
{
    g_autofree char *xml = g_strdup_printf(
        "<domain type='kvm'><name>probe</name><memory unit='GiB'>1</memory>"
        "<os><type arch='x86_64' machine='q35'>hvm</type></os>"
        "<devices>%s%s%s<memballoon model='virtio'/></devices></domain>",
        emulator ? "<emulator>" : "", emulator ? emulator : "",
        emulator ? "</emulator>" : "");
    g_autoptr(GError) err = NULL;
    dmgDomainDef *def = dmg_domain_def_parse_string(xml, strlen(xml), "probe", &err);

    g_assert_no_error(err);
    return def;
}

static dmgQemuProfile *
probing_profile(const char *cache)
{
    dmgQemuProfile *p = dmg_qemu_profile_new();

    dmg_qemu_profile_set_prober(p, dmg_qemu_prober_new(cache, "pass --qemu-version X.Y"));
    return p;
}

/* ---- the real QEMU ------------------------------------------------------ */

static void
test_real_qemu(Fixture *f, gconstpointer data)
{
    g_autoptr(dmgQemuProber) pr = NULL;
    g_autoptr(dmgQemuProber) pr2 = NULL;
    g_autoptr(dmgQemuProbe) p = NULL;
    g_autoptr(dmgQemuProbe) again = NULL;
    g_autoptr(dmgQemuProbe) cached = NULL;
    g_autoptr(GError) err = NULL;
    unsigned major, minor;

    if (!g_file_test(REAL_QEMU, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip(REAL_QEMU " is not installed");
        return;
    }
    pr = dmg_qemu_prober_new(f->cache, "hint");
    p = dmg_qemu_prober_probe(pr, REAL_QEMU, &err);
    g_assert_no_error(err);
    dmg_qemu_probe_version(p, &major, &minor, NULL);
    g_assert_cmpuint(major, ==, 7);
    g_assert_cmpuint(minor, ==, 2);
    g_assert_true(dmg_qemu_probe_has_type(p, "vfio-pci"));
    g_assert_true(dmg_qemu_probe_has_property(p, "vfio-pci", "x-balloon-allowed"));
    g_assert_false(dmg_qemu_probe_has_property(p, "vfio-pci", "enable-migration"));
    g_assert_false(dmg_qemu_probe_has_property(p, "vfio-pci", "x-migration-iommu-pt"));
    g_assert_true(dmg_qemu_probe_has_property(p, "intel-iommu", "caching-mode"));
    g_assert_false(dmg_qemu_probe_has_type(p, "vfio-ccw"));   /* s390x only */
    g_assert_cmpuint(dmg_qemu_prober_spawns(pr), ==, 1);

    /* The same process asks again: memory. */
    again = dmg_qemu_prober_probe(pr, REAL_QEMU, &err);
    g_assert_no_error(err);
    g_assert_true(again == p);
    g_assert_cmpuint(dmg_qemu_prober_spawns(pr), ==, 1);

    /* Another process (a new prober): the cache file. */
    pr2 = dmg_qemu_prober_new(f->cache, "hint");
    cached = dmg_qemu_prober_probe(pr2, REAL_QEMU, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(dmg_qemu_prober_spawns(pr2), ==, 0);
    dmg_qemu_probe_version(cached, &major, &minor, NULL);
    g_assert_cmpuint(major, ==, 7);
    g_assert_cmpuint(minor, ==, 2);
    g_assert_true(dmg_qemu_probe_has_property(cached, "vfio-pci", "x-balloon-allowed"));
    g_assert_false(dmg_qemu_probe_has_property(cached, "vfio-pci", "enable-migration"));
}

/* A domain naming the real QEMU is judged for 7.2, by its property list. */
static void
test_real_qemu_profile(Fixture *f, gconstpointer data)
{
    g_autoptr(dmgQemuProfile) base = probing_profile(f->cache);
    g_autoptr(dmgDomainDef) def = domain_with_emulator(REAL_QEMU);
    g_autoptr(dmgQemuProfile) p = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *why = NULL;
    vmm_compat compat = { 0 };

    if (!g_file_test(REAL_QEMU, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip(REAL_QEMU " is not installed");
        return;
    }
    p = dmg_qemu_profile_for_domain(base, def, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(p->version.major, ==, 7);
    g_assert_cmpuint(p->version.minor, ==, 2);
    g_assert_true(dmg_qemu_version_detected(p));
    g_assert_cmpint(p->version_source, ==, DMG_QEMU_VERSION_PROBED);
    g_assert_cmpstr(p->emulator, ==, REAL_QEMU);
    g_assert_true(dmg_qemu_profile_has_property(p, "vfio-pci", "x-balloon-allowed", NULL));
    g_assert_false(dmg_qemu_profile_has_property(p, "vfio-pci", "enable-migration", &why));
    g_assert_cmpstr(why, ==, "QEMU 8.1");
    g_assert_false(dmg_qemu_profile_has_feature(p, "x-migration-iommu-pt"));
    dmg_qemu_profile_compat(p, &compat);
    g_assert_false(compat.vfio_migration);
    g_assert_false(compat.x_migration_iommu_pt);
}

/* ---- fakes: a downstream property is detected --------------------------- */

static void
test_fake_downstream_feature(Fixture *f, gconstpointer data)
{
    const char *const pt[] = { "vfio_extra=x-migration-iommu-pt", NULL };
    g_autofree char *fake = make_fake(f->dir, "qemu-pt", pt);
    g_autofree char *plain = make_fake(f->dir, "qemu-plain", NULL);
    g_autoptr(dmgQemuProfile) base = probing_profile(NULL);
    g_autoptr(dmgDomainDef) def = domain_with_emulator(fake);
    g_autoptr(dmgDomainDef) def_plain = domain_with_emulator(plain);
    g_autoptr(dmgQemuProfile) p = NULL;
    g_autoptr(dmgQemuProfile) q = NULL;
    g_autoptr(dmgQemuProfile) declared = NULL;
    g_autoptr(GError) err = NULL;
    g_autofree char *why = NULL;
    vmm_compat compat = { 0 };

    p = dmg_qemu_profile_for_domain(base, def, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(p->version.major, ==, 9);
    g_assert_cmpuint(p->version.minor, ==, 1);
    g_assert_true(dmg_qemu_profile_has_feature(p, "x-migration-iommu-pt"));
    g_assert_true(dmg_qemu_profile_has_property(p, "vfio-pci", "x-migration-iommu-pt", NULL));
    dmg_qemu_profile_compat(p, &compat);
    g_assert_true(compat.x_migration_iommu_pt);
    g_assert_true(compat.vfio_migration);

    /* The upstream build: neither the property nor the feature. */
    q = dmg_qemu_profile_for_domain(base, def_plain, &err);
    g_assert_no_error(err);
    g_assert_false(dmg_qemu_profile_has_feature(q, "x-migration-iommu-pt"));
    g_assert_false(dmg_qemu_profile_has_property(q, "vfio-pci", "x-migration-iommu-pt", &why));
    g_assert_cmpstr(why, ==, "the downstream feature x-migration-iommu-pt");
    /* Properties of no table row: the binary's list answers. */
    g_clear_pointer(&why, g_free);
    g_assert_true(dmg_qemu_profile_has_property(q, "virtio-balloon-pci", "free-page-reporting", NULL));
    g_assert_false(dmg_qemu_profile_has_property(q, "vfio-pci", "x-no-such-property", &why));
    g_assert_nonnull(strstr(why, plain));
    g_clear_pointer(&why, g_free);
    g_assert_false(dmg_qemu_profile_has_property(q, "vfio-ccw", "sysfsdev", &why));
    g_assert_nonnull(strstr(why, "vfio-ccw"));
    g_assert_nonnull(strstr(why, plain));
    g_assert_cmpuint(dmg_qemu_prober_spawns(base->prober), ==, 2);

    /* --qemu-feature stays an override. */
    g_assert_true(dmg_qemu_profile_add_feature(base, "x-migration-iommu-pt", NULL));
    declared = dmg_qemu_profile_for_domain(base, def_plain, &err);
    g_assert_no_error(err);
    g_assert_true(dmg_qemu_profile_has_property(declared, "vfio-pci", "x-migration-iommu-pt", NULL));
    g_assert_cmpuint(dmg_qemu_prober_spawns(base->prober), ==, 2);
}

/* The whole check: the fake's property turns the vIOMMU blocker into
 * seed 004's cancel condition, as --qemu-feature does. */
static void
test_fake_check_verdict(Fixture *f, gconstpointer data)
{
    const char *const pt[] = { "vfio_extra=x-migration-iommu-pt", NULL };
    g_autofree char *fake = make_fake(f->dir, "qemu-pt", pt);
    g_autofree char *file = g_test_build_filename(G_TEST_DIST, "domains", "viommu-pt-all.xml", NULL);
    g_autofree char *sysfs = g_test_build_filename(G_TEST_DIST, "sysfs", "host1", NULL);
    g_autofree char *xml = NULL;
    g_autofree char *mine = NULL;
    g_autofree char *doc = NULL;
    g_autoptr(GRegex) re = g_regex_new("<emulator>[^<]*</emulator>", 0, 0, NULL);
    g_autoptr(dmgQemuProfile) base = probing_profile(NULL);
    g_autoptr(dmgHostProfile) host = dmg_host_profile_new(sysfs);
    g_autoptr(JsonNode) verdict = NULL;
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *emu = g_strdup_printf("<emulator>%s</emulator>", fake);

    g_assert_true(g_file_get_contents(file, &xml, NULL, NULL));
    mine = g_regex_replace_literal(re, xml, -1, 0, emu, 0, NULL);
    dmg_host_profile_read_sysfs(host);
    verdict = dmg_check_xml(mine, strlen(mine), "viommu-pt-all", host, base, &err);
    g_assert_no_error(err);
    json_generator_set_root(gen, verdict);
    doc = json_generator_to_data(gen, NULL);
    g_assert_nonnull(strstr(doc, "viommu-passthrough-cancel"));
    g_assert_nonnull(strstr(doc, "\"version\":\"9.1\""));
    g_assert_nonnull(strstr(doc, "\"features\":[\"x-migration-iommu-pt\"]"));
}

/* ---- the cache ---------------------------------------------------------- */

static unsigned
probe_minor(dmgQemuProber *pr, const char *path)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgQemuProbe) p = dmg_qemu_prober_probe(pr, path, &err);
    unsigned major, minor;

    g_assert_no_error(err);
    dmg_qemu_probe_version(p, &major, &minor, NULL);
    return minor;
}

static void
set_mtime(const char *path, const struct timespec *ts)
{
    struct timespec times[2] = { *ts, *ts };

    g_assert_cmpint(utimensat(AT_FDCWD, path, times, 0), ==, 0);
}

static void
test_cache_key(Fixture *f, gconstpointer data)
{
    const char *const nine_two[] = { "minor=2", NULL };
    g_autofree char *fake = make_fake(f->dir, "qemu", NULL);
    g_autofree char *cache_file = NULL;
    g_autofree char *text = NULL;
    struct stat st;
    struct timespec later;

    {
        g_autoptr(dmgQemuProber) pr = dmg_qemu_prober_new(f->cache, "hint");

        g_assert_cmpuint(probe_minor(pr, fake), ==, 1);
        g_assert_cmpuint(dmg_qemu_prober_spawns(pr), ==, 1);
        cache_file = dmg_qemu_prober_cache_file(pr, fake);
    }
    g_assert_true(g_file_get_contents(cache_file, &text, NULL, NULL));
    g_assert_nonnull(strstr(text, "version=9.1.0"));
    g_assert_nonnull(strstr(text, fake));
    g_assert_nonnull(strstr(text, "dmaguard=" PACKAGE_VERSION));

    /* Replaced by another binary of the same size, mtime kept: not run
     * again, the cached answer stands. */
    g_assert_cmpint(stat(fake, &st), ==, 0);
    g_free(make_fake(f->dir, "qemu", nine_two));
    set_mtime(fake, &st.st_mtim);
    {
        g_autoptr(dmgQemuProber) pr = dmg_qemu_prober_new(f->cache, "hint");

        g_assert_cmpuint(probe_minor(pr, fake), ==, 1);
        g_assert_cmpuint(dmg_qemu_prober_spawns(pr), ==, 0);
    }
    /* A new mtime: run again. */
    later = st.st_mtim;
    later.tv_sec += 10;
    set_mtime(fake, &later);
    {
        g_autoptr(dmgQemuProber) pr = dmg_qemu_prober_new(f->cache, "hint");

        g_assert_cmpuint(probe_minor(pr, fake), ==, 2);
        g_assert_cmpuint(dmg_qemu_prober_spawns(pr), ==, 1);
    }
    /* Without a cache directory, each prober runs it. */
    {
        g_autoptr(dmgQemuProber) pr = dmg_qemu_prober_new(NULL, "hint");

        g_assert_null(dmg_qemu_prober_cache_file(pr, fake));
        g_assert_cmpuint(probe_minor(pr, fake), ==, 2);
        g_assert_cmpuint(probe_minor(pr, fake), ==, 2);
        g_assert_cmpuint(dmg_qemu_prober_spawns(pr), ==, 1);
    }
}

/* A cache file that is not a probe of this binary is ignored, re-probed
 * and rewritten. */
static void
test_cache_corrupt(Fixture *f, gconstpointer data)
{
    static const char *const damage[][2] = {
        { NULL, "\x01\x02 not a key file [[[" },
        { "version=9.1.0", "version=banana" },
        { "dmaguard=" PACKAGE_VERSION, "dmaguard=0.0.0-other" },
        { "format=3", "format=99" },
        { "[device pc-dimm]", "[device pc-dimmm]" },
        { "x-balloon-allowed;", "x-balloon allowed!;" },
        { "size=", "size=1" },
    };
    g_autofree char *fake = make_fake(f->dir, "qemu", NULL);
    g_autofree char *cache_file = NULL;
    g_autofree char *good = NULL;

    {
        g_autoptr(dmgQemuProber) pr = dmg_qemu_prober_new(f->cache, "hint");

        g_assert_cmpuint(probe_minor(pr, fake), ==, 1);
        cache_file = dmg_qemu_prober_cache_file(pr, fake);
    }
    g_assert_true(g_file_get_contents(cache_file, &good, NULL, NULL));
    for (gsize i = 0; i < G_N_ELEMENTS(damage); i++) {
        g_autoptr(dmgQemuProber) pr = dmg_qemu_prober_new(f->cache, "hint");
        g_autofree char *bad = NULL;
        g_autofree char *after = NULL;
        g_autoptr(GKeyFile) kf = g_key_file_new();

        if (damage[i][0]) {
            g_assert_nonnull(strstr(good, damage[i][0]));
            {
                g_auto(GStrv) parts = g_strsplit(good, damage[i][0], 2);

                bad = g_strjoinv(damage[i][1], parts);
            }
        } else {
            bad = g_strdup(damage[i][1]);
        }
        g_assert_true(g_file_set_contents(cache_file, bad, -1, NULL));
        g_assert_cmpuint(probe_minor(pr, fake), ==, 1);
        g_assert_cmpuint(dmg_qemu_prober_spawns(pr), ==, 1);
        g_assert_true(g_key_file_load_from_file(kf, cache_file, G_KEY_FILE_NONE, NULL));
        g_assert_true(g_file_get_contents(cache_file, &after, NULL, NULL));
        g_assert_cmpstr(after, ==, good);
    }
}

/* A directory others may write is no cache. */
static void
test_cache_unsafe_dir(Fixture *f, gconstpointer data)
{
    g_autofree char *open_dir = g_build_filename(f->dir, "open", NULL);
    g_autofree char *fake = make_fake(f->dir, "qemu", NULL);
    g_autoptr(dmgQemuProber) pr = dmg_qemu_prober_new(open_dir, "hint");

    g_assert_cmpint(g_mkdir(open_dir, 0755), ==, 0);
    g_assert_cmpint(g_chmod(open_dir, 0777), ==, 0);
    g_assert_null(dmg_qemu_prober_cache_file(pr, fake));
    g_assert_cmpuint(probe_minor(pr, fake), ==, 1);
}

/* ---- errors ------------------------------------------------------------- */

static void
assert_probe_error(dmgQemuProber *pr, const char *path, int code, const char *reason)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(dmgQemuProbe) p = dmg_qemu_prober_probe(pr, path, &err);

    g_assert_null(p);
    g_assert_error(err, DMG_QEMU_PROBE_ERROR, code);
    if (g_test_verbose())
        g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, path));
    g_assert_nonnull(strstr(err->message, reason));
    g_assert_nonnull(strstr(err->message, "<emulator>"));
    g_assert_nonnull(strstr(err->message, "pass --qemu-version"));
    /* Never what the binary printed. */
    g_assert_null(strstr(err->message, "SECRET"));
}

static void
test_errors(Fixture *f, gconstpointer data)
{
    const char *const bad[] = { "mode=bad", NULL };
    const char *const flood[] = { "mode=flood", NULL };
    g_autoptr(dmgQemuProber) pr = dmg_qemu_prober_new(f->cache, "pass --qemu-version X.Y");
    g_autofree char *missing = g_build_filename(f->dir, "no-such-qemu", NULL);
    g_autofree char *noexec = make_fake(f->dir, "noexec", NULL);
    g_autofree char *garbage = make_fake(f->dir, "garbage", bad);
    g_autofree char *flooding = make_fake(f->dir, "flood", flood);

    g_assert_cmpint(g_chmod(noexec, 0644), ==, 0);
    assert_probe_error(pr, missing, DMG_QEMU_PROBE_ERROR_MISSING, "does not exist");
    assert_probe_error(pr, "bin/qemu-system-x86_64", DMG_QEMU_PROBE_ERROR_MISSING,
                       "not an absolute path");
    assert_probe_error(pr, f->dir, DMG_QEMU_PROBE_ERROR_MISSING, "not a regular file");
    assert_probe_error(pr, noexec, DMG_QEMU_PROBE_ERROR_MISSING, "not executable");
    assert_probe_error(pr, garbage, DMG_QEMU_PROBE_ERROR_NOT_QEMU, "does not answer QMP");
    assert_probe_error(pr, flooding, DMG_QEMU_PROBE_ERROR_NOT_QEMU, "more than");
    g_assert_cmpuint(dmg_qemu_prober_spawns(pr), ==, 2);
    /* A failure is remembered: asked once per process. */
    assert_probe_error(pr, garbage, DMG_QEMU_PROBE_ERROR_NOT_QEMU, "does not answer QMP");
    g_assert_cmpuint(dmg_qemu_prober_spawns(pr), ==, 2);
    /* ... and never cached in a file. */
    {
        g_autofree char *file = dmg_qemu_prober_cache_file(pr, garbage);

        g_assert_false(g_file_test(file, G_FILE_TEST_EXISTS));
    }
}

/* A binary that never answers is killed at the deadline. */
static void
test_hang(Fixture *f, gconstpointer data)
{
    const char *const hang[] = { "mode=hang", NULL };
    g_autofree char *hanging = make_fake(f->dir, "hang", hang);
    g_autoptr(dmgQemuProber) pr = dmg_qemu_prober_new(NULL, "pass --qemu-version X.Y");

    dmg_qemu_prober_set_deadline(pr, 300);
    assert_probe_error(pr, hanging, DMG_QEMU_PROBE_ERROR_TIMEOUT, "did not answer within");
}

/* Gone, or a zombie waiting for its reaper. */
static bool
process_dead(pid_t pid)
{
    g_autofree char *stat_file = g_strdup_printf("/proc/%d/stat", (int)pid);
    g_autofree char *text = NULL;
    const char *paren;

    if (!g_file_get_contents(stat_file, &text, NULL, NULL))
        return true;
    paren = strrchr(text, ')');
    return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* The probe dies with the process that runs it: the hook kills its
 * analysis process at its timeout, whatever it is waiting for.  The
 * loops wait for events (bounded), they do not measure time. */
static void
test_dies_with_parent(Fixture *f, gconstpointer data)
{
    g_autofree char *pidfile = g_build_filename(f->dir, "fake.pid", NULL);
    g_autofree char *pidline = g_strconcat("pidfile=", pidfile, NULL);
    const char *const hang[] = { "mode=hang", pidline, NULL };
    g_autofree char *hanging = make_fake(f->dir, "hang", hang);
    pid_t child, fake = 0;
    int status;

    fflush(NULL);
    if ((child = fork()) == 0) {
        dmgQemuProber *pr = dmg_qemu_prober_new(NULL, "hint");

        dmg_qemu_probe_unref(dmg_qemu_prober_probe(pr, hanging, NULL));
        _exit(0);
    }
    g_assert_cmpint(child, >, 0);
    for (int i = 0; i < 3000 && fake <= 0; i++) {
        g_autofree char *text = NULL;

        if (g_file_get_contents(pidfile, &text, NULL, NULL) && strchr(text, '\n'))
            fake = (pid_t)atoi(text);
        else
            g_usleep(10000);
    }
    kill(child, SIGKILL);
    g_assert_cmpint(waitpid(child, &status, 0), ==, child);
    g_assert_cmpint(fake, >, 0);
    for (int i = 0; i < 3000 && !process_dead(fake); i++)
        g_usleep(10000);
    if (!process_dead(fake)) {
        kill(fake, SIGKILL);
        g_error("the probed binary (pid %d) outlived the process that ran it", (int)fake);
    }
}

/* The domain's errors carry the domain's name; --qemu-version means no
 * probe at all. */
static void
test_profile_for_domain(Fixture *f, gconstpointer data)
{
    g_autofree char *missing = g_build_filename(f->dir, "no-such-qemu", NULL);
    g_autoptr(dmgDomainDef) def = domain_with_emulator(missing);
    g_autoptr(dmgQemuProfile) base = probing_profile(f->cache);
    g_autoptr(dmgQemuProfile) pinned = dmg_qemu_profile_new();
    g_autoptr(dmgQemuProfile) p = NULL;
    g_autoptr(GError) err = NULL;

    g_assert_null(dmg_qemu_profile_for_domain(base, def, &err));
    g_assert_error(err, DMG_QEMU_PROBE_ERROR, DMG_QEMU_PROBE_ERROR_MISSING);
    g_clear_error(&err);

    g_assert_true(dmg_qemu_profile_set_version(pinned, "8.1", NULL));
    p = dmg_qemu_profile_for_domain(pinned, def, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(p->version.minor, ==, 1);
    g_assert_false(dmg_qemu_version_detected(p));
    g_assert_cmpstr(p->emulator, ==, missing);
    g_assert_null(p->probe);
}

/* No <emulator>: qemu-system-ARCH in PATH, probed the same way; none in
 * PATH: the newest known version, as before. */
static void
test_default_emulator(Fixture *f, gconstpointer data)
{
    g_autofree char *old_path = g_strdup(g_getenv("PATH"));
    g_autofree char *bindir = g_build_filename(f->dir, "bin", NULL);
    g_autofree char *empty = g_build_filename(f->dir, "empty", NULL);
    g_autoptr(dmgDomainDef) def = domain_with_emulator(NULL);
    g_autoptr(dmgQemuProfile) base = probing_profile(NULL);
    g_autoptr(dmgQemuProfile) found = NULL;
    g_autoptr(dmgQemuProfile) none = NULL;
    g_autoptr(GError) err = NULL;
    dmgQemuVersion newest = dmg_qemu_version_newest();

    g_assert_null(def->emulator);
    g_assert_cmpint(g_mkdir(bindir, 0755), ==, 0);
    g_assert_cmpint(g_mkdir(empty, 0755), ==, 0);
    g_free(make_fake(bindir, "qemu-system-x86_64", NULL));

    g_setenv("PATH", bindir, TRUE);
    found = dmg_qemu_profile_for_domain(base, def, &err);
    g_assert_no_error(err);
    g_assert_true(dmg_qemu_version_detected(found));
    g_assert_cmpuint(found->version.major, ==, 9);
    g_assert_true(g_str_has_prefix(found->emulator, bindir));

    g_setenv("PATH", empty, TRUE);
    none = dmg_qemu_profile_for_domain(base, def, &err);
    g_setenv("PATH", old_path, TRUE);
    g_assert_no_error(err);
    g_assert_false(dmg_qemu_version_detected(none));
    g_assert_null(none->emulator);
    g_assert_cmpuint(none->version.major, ==, newest.major);
    g_assert_cmpuint(none->version.minor, ==, newest.minor);
}

/* Every -device driver of the golden argv files is a type the probe asks
 * about: the list in qemu_probe.c follows qemu_command.c. */
static void
test_device_types_cover_argv(void)
{
    g_autofree char *dir = g_test_build_filename(G_TEST_DIST, "qemuxml2argv", NULL);
    g_autoptr(GRegex) re = g_regex_new("\"driver\":\"([^\"]+)\"", 0, 0, NULL);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    guint seen = 0;

    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *text = NULL;
        g_autoptr(GMatchInfo) mi = NULL;

        if (!g_str_has_suffix(name, ".args"))
            continue;
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        for (g_regex_match(re, text, 0, &mi); g_match_info_matches(mi); g_match_info_next(mi, NULL)) {
            g_autofree char *drv = g_match_info_fetch(mi, 1);

            if (!g_strv_contains(dmg_qemu_probe_device_types(), drv))
                g_error("%s: -device %s is not probed (qemu_probe.c probe_device_types)", name, drv);
            seen++;
        }
    }
    g_dir_close(d);
    g_assert_cmpuint(seen, >, 0);
}

/* <emulator> in the model: the first one, empty means none. */
static void
test_parse_emulator(void)
{
    const char *xml = "<domain type='kvm'><name>e</name><memory>1048576</memory><devices>"
                      "<emulator> /usr/bin/qemu-kvm </emulator><emulator>/second</emulator>"
                      "<disk type='file'/></devices></domain>";
    const char *empty = "<domain type='kvm'><name>e</name><memory>1048576</memory><devices>"
                        "<emulator></emulator></devices></domain>";
    g_autoptr(dmgDomainDef) def = dmg_domain_def_parse_string(xml, strlen(xml), "e", NULL);
    g_autoptr(dmgDomainDef) def2 = dmg_domain_def_parse_string(empty, strlen(empty), "e", NULL);

    g_assert_nonnull(def);
    g_assert_cmpstr(def->emulator, ==, "/usr/bin/qemu-kvm");
    g_assert_nonnull(def2);
    g_assert_null(def2->emulator);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/qemu-probe/" name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("real-qemu", test_real_qemu);
    ADD("real-qemu-profile", test_real_qemu_profile);
    ADD("fake-downstream-feature", test_fake_downstream_feature);
    ADD("fake-check-verdict", test_fake_check_verdict);
    ADD("cache-key", test_cache_key);
    ADD("cache-corrupt", test_cache_corrupt);
    ADD("cache-unsafe-dir", test_cache_unsafe_dir);
    ADD("errors", test_errors);
    ADD("hang", test_hang);
    ADD("dies-with-parent", test_dies_with_parent);
    ADD("profile-for-domain", test_profile_for_domain);
    ADD("default-emulator", test_default_emulator);
#undef ADD
    g_test_add_func("/qemu-probe/device-types-cover-argv", test_device_types_cover_argv);
    g_test_add_func("/qemu-probe/parse-emulator", test_parse_emulator);
    return g_test_run();
}

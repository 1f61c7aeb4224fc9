/*
 * fuzz-domain-parse.c: libFuzzer target for the whole dry run of one domain.
 *
 * The input bytes are handed to dmg_check_xml() as a domain XML document:
 * parsed by src/conf/domain_conf.c, realized on the VMM model (src/vmm/),
 * and read off into a verdict.  A verdict is also rendered as text and as
 * JSON (src/qemu_ext/report.c), since device names and other strings from
 * the document end up in those reports.  Everything is freed on every
 * path, so LeakSanitizer reports any leak of the code under test.
 *
 * The host profile is built once, from the fixture sysfs tree
 * tests/sysfs/host1: $DMG_FUZZ_SYSFS, else DMG_FUZZ_SYSFS_DEFAULT given
 * at compile time.  $DMG_FUZZ_QEMU_VERSION picks the QEMU version (default:
 * the newest known).  Built and run by fuzz/build-and-run.sh.
 */
#include <stdint.h>
#include <stdlib.h>

#include <libxml/parser.h>

#include "check.h"
#include "host_profile.h"
#include "qemu_profile.h"
#include "report.h"

#ifndef DMG_FUZZ_SYSFS_DEFAULT
# define DMG_FUZZ_SYSFS_DEFAULT "tests/sysfs/host1"
#endif

static dmgHostProfile *fuzz_host;
static dmgQemuProfile *fuzz_qemu;
static JsonNode *fuzz_profile;     /* the "profile" member of the JSON report */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *sysfs = g_getenv("DMG_FUZZ_SYSFS");
    const char *version = g_getenv("DMG_FUZZ_QEMU_VERSION");
    g_autoptr(GError) err = NULL;

    (void)argc;
    (void)argv;
    if (!sysfs || !*sysfs)
        sysfs = DMG_FUZZ_SYSFS_DEFAULT;
    if (!g_file_test(sysfs, G_FILE_TEST_IS_DIR)) {
        g_printerr("fuzz-domain-parse: host sysfs fixture %s not found; set DMG_FUZZ_SYSFS\n",
                   sysfs);
        exit(1);
    }
    xmlInitParser();

    fuzz_host = dmg_host_profile_new(sysfs);
    dmg_host_profile_read_sysfs(fuzz_host);
    fuzz_qemu = dmg_qemu_profile_new();
    if (version && *version &&
        !dmg_qemu_profile_set_version(fuzz_qemu, version, &err)) {
        g_printerr("fuzz-domain-parse: DMG_FUZZ_QEMU_VERSION: %s\n", err->message);
        exit(1);
    }
    fuzz_profile = dmg_report_profile(fuzz_host, fuzz_qemu, NULL);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *err = NULL;
    JsonNode *verdict;

    verdict = dmg_check_xml((const char *)data, size, "fuzz.xml",
                            fuzz_host, fuzz_qemu, &err);
    if (verdict) {
        g_autoptr(GString) text = g_string_new(NULL);
        g_autoptr(GPtrArray) verdicts = g_ptr_array_new();
        g_autofree char *json = NULL;

        /* A verdict is a result or an error, never both. */
        if (err)
            abort();
        dmg_report_text(text, verdict);
        g_ptr_array_add(verdicts, verdict);
        json = dmg_report_json(verdicts, fuzz_profile, FALSE);
        json_node_unref(verdict);
    } else if (!err) {
        /* NULL without an error would make the CLI print nothing and
         * exit 2 without a message. */
        abort();
    }
    g_clear_error(&err);
    return 0;
}

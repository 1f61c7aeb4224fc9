/*
 * host_iommu.c: whether the host IOMMU tracks dirty pages, read from the
 * sysfs tree of the host being judged (class/iommu), for iommufd's
 * IOMMU_CAP_DIRTY_TRACKING.  Split from host_profile.c, which calls it
 * while reading sysfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host_iommu.h"
#include "dmg_i18n.h"


/*
 * Whether the host IOMMU can track dirty pages is a property of each IOMMU
 * unit, and the kernel shows each unit's capability register under
 * class/iommu/UNIT.  QEMU uses IOMMU dirty tracking only through iommufd
 * (IOMMU_HWPT_ALLOC_DIRTY_TRACKING, which iommufd grants when the unit's
 * driver reports IOMMU_CAP_DIRTY_TRACKING; both Linux 6.7).  A device may
 * sit behind any unit, so the host counts as tracking dirty pages only if
 * every unit does.
 *
 * Intel VT-d: class/iommu/dmarN/intel-iommu/ecap, the Extended Capability
 * Register printed as "%llx\n" (the ecap attribute, drivers/iommu/intel/iommu.c).
 * intel_iommu_capable() answers IOMMU_CAP_DIRTY_TRACKING with
 * ssads_supported(), drivers/iommu/intel/iommu.h:
 *
 *   #define sm_supported(iommu)    (intel_iommu_sm && ecap_smts((iommu)->ecap))
 *   #define ssads_supported(iommu) (sm_supported(iommu) &&
 *                                   ecap_slads((iommu)->ecap) &&
 *                                   ecap_smpwc(iommu->ecap))
 *
 * with ecap_slads(e) (((e) >> 45) & 0x1), second-stage Accessed/Dirty
 * support (SSADS), ecap_smts(e) (((e) >> 43) & 0x1), scalable mode, and
 * ecap_smpwc(e) (((e) >> 48) & 0x1), coherent scalable-mode page walks.
 * The SMPWC term is from "iommu/vt-d: Disallow dirty tracking if
 * incoherent page walk" (57f55048e564, Linux 6.18, backported to stable):
 * the A/D update faults on a non-snooped walk, so an older kernel that
 * offers dirty tracking without it is wrong, and we do not follow it.
 * intel_iommu_sm (intel_iommu=sm_on|sm_off) is a boot choice sysfs does
 * not show; a host booted with sm_off needs a profile file.
 *
 * AMD: class/iommu/ivhdN/amd-iommu/features, the Extended Feature
 * Register.  drivers/iommu/amd/init.c amd_iommu_show_features() prints
 * "%llx:%llx\n" of amd_iommu_efr, amd_iommu_efr2 (the EFR and EFR2 common
 * to all units) in current kernels, and printed "%llx\n" of the unit's EFR
 * before EFR2 support: the first value is EFR either way.  In between
 * (from EFR2 support until the switch to the global EFR, around Linux
 * 6.7) it printed iommu->features2 first.  Kernels before 6.7 have no
 * IOMMU dirty tracking at all, and EFR2 defines no bit 52 (only bits 1,
 * 3, 4 and 7:5 in amd_iommu_types.h), so reading EFR2 there answers
 * "no", which is the safe side.  amd_iommu_capable() answers
 * IOMMU_CAP_DIRTY_TRACKING with amd_iommu_hd_support(): EFR &
 * FEATURE_HDSUP, drivers/iommu/amd/amd_iommu_types.h:
 *
 *   #define FEATURE_HDSUP  BIT_ULL(52)   host dirty support
 *
 * It also answers false when host translation is disabled
 * (amd_iommu_hatdis), but then the unit has no class/iommu entry.
 */
#define DMG_INTEL_ECAP_SMTS   (G_GUINT64_CONSTANT(1) << 43)
#define DMG_INTEL_ECAP_SLADS  (G_GUINT64_CONSTANT(1) << 45)
#define DMG_INTEL_ECAP_SMPWC  (G_GUINT64_CONSTANT(1) << 48)
#define DMG_AMD_FEATURE_HDSUP (G_GUINT64_CONSTANT(1) << 52)

/* A register file is one or two 64-bit hex values and a newline; anything
 * longer is not one. */
#define DMG_REGISTER_FILE_MAX 64

typedef enum {
    DMG_IOMMU_UNIT_UNKNOWN,      /* unreadable, malformed, or another kind */
    DMG_IOMMU_UNIT_NO_DIRTY,
    DMG_IOMMU_UNIT_DIRTY,
} dmgIommuUnitDirty;


/* Read at most DMG_REGISTER_FILE_MAX bytes of @path into @buf and set
 * @lenp.  Never blocks: a FIFO or device node is refused, by stat() before
 * it is opened (opening some devices has effects) and by fstat() after
 * (in case it was swapped in between), and O_NONBLOCK covers the window.
 * Warns with the path and never with the contents, which are not ours to
 * print. */
static bool
dmg_read_register_file(const char *path, char *buf, size_t *lenp)
{
    struct stat st;
    size_t len = 0;
    int fd;

    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        g_warning(_("%s: not a regular file; IOMMU dirty tracking is assumed unsupported"),
                  path);
        return false;
    }
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0) {
        g_warning(_("%s: %s; IOMMU dirty tracking is assumed unsupported"),
                  path, g_strerror(errno));
        return false;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        g_warning(_("%s: not a regular file; IOMMU dirty tracking is assumed unsupported"),
                  path);
        close(fd);
        return false;
    }
    /* One byte more than allowed, to tell a full file from a long one. */
    while (len <= DMG_REGISTER_FILE_MAX) {
        ssize_t n = read(fd, buf + len, DMG_REGISTER_FILE_MAX + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_warning(_("%s: %s; IOMMU dirty tracking is assumed unsupported"),
                      path, g_strerror(errno));
            close(fd);
            return false;
        }
        if (n == 0)
            break;
        len += n;
    }
    close(fd);
    if (len > DMG_REGISTER_FILE_MAX) {
        g_warning(_("%s: longer than %d bytes, so not a register value; IOMMU dirty tracking is assumed unsupported"),
                  path, DMG_REGISTER_FILE_MAX);
        return false;
    }
    *lenp = len;
    return true;
}


/* 1 to 16 hex digits, as the kernel's "%llx" prints them: no prefix, no
 * sign, no spaces. */
static bool
dmg_parse_register(const char *s, size_t len, guint64 *out)
{
    guint64 v = 0;
    size_t i;

    if (len == 0 || len > 16)
        return false;
    for (i = 0; i < len; i++) {
        if (!g_ascii_isxdigit(s[i]))
            return false;
        v = (v << 4) | (guint64) g_ascii_xdigit_value(s[i]);
    }
    *out = v;
    return true;
}


/* Read the first register value of @path: "X\n" or "X:Y\n" (AMD's EFR and
 * EFR2).  A malformed file warns and counts as unknown. */
static bool
dmg_read_register(const char *path, guint64 *out)
{
    char buf[DMG_REGISTER_FILE_MAX + 1];
    const char *colon;
    size_t len;
    guint64 second;

    if (!dmg_read_register_file(path, buf, &len))
        return false;

    if (len > 0 && buf[len - 1] == '\n')
        len--;
    /* Lengths, not strlen: a NUL, like any byte that is not a hex
     * digit, makes the file malformed instead of ending it early. */
    if ((colon = memchr(buf, ':', len))) {
        size_t first = colon - buf;

        if (dmg_parse_register(buf, first, out) &&
            dmg_parse_register(colon + 1, len - first - 1, &second))
            return true;
    } else if (dmg_parse_register(buf, len, out)) {
        return true;
    }
    g_warning(_("%s: not a hexadecimal register value; IOMMU dirty tracking is assumed unsupported"),
              path);
    return false;
}


static dmgIommuUnitDirty
dmg_iommu_unit_dirty(const char *unitdir, const char *name)
{
    g_autofree char *intel = g_build_filename(unitdir, "intel-iommu", NULL);
    g_autofree char *amd = g_build_filename(unitdir, "amd-iommu", NULL);
    g_autofree char *path = NULL;
    guint64 reg;

    if (g_file_test(intel, G_FILE_TEST_IS_DIR)) {
        const guint64 need = DMG_INTEL_ECAP_SMTS | DMG_INTEL_ECAP_SLADS |
                             DMG_INTEL_ECAP_SMPWC;

        path = g_build_filename(intel, "ecap", NULL);
        if (!dmg_read_register(path, &reg))
            return DMG_IOMMU_UNIT_UNKNOWN;
        return (reg & need) == need ? DMG_IOMMU_UNIT_DIRTY : DMG_IOMMU_UNIT_NO_DIRTY;
    }
    if (g_file_test(amd, G_FILE_TEST_IS_DIR)) {
        path = g_build_filename(amd, "features", NULL);
        if (!dmg_read_register(path, &reg))
            return DMG_IOMMU_UNIT_UNKNOWN;
        return reg & DMG_AMD_FEATURE_HDSUP ? DMG_IOMMU_UNIT_DIRTY : DMG_IOMMU_UNIT_NO_DIRTY;
    }
    /* ARM SMMU, virtio-iommu, s390...: no register dmaguard knows. */
    g_debug("%s: IOMMU unit %s is neither Intel VT-d nor AMD-Vi", unitdir, name);
    return DMG_IOMMU_UNIT_UNKNOWN;
}


/* Every unit under class/iommu decides.  One unit without dirty tracking
 * settles it (false, from sysfs); a unit that cannot be read leaves the
 * answer unknown (the default, false); only if every unit tracks dirty
 * pages is the answer true. */
static gint
dmg_iommu_name_compare(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int
dmg_iommu_read_dirty_tracking(const char *sysfs_root)
{
    g_autofree char *classdir = g_build_filename(sysfs_root, "class", "iommu", NULL);
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GPtrArray) names = NULL;
    bool unknown = false;
    bool lacking = false;
    const char *entry;
    guint i;

    /* No IOMMU, or an IOMMU driver without sysfs: nothing to say. */
    if (!(dir = g_dir_open(classdir, 0, NULL)))
        return -1;

    names = g_ptr_array_new_with_free_func(g_free);
    while ((entry = g_dir_read_name(dir)))
        g_ptr_array_add(names, g_strdup(entry));
    if (names->len == 0)
        return -1;
    /* readdir order is arbitrary; warnings come in a stable order. */
    g_ptr_array_sort(names, dmg_iommu_name_compare);

    for (i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *unitdir = g_build_filename(classdir, name, NULL);

        switch (dmg_iommu_unit_dirty(unitdir, name)) {
        case DMG_IOMMU_UNIT_DIRTY:
            break;
        case DMG_IOMMU_UNIT_NO_DIRTY:
            lacking = true;
            break;
        case DMG_IOMMU_UNIT_UNKNOWN:
            unknown = true;
            break;
        }
    }

    if (!lacking && unknown)
        return -1;
    return !lacking;
}

/*
 * test-vfio-type1.c: the VFIO type1 backend's system calls, recorded.
 *
 * There is no /dev/vfio here, so a fake vfio_type1_sys stands in for the
 * kernel: it hands out fake fds, answers the VFIO ioctls as a host with
 * Type1v2 does, checks the rules the kernel enforces (no VFIO_SET_IOMMU
 * on a container without a group, no mapping before VFIO_SET_IOMMU, ...)
 * and logs every call.  The model (vmm_machine, vfio_device__realize)
 * drives it; the whole log is compared with
 * tests/vfio-type1/connect-two-groups.txt, which must show QEMU's order
 * from seeds 000/002.  DMAGUARD_TEST_REGENERATE=1 rewrites it.
 *
 * The second test fails each open()/ioctl() in turn (seed 000: "every
 * error path drops the disable again"): the realize fails with a clear
 * error, the uncoordinated discard counter is back where it was, and
 * every fd the fake handed out is closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/vfio.h>

#include "machine.h"
#include "vfio/device.h"
#include "vfio/type1.h"

#define FAKE_FIRST_FD 100
#define MAP_IOVA 0x100000000ull
#define MAP_SIZE (64ull << 20)
#define MAP_VADDR ((void *)(uintptr_t)0x7f0000000000ull)  /* never touched */
#define ROM_IOVA 0xfffc0000ull
#define ROM_SIZE 0x40000ull
#define ROM_VADDR ((void *)(uintptr_t)0x7f1000000000ull)

/* ------------------------------------------------------------------ */
/* The fake kernel                                                     */

typedef enum {
    PHASE_SETUP,
    PHASE_REALIZE_A,                     /* hostdev0, group 12 */
    PHASE_REALIZE_B,                     /* hostdev1, group 13 */
    PHASE_MAP,
    PHASE_UNMAP,
    PHASE_FREE,                          /* vmm_machine__free */
} phase;

static const char *const phase_names[] = {
    "setup", "realize hostdev0", "realize hostdev1", "dma_map", "dma_unmap", "machine free",
};

typedef struct fake_file {
    int fd;
    int group;                           /* /dev/vfio/<group>, -1: the container */
    int container;                       /* a group's container fd, or -1 */
    guint ngroups;                       /* a container's groups */
    bool iommu_set;
} fake_file;

/* One open() or ioctl(), the calls that may fail. */
typedef struct fake_call {
    phase phase;
    unsigned long req;                   /* 0 for open() */
    int group;                           /* the file's group, -1: container */
} fake_call;

static struct {
    GString *log;
    GHashTable *files;                   /* fd -> fake_file * */
    GArray *calls;                       /* fake_call */
    int next_fd;
    phase phase;
    guint fail[2];                       /* 1-based call numbers to fail */
    guint nfail;
    guint failed;                        /* injected failures */
    /* the host: what GET_STATUS, GET_API_VERSION, CHECK_EXTENSION say */
    bool not_viable;
    int api_version;
    bool has_type1v2, has_type1;
} fake;

static void
fake_reset(const guint *fail, guint nfail)
{
    if (fake.log)
        g_string_free(fake.log, TRUE);
    g_clear_pointer(&fake.files, g_hash_table_unref);
    g_clear_pointer(&fake.calls, g_array_unref);
    fake.log = g_string_new(NULL);
    fake.files = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    fake.calls = g_array_new(FALSE, TRUE, sizeof(fake_call));
    fake.next_fd = FAKE_FIRST_FD;
    fake.phase = PHASE_SETUP;
    g_assert_cmpuint(nfail, <=, G_N_ELEMENTS(fake.fail));
    for (guint i = 0; i < nfail; i++)
        fake.fail[i] = fail[i];
    fake.nfail = nfail;
    fake.failed = 0;
    fake.not_viable = false;
    fake.api_version = VFIO_API_VERSION;
    fake.has_type1v2 = fake.has_type1 = true;
}

static void
fake_destroy(void)
{
    g_string_free(fake.log, TRUE);
    fake.log = NULL;
    g_clear_pointer(&fake.files, g_hash_table_unref);
    g_clear_pointer(&fake.calls, g_array_unref);
}

static void
fake_phase(phase p, const char *what)
{
    fake.phase = p;
    g_string_append_printf(fake.log, "# %s\n", what);
}

static fake_file *
fake_file_get(int fd)
{
    return g_hash_table_lookup(fake.files, GINT_TO_POINTER(fd));
}

/* Count the call; true if this one is to fail. */
static bool
fake_count(unsigned long req, int group)
{
    fake_call call = { .phase = fake.phase, .req = req, .group = group };

    g_array_append_val(fake.calls, call);
    for (guint i = 0; i < fake.nfail; i++) {
        if (fake.fail[i] == fake.calls->len) {
            fake.failed++;
            return true;
        }
    }
    return false;
}

static int
fake_open(const char *path, int flags)
{
    fake_file *f;
    int group = -1;

    g_assert_cmpint(flags, ==, O_RDWR | O_CLOEXEC);
    g_string_append_printf(fake.log, "open %s flags=O_RDWR|O_CLOEXEC", path);
    if (g_strcmp0(path, "/dev/vfio/vfio") != 0) {
        g_assert_true(g_str_has_prefix(path, "/dev/vfio/"));
        group = atoi(path + strlen("/dev/vfio/"));
    }
    if (fake_count(0, group)) {
        g_string_append(fake.log, " = -1 EINVAL (injected)\n");
        errno = EINVAL;
        return -1;
    }
    f = g_new0(fake_file, 1);
    f->fd = fake.next_fd++;
    f->group = group;
    f->container = -1;
    g_hash_table_insert(fake.files, GINT_TO_POINTER(f->fd), f);
    g_string_append_printf(fake.log, " = %d\n", f->fd);
    return f->fd;
}

static int
fake_close(int fd)
{
    fake_file *f = fake_file_get(fd);
    fake_file *c;

    g_string_append_printf(fake.log, "close fd=%d\n", fd);
    g_assert_nonnull(f);                 /* closing what the fake handed out */
    /* The kernel drops a group's container when its fd goes. */
    if (f->group >= 0 && f->container >= 0 && (c = fake_file_get(f->container)))
        c->ngroups--;
    g_hash_table_remove(fake.files, GINT_TO_POINTER(fd));
    return 0;
}

static const char *
req_name(unsigned long req)
{
    switch (req) {
    case VFIO_GET_API_VERSION: return "VFIO_GET_API_VERSION";
    case VFIO_CHECK_EXTENSION: return "VFIO_CHECK_EXTENSION";
    case VFIO_SET_IOMMU: return "VFIO_SET_IOMMU";
    case VFIO_GROUP_GET_STATUS: return "VFIO_GROUP_GET_STATUS";
    case VFIO_GROUP_SET_CONTAINER: return "VFIO_GROUP_SET_CONTAINER";
    case VFIO_GROUP_UNSET_CONTAINER: return "VFIO_GROUP_UNSET_CONTAINER";
    case VFIO_IOMMU_GET_INFO: return "VFIO_IOMMU_GET_INFO";
    case VFIO_IOMMU_MAP_DMA: return "VFIO_IOMMU_MAP_DMA";
    case VFIO_IOMMU_UNMAP_DMA: return "VFIO_IOMMU_UNMAP_DMA";
    }
    return NULL;
}

static bool
req_is_group(unsigned long req)
{
    return req == VFIO_GROUP_GET_STATUS || req == VFIO_GROUP_SET_CONTAINER ||
           req == VFIO_GROUP_UNSET_CONTAINER;
}

static const char *
iommu_name(uintptr_t type)
{
    switch (type) {
    case VFIO_TYPE1_IOMMU: return "VFIO_TYPE1_IOMMU";
    case VFIO_TYPE1v2_IOMMU: return "VFIO_TYPE1v2_IOMMU";
    }
    return "?";
}

static const char *
map_flags(guint32 flags)
{
    switch (flags) {
    case VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE: return "READ|WRITE";
    case VFIO_DMA_MAP_FLAG_READ: return "READ";
    }
    return "?";
}

/* The arguments the backend passes, one normalized line. */
static void
fake_log_args(unsigned long req, void *arg)
{
    GString *l = fake.log;

    switch (req) {
    case VFIO_CHECK_EXTENSION:
        g_string_append_printf(l, " ext=%s", iommu_name((uintptr_t)arg));
        break;
    case VFIO_SET_IOMMU:
        g_string_append_printf(l, " type=%s", iommu_name((uintptr_t)arg));
        break;
    case VFIO_GROUP_SET_CONTAINER:
        g_string_append_printf(l, " container=%d", *(int *)arg);
        break;
    case VFIO_GROUP_GET_STATUS:
        g_assert_cmpuint(((struct vfio_group_status *)arg)->argsz, ==,
                         sizeof(struct vfio_group_status));
        break;
    case VFIO_IOMMU_GET_INFO:
        g_assert_cmpuint(((struct vfio_iommu_type1_info *)arg)->argsz, >=,
                         offsetof(struct vfio_iommu_type1_info, cap_offset));
        break;
    case VFIO_IOMMU_MAP_DMA: {
        struct vfio_iommu_type1_dma_map *map = arg;

        g_assert_cmpuint(map->argsz, ==, sizeof(*map));
        g_string_append_printf(l, " vaddr=0x%" PRIx64 " iova=0x%" PRIx64 " size=0x%" PRIx64 " flags=%s",
                               (guint64)map->vaddr, (guint64)map->iova,
                               (guint64)map->size, map_flags(map->flags));
        break;
    }
    case VFIO_IOMMU_UNMAP_DMA: {
        struct vfio_iommu_type1_dma_unmap *unmap = arg;

        g_assert_cmpuint(unmap->argsz, ==, sizeof(*unmap));
        g_string_append_printf(l, " iova=0x%" PRIx64 " size=0x%" PRIx64 " flags=0x%x",
                               (guint64)unmap->iova, (guint64)unmap->size, unmap->flags);
        break;
    }
    }
}

/* What the kernel answers, and the rules it enforces (drivers/vfio). */
static int
fake_answer(fake_file *f, unsigned long req, void *arg)
{
    fake_file *c;

    switch (req) {
    case VFIO_GET_API_VERSION:
        g_string_append_printf(fake.log, " -> %d", fake.api_version);
        return fake.api_version;
    case VFIO_CHECK_EXTENSION: {
        int ret = (uintptr_t)arg == VFIO_TYPE1v2_IOMMU ? fake.has_type1v2
                  : (uintptr_t)arg == VFIO_TYPE1_IOMMU ? fake.has_type1 : 0;

        g_string_append_printf(fake.log, " -> %d", ret);
        return ret;
    }
    case VFIO_GROUP_GET_STATUS: {
        struct vfio_group_status *st = arg;

        st->flags = (fake.not_viable ? 0 : VFIO_GROUP_FLAGS_VIABLE) |
                    (f->container >= 0 ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0);
        g_string_append_printf(fake.log, " -> flags=%s%s",
                               fake.not_viable ? "0" : "VIABLE",
                               f->container >= 0 ? "|CONTAINER_SET" : "");
        return 0;
    }
    case VFIO_GROUP_SET_CONTAINER:
        g_assert_cmpint(f->container, <, 0);          /* EINVAL: already set */
        c = fake_file_get(*(int *)arg);
        g_assert_nonnull(c);
        g_assert_cmpint(c->group, <, 0);              /* a container fd */
        f->container = c->fd;
        c->ngroups++;
        return 0;
    case VFIO_GROUP_UNSET_CONTAINER:
        g_assert_cmpint(f->container, >=, 0);         /* EINVAL: not set */
        if ((c = fake_file_get(f->container)))
            c->ngroups--;
        f->container = -1;
        return 0;
    case VFIO_SET_IOMMU:
        g_assert_cmpuint(f->ngroups, >, 0);           /* EINVAL without a group */
        g_assert_false(f->iommu_set);                 /* EBUSY: already set */
        /* the model CHECK_EXTENSION said yes to */
        g_assert_true((uintptr_t)arg == VFIO_TYPE1v2_IOMMU ? fake.has_type1v2
                      : (uintptr_t)arg == VFIO_TYPE1_IOMMU && fake.has_type1);
        f->iommu_set = true;
        return 0;
    case VFIO_IOMMU_GET_INFO: {
        struct vfio_iommu_type1_info *info = arg;

        g_assert_true(f->iommu_set);
        info->flags = VFIO_IOMMU_INFO_PGSIZES;
        info->iova_pgsizes = 0x1000;
        g_string_append(fake.log, " -> flags=PGSIZES iova_pgsizes=0x1000");
        return 0;
    }
    case VFIO_IOMMU_MAP_DMA:
    case VFIO_IOMMU_UNMAP_DMA:
        g_assert_true(f->iommu_set);
        return 0;
    }
    g_assert_not_reached();
}

static int
fake_ioctl(int fd, unsigned long req, void *arg)
{
    fake_file *f = fake_file_get(fd);
    const char *name = req_name(req);

    if (!name)
        g_error("ioctl fd=%d: unexpected request 0x%lx", fd, req);
    g_assert_nonnull(f);                              /* EBADF */
    g_assert_true(req_is_group(req) == (f->group >= 0));
    g_string_append_printf(fake.log, "ioctl fd=%d %s", fd, name);
    fake_log_args(req, arg);
    if (fake_count(req, f->group)) {
        g_string_append(fake.log, " = -1 EINVAL (injected)\n");
        errno = EINVAL;
        return -1;
    }
    int ret = fake_answer(f, req, arg);
    g_string_append_c(fake.log, '\n');
    return ret;
}

static const vfio_type1_sys fake_sys = {
    .open = fake_open,
    .ioctl = fake_ioctl,
    .close = fake_close,
};

/* ------------------------------------------------------------------ */
/* The scenario: two groups, one container, one mapping                */

static const vfio_device_config dev_a = {
    .alias = "hostdev0", .host = "0000:01:00.0", .kind = VFIO_KIND_PCI,
    .group = 12, .driver = "vfio-pci",
};
static const vfio_device_config dev_b = {
    .alias = "hostdev1", .host = "0000:02:00.0", .kind = VFIO_KIND_PCI,
    .group = 13, .driver = "vfio-pci",
};

static vmm_machine *
machine_new(void)
{
    vmm_machine_config mc = {
        .type = VMM_MACHINE_Q35, .kvm = true, .kvm_sync_mmu = true,
        .vfio_backend = &vfio_backend_type1,
    };
    vmm_machine *m = vmm_machine__new(&mc);

    vmm_machine__init_accel(m);
    return m;
}

static vfio_address_space *
memory_space(vmm_machine *m)
{
    return g_ptr_array_index(m->address_spaces, 0);
}

typedef struct result {
    unsigned start;                      /* uncoordinated disables at start */
    vfio_device *a, *b;
    GError *err_a, *err_b, *err_map, *err_unmap;
    unsigned disabled_after_a, disabled_after_b;
    guint open_after_a, open_after_b;    /* fds the fake has open */
    guint groups_after_a, groups_after_b;
    guint containers_after_a, containers_after_b;
    bool mapped, unmapped;
    guint64 pgsizes;
    guint32 iommu_type;
    guint open_at_end;
    guint calls;
} result;

static void
result_clear(result *r)
{
    g_clear_error(&r->err_a);
    g_clear_error(&r->err_b);
    g_clear_error(&r->err_map);
    g_clear_error(&r->err_unmap);
}

/* Realize both devices, map and unmap through the container, free the
 * machine, failing the open()/ioctl() calls numbered in @fail. */
static void
scenario(const guint *fail, guint nfail, result *r)
{
    vmm_machine *m;
    const vfio_backend_ops *ops = &vfio_backend_type1;

    memset(r, 0, sizeof(*r));
    fake_reset(fail, nfail);
    m = machine_new();
    r->start = m->discard.uncoordinated_discard_disabled;

    fake_phase(PHASE_REALIZE_A, "vfio_device__realize hostdev0 (group 12)");
    r->a = vfio_device__realize(m, &dev_a, &r->err_a);
    r->disabled_after_a = m->discard.uncoordinated_discard_disabled;
    r->open_after_a = g_hash_table_size(fake.files);
    r->groups_after_a = m->groups->len;
    r->containers_after_a = memory_space(m)->containers->len;
    if (r->a) {
        fake_phase(PHASE_REALIZE_B, "vfio_device__realize hostdev1 (group 13)");
        r->b = vfio_device__realize(m, &dev_b, &r->err_b);
        r->disabled_after_b = m->discard.uncoordinated_discard_disabled;
        r->open_after_b = g_hash_table_size(fake.files);
        r->groups_after_b = m->groups->len;
        r->containers_after_b = memory_space(m)->containers->len;
    }
    if (memory_space(m)->containers->len) {
        vfio_container *c = g_ptr_array_index(memory_space(m)->containers, 0);

        r->pgsizes = vfio_type1__iova_pgsizes(c);
        r->iommu_type = vfio_type1__iommu_type(c);
        fake_phase(PHASE_MAP, "dma_map 64 MiB at 4 GiB, and a read-only 256 KiB below 4 GiB");
        r->mapped = ops->dma_map(c, MAP_IOVA, MAP_SIZE, MAP_VADDR, false, &r->err_map) == 0 &&
                    ops->dma_map(c, ROM_IOVA, ROM_SIZE, ROM_VADDR, true, &r->err_map) == 0;
        if (r->mapped) {
            fake_phase(PHASE_UNMAP, "dma_unmap both");
            r->unmapped = ops->dma_unmap(c, MAP_IOVA, MAP_SIZE, &r->err_unmap) == 0 &&
                          ops->dma_unmap(c, ROM_IOVA, ROM_SIZE, &r->err_unmap) == 0;
        }
    }
    fake_phase(PHASE_FREE, "vmm_machine__free");
    vmm_machine__free(m);
    r->open_at_end = g_hash_table_size(fake.files);
    r->calls = fake.calls->len;
}

/* ------------------------------------------------------------------ */
/* The recorded sequence                                               */

static bool
regenerate(void)
{
    return g_strcmp0(g_getenv("DMAGUARD_TEST_REGENERATE"), "1") == 0;
}

static void
test_connect_two_groups(void)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "vfio-type1",
                                                  "connect-two-groups.txt", NULL);
    g_autofree char *want = NULL;
    result r;

    scenario(NULL, 0, &r);
    g_assert_no_error(r.err_a);
    g_assert_no_error(r.err_b);
    g_assert_no_error(r.err_map);
    g_assert_no_error(r.err_unmap);
    g_assert_nonnull(r.a);
    g_assert_nonnull(r.b);
    /* one disable per attached group (seed 000) */
    g_assert_cmpuint(r.disabled_after_a, ==, r.start + 1);
    g_assert_cmpuint(r.disabled_after_b, ==, r.start + 2);
    /* group 13 joined group 12's container */
    g_assert_cmpuint(r.open_after_a, ==, 2);
    g_assert_cmpuint(r.open_after_b, ==, 3);
    g_assert_cmpuint(r.containers_after_b, ==, 1);
    g_assert_cmpuint(r.groups_after_b, ==, 2);
    g_assert_cmpuint(r.iommu_type, ==, VFIO_TYPE1v2_IOMMU);
    g_assert_cmpuint(r.pgsizes, ==, 0x1000);
    g_assert_true(r.unmapped);
    g_assert_cmpuint(r.open_at_end, ==, 0);

    if (regenerate()) {
        g_autofree char *dir = g_path_get_dirname(path);

        g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
        g_assert_true(g_file_set_contents(path, fake.log->str, -1, NULL));
        g_test_message("wrote %s", path);
    } else {
        if (!g_file_get_contents(path, &want, NULL, NULL))
            g_error("%s does not exist (DMAGUARD_TEST_REGENERATE=1 writes it); the sequence was:\n%s",
                    path, fake.log->str);
        g_assert_cmpstr(fake.log->str, ==, want);
    }
    fake_destroy();
}

/* ------------------------------------------------------------------ */
/* Failure injection                                                   */

static GArray *
calls_of(const guint *fail, guint nfail)
{
    result r;
    GArray *calls;

    scenario(fail, nfail, &r);
    result_clear(&r);
    calls = g_array_ref(fake.calls);
    fake_destroy();
    return calls;
}

static const char *
call_name(const fake_call *call)
{
    return call->req ? req_name(call->req) : "open";
}

/* Nothing that realize took is left held. */
static void
assert_realize_failed(const GError *err, vfio_device *dev, const char *what)
{
    g_assert_null(dev);
    g_assert_error(err, VMM_ERROR, VMM_ERR_VFIO_BACKEND);
    g_test_message("  %s: %s", what, err->message);
    g_assert_nonnull(strstr(err->message, g_strerror(EINVAL)));
    /* The device it was for comes first, then the backend's own words. */
    g_assert_true(g_str_has_prefix(err->message, "hostdev"));
    g_assert_nonnull(strstr(err->message, "IOMMU group 1"));
    g_assert_nonnull(strstr(err->message, "): vfio: "));
}

/* Is call @n of the clean run group 13's attempt to join group 12's
 * container?  If it fails, vfio_connect_container() opens a container
 * of its own (QEMU's "try the next container, then a new one"). */
static bool
is_join(GArray *calls, guint n)
{
    const fake_call *call = &g_array_index(calls, fake_call, n - 1);

    return call->phase == PHASE_REALIZE_B && call->req == VFIO_GROUP_SET_CONTAINER &&
           call->group == 13 &&
           g_array_index(calls, fake_call, n - 2).req == VFIO_GROUP_GET_STATUS;
}

static void
check_one(guint n, const fake_call *call, const result *r)
{
    switch (call->phase) {
    case PHASE_REALIZE_A:
        assert_realize_failed(r->err_a, r->a, "hostdev0");
        g_assert_cmpuint(r->disabled_after_a, ==, r->start);
        g_assert_cmpuint(r->open_after_a, ==, 0);
        g_assert_cmpuint(r->groups_after_a, ==, 0);
        g_assert_cmpuint(r->containers_after_a, ==, 0);
        if (call->group == 12)
            g_assert_nonnull(strstr(r->err_a->message, "12"));
        break;
    case PHASE_REALIZE_B:
        g_assert_no_error(r->err_a);
        assert_realize_failed(r->err_b, r->b, "hostdev1");
        /* hostdev0 keeps its group, its container and its disable */
        g_assert_cmpuint(r->disabled_after_b, ==, r->start + 1);
        g_assert_cmpuint(r->open_after_b, ==, 2);
        g_assert_cmpuint(r->groups_after_b, ==, 1);
        g_assert_cmpuint(r->containers_after_b, ==, 1);
        if (call->group == 13)
            g_assert_nonnull(strstr(r->err_b->message, "13"));
        g_assert_true(r->unmapped);
        break;
    case PHASE_MAP:
        g_assert_nonnull(r->b);
        g_assert_false(r->mapped);
        g_assert_error(r->err_map, VMM_ERROR, VMM_ERR_VFIO_BACKEND);
        g_test_message("  dma_map: %s", r->err_map->message);
        g_assert_nonnull(strstr(r->err_map->message, "iova 0x"));
        g_assert_nonnull(strstr(r->err_map->message, " size 0x"));
        g_assert_nonnull(strstr(r->err_map->message, g_strerror(EINVAL)));
        break;
    case PHASE_UNMAP:
        g_assert_true(r->mapped);
        g_assert_false(r->unmapped);
        g_assert_error(r->err_unmap, VMM_ERROR, VMM_ERR_VFIO_BACKEND);
        g_test_message("  dma_unmap: %s", r->err_unmap->message);
        g_assert_nonnull(strstr(r->err_unmap->message, "iova 0x"));
        g_assert_nonnull(strstr(r->err_unmap->message, g_strerror(EINVAL)));
        break;
    case PHASE_FREE:
        g_assert_true(r->unmapped);
        break;
    case PHASE_SETUP:
        g_assert_not_reached();
    }
    g_assert_cmpuint(r->open_at_end, ==, 0);
}

static void
test_failure_injection(void)
{
    g_autoptr(GArray) clean = calls_of(NULL, 0);
    guint join = 0, injected = 0;

    g_assert_cmpuint(clean->len, >, 0);
    for (guint n = 1; n <= clean->len; n++) {
        const fake_call *call = &g_array_index(clean, fake_call, n - 1);
        result r;

        g_test_message("failing call %u/%u: %s in %s", n, clean->len,
                       call_name(call), phase_names[call->phase]);
        if (call->phase == PHASE_FREE) {
            g_assert_cmpuint(call->req, ==, VFIO_GROUP_UNSET_CONTAINER);
            g_test_expect_message(NULL, G_LOG_LEVEL_WARNING,
                                  call->group == 12
                                  ? "*error disconnecting group 12 from container*"
                                  : "*error disconnecting group 13 from container*");
        }
        scenario(&n, 1, &r);
        g_assert_cmpuint(fake.failed, ==, 1);
        if (is_join(clean, n)) {
            /* Not a failure: group 13 gets a container of its own. */
            join = n;
            g_assert_no_error(r.err_b);
            g_assert_nonnull(r.b);
            g_assert_cmpuint(r.containers_after_b, ==, 2);
            g_assert_cmpuint(r.open_after_b, ==, 4);
            g_assert_cmpuint(r.disabled_after_b, ==, r.start + 2);
            g_assert_cmpuint(r.open_at_end, ==, 0);
        } else {
            check_one(n, call, &r);
        }
        g_test_assert_expected_messages();
        result_clear(&r);
        fake_destroy();
        injected++;
    }
    g_assert_cmpuint(join, >, 0);

    /* Group 13 could not join, and creating its own container fails at
     * each step: hostdev0's container and disable stay as they were. */
    {
        guint first[1] = { join };
        g_autoptr(GArray) after = calls_of(first, 1);

        for (guint n = join + 1; n <= after->len; n++) {
            const fake_call *call = &g_array_index(after, fake_call, n - 1);
            guint fail[2] = { join, n };
            result r;

            if (call->phase != PHASE_REALIZE_B)
                break;
            g_test_message("failing the join and call %u: %s in %s", n,
                           call_name(call), phase_names[call->phase]);
            scenario(fail, 2, &r);
            g_assert_cmpuint(fake.failed, ==, 2);
            check_one(n, call, &r);
            result_clear(&r);
            fake_destroy();
            injected++;
        }
    }
    g_test_message("%u failure points injected, all passed", injected);
}

/* ------------------------------------------------------------------ */
/* The host refuses                                                    */

typedef enum { HOST_NOT_VIABLE, HOST_API_VERSION, HOST_TYPE1_ONLY, HOST_NO_MODEL } host_case;

/* Realize hostdev0 on a host that says no (or offers only Type1). */
static void
test_host(gconstpointer data)
{
    host_case hc = GPOINTER_TO_INT(data);
    vmm_machine *m;
    g_autoptr(GError) err = NULL;
    vfio_device *dev;
    unsigned start;

    fake_reset(NULL, 0);
    fake.not_viable = hc == HOST_NOT_VIABLE;
    fake.api_version = hc == HOST_API_VERSION ? 1 : VFIO_API_VERSION;
    fake.has_type1v2 = hc != HOST_TYPE1_ONLY && hc != HOST_NO_MODEL;
    fake.has_type1 = hc != HOST_NO_MODEL;
    m = machine_new();
    start = m->discard.uncoordinated_discard_disabled;
    dev = vfio_device__realize(m, &dev_a, &err);
    g_test_message("%s", fake.log->str);
    switch (hc) {
    case HOST_NOT_VIABLE:
        g_assert_null(dev);
        g_assert_error(err, VMM_ERROR, VMM_ERR_VFIO_BACKEND);
        g_assert_cmpstr(err->message, ==, "hostdev0 (0000:01:00.0, IOMMU group 12): vfio: group 12 is not viable. Please ensure all devices within the iommu_group are bound to their vfio bus driver.");
        /* refused before the disable and before any container */
        g_assert_null(strstr(fake.log->str, "/dev/vfio/vfio"));
        break;
    case HOST_API_VERSION:
        g_assert_null(dev);
        g_assert_error(err, VMM_ERROR, VMM_ERR_VFIO_BACKEND);
        g_assert_cmpstr(err->message, ==, "hostdev0 (0000:01:00.0, IOMMU group 12): vfio: supported vfio version: 0, reported version: 1");
        break;
    case HOST_TYPE1_ONLY:
        g_assert_no_error(err);
        g_assert_nonnull(dev);
        g_assert_nonnull(strstr(fake.log->str, "VFIO_CHECK_EXTENSION ext=VFIO_TYPE1v2_IOMMU -> 0\n"
                                               "ioctl fd=101 VFIO_CHECK_EXTENSION ext=VFIO_TYPE1_IOMMU -> 1\n"));
        g_assert_nonnull(strstr(fake.log->str, "VFIO_SET_IOMMU type=VFIO_TYPE1_IOMMU\n"));
        g_assert_cmpuint(vfio_type1__iommu_type(g_ptr_array_index(memory_space(m)->containers, 0)),
                         ==, VFIO_TYPE1_IOMMU);
        g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, start + 1);
        break;
    case HOST_NO_MODEL:
        g_assert_null(dev);
        g_assert_error(err, VMM_ERROR, VMM_ERR_VFIO_BACKEND);
        g_assert_true(g_str_has_prefix(err->message, "hostdev0 (0000:01:00.0, IOMMU group 12): vfio: No available IOMMU models"));
        break;
    }
    if (!dev) {
        g_assert_cmpuint(m->discard.uncoordinated_discard_disabled, ==, start);
        g_assert_cmpuint(g_hash_table_size(fake.files), ==, 0);
        g_assert_cmpuint(m->groups->len, ==, 0);
    }
    vmm_machine__free(m);
    g_assert_cmpuint(g_hash_table_size(fake.files), ==, 0);
    fake_destroy();
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    vfio_type1__set_sys(&fake_sys);
    g_test_add_func("/vfio-type1/connect-two-groups", test_connect_two_groups);
    g_test_add_func("/vfio-type1/seed000-failure-injection", test_failure_injection);
    g_test_add_data_func("/vfio-type1/host/group-not-viable", GINT_TO_POINTER(HOST_NOT_VIABLE), test_host);
    g_test_add_data_func("/vfio-type1/host/api-version", GINT_TO_POINTER(HOST_API_VERSION), test_host);
    g_test_add_data_func("/vfio-type1/host/type1-only", GINT_TO_POINTER(HOST_TYPE1_ONLY), test_host);
    g_test_add_data_func("/vfio-type1/host/no-iommu-model", GINT_TO_POINTER(HOST_NO_MODEL), test_host);
    return g_test_run();
}

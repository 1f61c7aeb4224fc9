/*
 * bench-memslots.c: cost of seed 003's atomic memslot commits on /dev/kvm.
 *
 *   (a) the raw KVM_SET_USER_MEMORY_REGION ioctl on a bare VM fd: add and
 *       delete a 2 MiB slot, no memory API: the baseline of this run;
 *   (b) non-overlapping commits (one add, or one delete, per transaction)
 *       through the memory API and the memslot layer, first on an idle VM,
 *       then with 2 vCPUs running the guest program: time inside the KVM
 *       ioctls against the commit time, and inhibits/kicks (must be 0);
 *   (c) inhibited commits: vm__run's churn with 2 vCPUs, the vCPU stall of
 *       every inhibited commit (median, p99) against the raw ioctl time;
 *   (d) per-slot cost of registering 1,000 and then 32,000 slots, through
 *       the memory API, and through the memslot layer alone.
 *
 * A benchmark that prints figures, not a test: a missed target prints
 * "TARGET MISSED" and still exits 0.  Exit 77 when /dev/kvm is unusable.
 *
 * The memslot layer keeps microsecond sums (stats.commit_ns, ioctl_ns);
 * for per-commit medians this program chains its own nanosecond timers in
 * front of the listener's commit and the backend's set_region.
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm.h"
#include "kvm_vcpu.h"
#include "memory.h"
#include "memslots.h"
#include "vm.h"

#define MiB (1024ULL * 1024)
#define GiB (1024ULL * MiB)
#define PAGE 4096ULL
#define NR_PAIRS 2000                    /* (a) and (b): add+delete pairs */
#define SLOT_SIZE (2 * MiB)
#define SLOT_BASE (4 * GiB)              /* (a), (b), (d): above the TSS */
#define SLOT_ADDR(i) (SLOT_BASE + ((i) % 16) * 4 * MiB)
#define NR_VCPUS 2
#define TOUCH_BASE (16 * MiB)
#define TOUCH_SIZE (8 * MiB)
#define SCALE_BATCH 1000                 /* (d): slots per transaction */

#define TARGET_COMMIT_RATIO 1.2
#define TARGET_STALL_SLACK_US 100.0
#define TARGET_LINEAR 2.0

static guint64
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (guint64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static gint
u64_cmp(gconstpointer a, gconstpointer b)
{
    guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

    return x < y ? -1 : x > y;
}

/* Percentile @p (0..1) of a guint64/gint64 array, in µs from @unit ns. */
static double
pct_us(GArray *a, double p, double unit)
{
    g_autoptr(GArray) s = NULL;
    guint i;

    if (!a || !a->len)
        return 0;
    s = g_array_sized_new(FALSE, FALSE, sizeof(guint64), a->len);
    g_array_append_vals(s, a->data, a->len);
    g_array_sort(s, u64_cmp);
    i = p <= 0 ? 0 : (guint)(p * s->len + 0.999999) - 1;
    return g_array_index(s, guint64, MIN(i, s->len - 1)) * unit / 1000.0;
}

static double
mean_us(GArray *a)
{
    double sum = 0;

    for (guint i = 0; a && i < a->len; i++)
        sum += g_array_index(a, guint64, i);
    return a && a->len ? sum / a->len / 1000.0 : 0;
}

static GArray *
u64_array(void)
{
    return g_array_new(FALSE, FALSE, sizeof(guint64));
}

/* ---- nanosecond hooks on a memslot layer ------------------------------ */

typedef struct {
    guint64 commit_ns, ioctl_ns;
    guint ioctls;
    bool inhibited;
} commit_sample;

static void (*real_commit)(memory_listener *l);
static int (*real_set_region)(void *opaque, const memslot *s, GError **error);
static guint64 hook_ioctl_ns;
static guint hook_ioctls;
static commit_sample hook_last;
static GArray *hook_samples;             /* commit_sample, when non-NULL */

static int
hook_set_region(void *opaque, const memslot *s, GError **error)
{
    guint64 t0 = now_ns();
    int ret = real_set_region(opaque, s, error);

    hook_ioctl_ns += now_ns() - t0;
    hook_ioctls++;
    return ret;
}

static void
hook_commit(memory_listener *l)
{
    memslots *ms = (memslots *)l;        /* the listener comes first */
    guint64 inhibited = ms->stats.inhibited_commits;
    guint64 t0;

    hook_ioctl_ns = hook_ioctls = 0;
    t0 = now_ns();
    real_commit(l);
    hook_last = (commit_sample){ now_ns() - t0, hook_ioctl_ns, hook_ioctls,
                                 ms->stats.inhibited_commits != inhibited };
    if (hook_samples && hook_ioctls)
        g_array_append_val(hook_samples, hook_last);
}

static void
hooks__install(memslots *ms)
{
    real_commit = ms->listener.commit;
    ms->listener.commit = hook_commit;
    real_set_region = ms->backend.set_region;
    ms->backend.set_region = hook_set_region;
}

/* ---- (a) the raw ioctl ------------------------------------------------ */

typedef struct {
    GArray *add_ns, *del_ns;
} raw_cost;

static int
raw_open_vm(int *kvm_fd)
{
    if ((*kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0) {
        fprintf(stderr, "bench-memslots: cannot open /dev/kvm: %s\n", g_strerror(errno));
        return -1;
    }
    return ioctl(*kvm_fd, KVM_CREATE_VM, 0);
}

static gboolean
bench_raw(raw_cost *raw)
{
    int kvm_fd = -1, vm_fd = raw_open_vm(&kvm_fd);
    void *hva;

    if (vm_fd < 0) {
        if (kvm_fd >= 0)
            fprintf(stderr, "bench-memslots: KVM_CREATE_VM failed: %s\n", g_strerror(errno));
        return FALSE;
    }
    hva = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    g_assert(hva != MAP_FAILED);
    raw->add_ns = u64_array();
    raw->del_ns = u64_array();
    for (guint i = 0; i < NR_PAIRS; i++) {
        struct kvm_userspace_memory_region r = {
            .slot = 0, .guest_phys_addr = SLOT_ADDR(i), .memory_size = SLOT_SIZE,
            .userspace_addr = (guint64)(uintptr_t)hva,
        };
        guint64 t0 = now_ns(), t1, t2;
        int ret = ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);

        t1 = now_ns();
        r.memory_size = 0;
        ret |= ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
        t2 = now_ns();
        if (ret < 0) {
            fprintf(stderr, "bench-memslots: KVM_SET_USER_MEMORY_REGION failed: %s\n", g_strerror(errno));
            break;
        }
        t1 -= t0;
        t2 -= t0 + t1;
        g_array_append_val(raw->add_ns, t1);
        g_array_append_val(raw->del_ns, t2);
    }
    munmap(hva, SLOT_SIZE);
    close(vm_fd);
    close(kvm_fd);
    return raw->add_ns->len == NR_PAIRS;
}

/* ---- (b) non-overlapping commits -------------------------------------- */

typedef struct {
    GArray *commit_ns[2], *ioctl_ns[2], *txn_ns[2];  /* [0] add, [1] delete */
    guint64 stats_commit_ns, stats_ioctl_ns, commits, ioctls;
    guint64 inhibits, kicks, passes;
} nonoverlap;

static gboolean
bench_nonoverlap(unsigned nr_vcpus, nonoverlap *out, GError **error)
{
    g_autoptr(GPtrArray) vcpus = g_ptr_array_new();
    kvm_accel *kvm = kvm_accel__new(NULL, true, 0, error);
    memory_region *root = memory_region__new_container("system", G_MAXUINT64);
    memory_region *slot, *boot = NULL, *touch = NULL;
    address_space *as;
    memslots_stats s0;
    guint64 inhibits0, kicks0;

    if (!kvm)
        return FALSE;
    as = address_space__new("bench", root);
    slot = memory_region__new_ram("bench.slot", SLOT_SIZE, 0, error);
    if (nr_vcpus) {
        boot = memory_region__new_ram("boot", GUEST_BOOT_SIZE, 0, error);
        touch = memory_region__new_ram("touch", TOUCH_SIZE, 0, error);
        memory_region_transaction__begin();
        memory_region__add_subregion(root, GUEST_BOOT_BASE, boot, 0);
        memory_region__add_subregion(root, TOUCH_BASE, touch, 0);
        memory_region_transaction__commit();
        guest_program__load(boot->ram);
    }
    memory_listener__register(&kvm->slots.listener, as);
    hooks__install(&kvm->slots);
    for (unsigned i = 0; i < nr_vcpus; i++) {
        kvm_vcpu *vcpu;

        guest_params__init(boot->ram, i, nr_vcpus, TOUCH_BASE, TOUCH_BASE + TOUCH_SIZE, 0, 0);
        if (!(vcpu = kvm_vcpu__create(kvm->vm_fd, i, &kvm->blocker, NULL, NULL, error)))
            break;
        g_ptr_array_add(vcpus, vcpu);
        if (!kvm_vcpu__start(vcpu, error))
            break;
    }
    g_usleep(20000);                     /* let the vCPUs enter the guest */
    for (int k = 0; k < 2; k++) {
        out->commit_ns[k] = u64_array();
        out->ioctl_ns[k] = u64_array();
        out->txn_ns[k] = u64_array();
    }
    s0 = kvm->slots.stats;
    inhibits0 = kvm->blocker.inhibits;
    kicks0 = kvm->blocker.kicks;
    for (guint i = 0; !*error && i < NR_PAIRS; i++) {
        for (int k = 0; k < 2; k++) {
            guint64 t0;

            memory_region_transaction__begin();
            if (k == 0)
                memory_region__add_subregion(root, SLOT_ADDR(i), slot, 0);
            else
                memory_region__del_subregion(root, slot);
            t0 = now_ns();
            memory_region_transaction__commit();
            t0 = now_ns() - t0;
            g_array_append_val(out->txn_ns[k], t0);
            g_array_append_val(out->commit_ns[k], hook_last.commit_ns);
            g_array_append_val(out->ioctl_ns[k], hook_last.ioctl_ns);
        }
    }
    out->stats_commit_ns = kvm->slots.stats.commit_ns - s0.commit_ns;
    out->stats_ioctl_ns = kvm->slots.stats.ioctl_ns - s0.ioctl_ns;
    out->commits = kvm->slots.stats.commits - s0.commits;
    out->ioctls = kvm->slots.stats.ioctls - s0.ioctls;
    out->inhibits = kvm->blocker.inhibits - inhibits0;
    out->kicks = kvm->blocker.kicks - kicks0;
    for (guint i = 0; i < vcpus->len; i++) {
        kvm_vcpu *vcpu = g_ptr_array_index(vcpus, i);

        out->passes += kvm_vcpu__stop(vcpu, guest_params__get(boot->ram, i), 5000).passes;
        kvm_vcpu__free(vcpu);
    }
    if (!*error && kvm->slots.first_error)
        g_propagate_error(error, g_error_copy(kvm->slots.first_error));
    kvm_accel__free(kvm);
    address_space__free(as);
    memory_region_transaction__begin();
    while (root->subregions->len)
        memory_region__del_subregion(root, g_ptr_array_index(root->subregions, 0));
    memory_region_transaction__commit();
    memory_region__free(touch);
    memory_region__free(boot);
    memory_region__free(slot);
    memory_region__free(root);
    return !*error;
}

/* ---- (c) inhibited commits under vm__run -------------------------------- */

typedef struct {
    vm_result r;
    GArray *stall_us, *over_ns;        /* over: stall minus its ioctls */
    guint64 commits, ioctls, ioctl_ns, inhibited;
} inhibited;

static gboolean
bench_inhibited(inhibited *out, GError **error)
{
    vm_config cfg = { .accel = VM_ACCEL_KVM, .atomic = true, .nr_vcpus = NR_VCPUS,
                      .ram_size = 256 * MiB, .churn_pause_us = 200 };
    g_autoptr(GArray) samples = g_array_new(FALSE, FALSE, sizeof(commit_sample));
    vm *v = vm__new(&cfg, error);
    memslots *ms;
    memslots_stats s0;
    gboolean ok;

    if (!v)
        return FALSE;
    ms = vm__memslots(v);
    ms->blocker->stall_us = out->stall_us = g_array_new(FALSE, FALSE, sizeof(gint64));
    hooks__install(ms);
    hook_samples = samples;
    s0 = ms->stats;
    ok = vm__run(v, 3.0, 2000, &out->r, error);
    hook_samples = NULL;
    ms->blocker->stall_us = NULL;
    out->commits = ms->stats.commits - s0.commits;
    out->ioctls = ms->stats.ioctls - s0.ioctls;
    out->ioctl_ns = ms->stats.ioctl_ns - s0.ioctl_ns;
    out->inhibited = ms->stats.inhibited_commits - s0.inhibited_commits;
    /* The n-th inhibited commit recorded the n-th stall. */
    out->over_ns = u64_array();
    for (guint i = 0, n = 0; i < samples->len && n < out->stall_us->len; i++) {
        commit_sample *c = &g_array_index(samples, commit_sample, i);
        gint64 over;

        if (!c->inhibited)
            continue;
        over = g_array_index(out->stall_us, gint64, n++) * 1000 - (gint64)c->ioctl_ns;
        over = MAX(over, 0);             /* stall_us has µs resolution */
        g_array_append_val(out->over_ns, over);
    }
    vm__free(v);
    return ok;
}

/* ---- (d) slot scaling --------------------------------------------------- */

typedef enum { SCALE_RAW, SCALE_LAYER, SCALE_API } scale_mode;
static const char *const scale_names[] = { "raw KVM ioctl", "memslot layer + KVM", "memory API" };

typedef struct {
    guint n;
    double total_ns, commit_ns, ioctl_ns;  /* per slot */
} scale;

/* Slot j: 4 KiB of one RAM block at offset 4j KiB, mapped at SLOT_BASE + 8j
 * KiB (apart, so that flatview_simplify cannot merge neighbours).  RAW: the
 * ioctl on a bare VM fd; LAYER: sections straight into the memslot
 * listener; API: an alias region each, SCALE_BATCH per transaction. */
static gboolean
bench_scale(guint n, scale_mode mode, scale *out, GError **error)
{
    g_autoptr(GPtrArray) aliases = g_ptr_array_new();
    kvm_accel *kvm = NULL;
    memory_region *root = NULL, *ram;
    address_space *as = NULL;
    memory_listener *l = NULL;
    memslots_stats s0 = { 0 };
    int kvm_fd = -1, vm_fd = -1;
    guint64 t0;

    if (mode == SCALE_RAW ? (vm_fd = raw_open_vm(&kvm_fd)) < 0 :
        !(kvm = kvm_accel__new(NULL, true, 0, error))) {
        if (mode == SCALE_RAW)
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "KVM_CREATE_VM: %s", g_strerror(errno));
        return FALSE;
    }
    ram = memory_region__new_ram("bench.ram", n * PAGE, 0, error);
    if (kvm)
        l = &kvm->slots.listener;
    if (mode == SCALE_API) {
        root = memory_region__new_container("system", G_MAXUINT64);
        as = address_space__new("bench", root);
        memory_listener__register(l, as);
        for (guint i = 0; i < n; i++)
            g_ptr_array_add(aliases, memory_region__new_alias("slot", ram, i * PAGE, PAGE));
    }
    if (kvm)
        s0 = kvm->slots.stats;
    t0 = now_ns();
    for (guint i = 0; i < n && !*error; i += SCALE_BATCH) {
        if (mode == SCALE_API)
            memory_region_transaction__begin();
        for (guint j = i; j < MIN(n, i + SCALE_BATCH); j++) {
            memory_region_section s = { .mr = ram, .offset_within_region = j * PAGE,
                                        .offset_within_address_space = SLOT_BASE + 2 * j * PAGE,
                                        .size = PAGE };
            struct kvm_userspace_memory_region r = {
                .slot = j, .guest_phys_addr = s.offset_within_address_space, .memory_size = PAGE,
                .userspace_addr = (guint64)(uintptr_t)ram->ram + j * PAGE,
            };

            if (mode == SCALE_API)
                memory_region__add_subregion(root, s.offset_within_address_space,
                                             g_ptr_array_index(aliases, j), 0);
            else if (mode == SCALE_LAYER)
                l->region_add(l, &s);
            else if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                            "KVM_SET_USER_MEMORY_REGION slot %u: %s", j, g_strerror(errno));
        }
        if (mode == SCALE_API)
            memory_region_transaction__commit();
        else if (mode == SCALE_LAYER)
            l->commit(l);
    }
    out->n = n;
    out->total_ns = (double)(now_ns() - t0) / n;
    out->commit_ns = kvm ? (double)(kvm->slots.stats.commit_ns - s0.commit_ns) / n : out->total_ns;
    out->ioctl_ns = kvm ? (double)(kvm->slots.stats.ioctl_ns - s0.ioctl_ns) / n : out->total_ns;
    if (kvm && kvm->slots.first_error && !*error)
        g_propagate_error(error, g_error_copy(kvm->slots.first_error));
    else if (kvm && !*error && memslots__used(&kvm->slots) != n)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%u slots registered, expected %u",
                    memslots__used(&kvm->slots), n);
    kvm_accel__free(kvm);
    if (vm_fd >= 0)
        close(vm_fd);
    if (kvm_fd >= 0)
        close(kvm_fd);
    address_space__free(as);
    /* No address space left: taking them out renders nothing. */
    memory_region_transaction__begin();
    for (guint i = aliases->len; i > 0; i--) {
        memory_region__del_subregion(root, g_ptr_array_index(aliases, i - 1));
        memory_region__free(g_ptr_array_index(aliases, i - 1));
    }
    memory_region_transaction__commit();
    memory_region__free(root);
    memory_region__free(ram);
    return !*error;
}

static gint
scale_cmp(gconstpointer a, gconstpointer b)
{
    double x = ((const scale *)a)->total_ns, y = ((const scale *)b)->total_ns;

    return x < y ? -1 : x > y;
}

/* 1,000 slots take milliseconds: the median of 3 runs, against noise. */
static gboolean
bench_scale_median(guint n, scale_mode mode, scale *out, GError **error)
{
    scale runs[3];
    guint nr = n <= 1000 ? 3 : 1;

    for (guint i = 0; i < nr; i++) {
        if (!bench_scale(n, mode, &runs[i], error))
            return FALSE;
    }
    qsort(runs, nr, sizeof(scale), (int (*)(const void *, const void *))scale_cmp);
    *out = runs[nr / 2];
    return TRUE;
}

/* ---- report ----------------------------------------------------------- */

static bool all_met = true;

static void
target(const char *what, bool met, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void
target(const char *what, bool met, const char *fmt, ...)
{
    g_autofree char *fig = NULL;
    va_list ap;

    va_start(ap, fmt);
    fig = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    printf("    %-52s %-6s (%s)\n", what, met ? "met" : "MISSED", fig);
    all_met &= met;
}

static void
row(const char *what, GArray *ns)
{
    printf("    %-36s %9.2f %9.2f %9.2f\n", what, pct_us(ns, 0.5, 1), mean_us(ns), pct_us(ns, 0.99, 1));
}

static void
fail(const char *what, GError *error)
{
    printf("    %s FAILED: %s\n", what, error ? error->message : "unknown error");
    all_met = false;
}

int
main(void)
{
    raw_cost raw = { 0 };
    nonoverlap idle = { 0 }, busy = { 0 };
    inhibited inh = { 0 };
    scale sc[3][2] = { { { 0 } } };      /* [scale_mode][1,000 / 32,000] */
    g_autoptr(GError) e_idle = NULL, e_busy = NULL, e_inh = NULL;
    double raw_add, raw_del, raw_ioctl;
    bool no_inhibit;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("dmaguard memslot benchmark: seed 003 atomic commits on /dev/kvm\n");
    printf("  %s, %ld CPUs\n", g_get_os_info(G_OS_INFO_KEY_PRETTY_NAME), sysconf(_SC_NPROCESSORS_ONLN));
    if (!bench_raw(&raw)) {
        fprintf(stderr, "bench-memslots: /dev/kvm is unusable, nothing measured\n");
        return 77;
    }
    raw_add = pct_us(raw.add_ns, 0.5, 1);
    raw_del = pct_us(raw.del_ns, 0.5, 1);
    raw_ioctl = (raw_add + raw_del) / 2;

    printf("\n(a)+(b) %d add + %d delete commits of a 2 MiB slot, one per transaction (µs):\n",
           NR_PAIRS, NR_PAIRS);
    bench_nonoverlap(0, &idle, &e_idle);
    bench_nonoverlap(NR_VCPUS, &busy, &e_busy);
    printf("    %-36s %9s %9s %9s\n", "", "median", "mean", "p99");
    row("raw ioctl, bare VM fd: add", raw.add_ns);
    row("raw ioctl, bare VM fd: delete", raw.del_ns);
    for (int v = 0; v < 2; v++) {
        nonoverlap *p = v ? &busy : &idle;

        printf("  %s:\n", v ? "2 vCPUs running the guest program" : "idle VM, no vCPU");
        if (v ? !!e_busy : !!e_idle) {
            fail("non-overlapping commits", v ? e_busy : e_idle);
            continue;
        }
        row("commit (memslot layer): add", p->commit_ns[0]);
        row("  of which in the ioctl", p->ioctl_ns[0]);
        row("commit (memslot layer): delete", p->commit_ns[1]);
        row("  of which in the ioctl", p->ioctl_ns[1]);
        row("transaction commit (render+listener): add", p->txn_ns[0]);
        row("transaction commit (render+listener): del", p->txn_ns[1]);
        printf("    layer's own sums: %" G_GUINT64_FORMAT " commits, %.2f µs/commit, "
               "%.2f µs in ioctls (%.0f%%), %.2f ioctls/commit\n", p->commits,
               p->stats_commit_ns / 1e3 / MAX(p->commits, 1), p->stats_ioctl_ns / 1e3 / MAX(p->commits, 1),
               100.0 * p->stats_ioctl_ns / MAX(p->stats_commit_ns, 1), (double)p->ioctls / MAX(p->commits, 1));
        printf("    inhibits %" G_GUINT64_FORMAT ", kicks %" G_GUINT64_FORMAT
               ", guest passes %" G_GUINT64_FORMAT "\n", p->inhibits, p->kicks, p->passes);
    }

    printf("\n(c) vm__run 3 s: 2 vCPUs, 256 MiB, churn (hole punch/remove, resize) every 200 µs:\n");
    if (!bench_inhibited(&inh, &e_inh)) {
        fail("vm__run", e_inh);
    } else {
        double per_commit = (double)inh.ioctls / MAX(inh.commits, 1);

        printf("    %" G_GUINT64_FORMAT " commits, %" G_GUINT64_FORMAT " inhibited, %" G_GUINT64_FORMAT
               " kicks, %.2f ioctls/commit, %.2f µs per ioctl in context (raw %.2f)\n",
               inh.commits, inh.inhibited, inh.r.kicks, per_commit,
               inh.ioctl_ns / 1e3 / MAX(inh.ioctls, 1), raw_ioctl);
        printf("    guest: %" G_GUINT64_FORMAT " passes, %" G_GUINT64_FORMAT " spurious faults, checksum %s\n",
               inh.r.passes, inh.r.spurious_faults, inh.r.checksum_ok ? "ok" : "BAD");
        printf("    %-36s %9s %9s %9s\n", "", "median", "mean", "p99");
        printf("    %-36s %9.0f %9.1f %9.0f\n", "vCPU stall per inhibited commit",
               pct_us(inh.stall_us, 0.5, 1000), mean_us(inh.stall_us) * 1000, pct_us(inh.stall_us, 0.99, 1000));
        row("  stall beyond that commit's ioctls", inh.over_ns);
    }

    printf("\n(d) registering slots of 4 KiB, %d per transaction (ns per slot; 1,000: median of 3 runs):\n",
           SCALE_BATCH);
    printf("    %-32s %9s %10s %9s %9s\n", "", "total", "memory API", "memslots", "ioctl");
    for (int m = SCALE_RAW; m <= SCALE_API; m++) {
        for (int k = 0; k < 2; k++) {
            g_autoptr(GError) e = NULL;
            g_autofree char *what = g_strdup_printf("%s, %u", scale_names[m], k ? 32000 : 1000);
            scale *c = &sc[m][k];

            if (!bench_scale_median(k ? 32000 : 1000, m, c, &e)) {
                fail(what, e);
                continue;
            }
            printf("    %-32s %9.0f %10.0f %9.0f %9.0f\n", what, c->total_ns,
                   c->total_ns - c->commit_ns, c->commit_ns - c->ioctl_ns, c->ioctl_ns);
        }
    }

    printf("\nresults:\n");
    if (!e_idle)
        target("non-overlapping commit <= 1.2x raw ioctl: add", pct_us(idle.commit_ns[0], 0.5, 1) <= TARGET_COMMIT_RATIO * raw_add,
               "median %.2f / %.2f µs = %.2fx", pct_us(idle.commit_ns[0], 0.5, 1), raw_add,
               pct_us(idle.commit_ns[0], 0.5, 1) / raw_add);
    if (!e_idle)
        target("non-overlapping commit <= 1.2x raw ioctl: delete", pct_us(idle.commit_ns[1], 0.5, 1) <= TARGET_COMMIT_RATIO * raw_del,
               "median %.2f / %.2f µs = %.2fx", pct_us(idle.commit_ns[1], 0.5, 1), raw_del,
               pct_us(idle.commit_ns[1], 0.5, 1) / raw_del);
    no_inhibit = !e_idle && !e_busy && !idle.inhibits && !busy.inhibits && !busy.kicks && busy.passes;
    target("no overlap, 2 vCPUs running: 0 inhibits, 0 kicks", no_inhibit,
           "%" G_GUINT64_FORMAT " inhibits, %" G_GUINT64_FORMAT " kicks over %" G_GUINT64_FORMAT " commits",
           busy.inhibits + idle.inhibits, busy.kicks, busy.commits + idle.commits);
    if (!e_inh) {
        double per_commit = (double)inh.ioctls / MAX(inh.commits, 1);
        double limit = raw_ioctl * per_commit + TARGET_STALL_SLACK_US;
        double p99 = pct_us(inh.stall_us, 0.99, 1000);

        target("p99 stall <= raw ioctls per commit + 100 µs", p99 <= limit,
               "%.0f µs, limit %.2f x %.2f + 100 = %.0f µs", p99, raw_ioctl, per_commit, limit);
    }
    if (sc[SCALE_RAW][0].n && sc[SCALE_RAW][1].n)
        printf("    %-52s %-6s (%.0f / %.0f ns = %.2fx: %s)\n", "per slot, 32,000 vs 1,000, raw KVM ioctl (baseline)", "",
               sc[SCALE_RAW][1].total_ns, sc[SCALE_RAW][0].total_ns,
               sc[SCALE_RAW][1].total_ns / sc[SCALE_RAW][0].total_ns,
               sc[SCALE_RAW][1].total_ns <= TARGET_LINEAR * sc[SCALE_RAW][0].total_ns ? "linear" : "NOT linear");
    for (int m = SCALE_LAYER; m <= SCALE_API + 1; m++) {
        /* m == SCALE_API + 1: the memslot layer's own cost, KVM taken out */
        scale *a = sc[MIN(m, SCALE_API)], *b = m > SCALE_API ? sc[SCALE_LAYER] : NULL;
        double x0 = b ? b[0].commit_ns - b[0].ioctl_ns : a[0].total_ns;
        double x1 = b ? b[1].commit_ns - b[1].ioctl_ns : a[1].total_ns;
        g_autofree char *what = g_strdup_printf("per slot, 32,000 vs 1,000, %s: linear",
                                                b ? "memslot layer alone" : scale_names[m]);

        if (a[0].n && a[1].n && (!b || (b[0].n && b[1].n)))
            target(what, x1 <= TARGET_LINEAR * x0, "%.0f / %.0f ns = %.2fx: %s", x1, x0, x1 / x0,
                   x1 <= TARGET_LINEAR * x0 ? "linear" : "NOT linear");
    }
    printf(all_met ? "ALL TARGETS MET\n" : "TARGET MISSED\n");
    for (int k = 0; k < 2; k++) {
        GArray **a[] = { &idle.commit_ns[k], &idle.ioctl_ns[k], &idle.txn_ns[k],
                         &busy.commit_ns[k], &busy.ioctl_ns[k], &busy.txn_ns[k] };

        for (guint i = 0; i < G_N_ELEMENTS(a); i++)
            g_clear_pointer(a[i], g_array_unref);
    }
    g_clear_pointer(&raw.add_ns, g_array_unref);
    g_clear_pointer(&raw.del_ns, g_array_unref);
    g_clear_pointer(&inh.stall_us, g_array_unref);
    g_clear_pointer(&inh.over_ns, g_array_unref);
    return 0;
}

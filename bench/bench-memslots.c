/*
 * bench-memslots.c: the cost of seed 003's atomic memslot commits on KVM.
 *
 *   (a) baseline: KVM_SET_USER_MEMORY_REGION called directly on a bare VM
 *       fd, adding and deleting a 2 MiB slot, no memory API;
 *   (b) non-overlapping commits (one add, or one delete, per transaction)
 *       through the memory API, on an idle VM and with 2 vCPUs running the
 *       guest program: time in the ioctl against the commit time, and the
 *       inhibits and kicks (none: no overlap, no inhibit);
 *   (c) inhibited commits: vm__run's churn with 2 vCPUs, the vCPU stall of
 *       each inhibited commit against the raw ioctl time;
 *   (d) the per-slot cost of registering 1,000 and then 32,000 slots.
 *
 * A benchmark that prints figures, not a test: a missed target prints
 * "TARGET MISSED" and exits 0.  It exits 77 when /dev/kvm is unusable.
 *
 * The memslot layer keeps microsecond sums (memslots_stats); for medians
 * and percentiles per commit, the bench chains nanosecond timers in front
 * of the listener's commit and the backend's set_region.
 */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "accel/kvm.h"
#include "accel/kvm_vcpu.h"
#include "memory/memory.h"
#include "memory/memslots.h"
#include "vm.h"

#define MiB (1024ULL * 1024)
#define GiB (1024ULL * MiB)
#define PAGE 4096ULL
#define NR_PAIRS 2000                    /* (a), (b): add + delete pairs */
#define SLOT_SIZE (2 * MiB)
#define SLOT_BASE (4 * GiB)              /* above the TSS and all guest RAM */
#define SLOT_ADDR(i) (SLOT_BASE + ((i) % 16) * 4 * MiB)
#define NR_VCPUS 2
#define TOUCH_BASE (16 * MiB)            /* (b): RAM the guest program walks */
#define TOUCH_SIZE (8 * MiB)
#define SCALE_BATCH 1000                 /* (d): slots per transaction */
#define TARGET_COMMIT_RATIO 1.2
#define TARGET_STALL_SLACK_US 100.0
#define TARGET_LINEAR 2.0                /* per-slot cost, 32,000 vs 1,000 */

typedef struct {
    guint64 commit_ns;                   /* (a): the ioctl; (c): the vCPU stall */
    guint64 ioctl_ns;                    /* inside set_region */
    guint64 extra_ns;                    /* (b): transaction commit; (c): stall - ioctls */
    bool inhibited;
} sample;

#define F(field) G_STRUCT_OFFSET(sample, field)

static guint64
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (guint64)ts.tv_sec * G_GUINT64_CONSTANT(1000000000) + ts.tv_nsec;
}

static gint
u64_cmp(gconstpointer a, gconstpointer b)
{
    guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

    return x < y ? -1 : x > y;
}

/* Percentile @p of one field of a sample array, in µs; p < 0: the mean. */
static double
stat_us(GArray *a, goffset field, double p)
{
    g_autoptr(GArray) v = g_array_new(FALSE, FALSE, sizeof(guint64));
    double sum = 0;

    for (guint i = 0; a && i < a->len; i++) {
        guint64 x = G_STRUCT_MEMBER(guint64, &g_array_index(a, sample, i), field);

        g_array_append_val(v, x);
        sum += x;
    }
    if (!v->len)
        return 0;
    if (p < 0)
        return sum / v->len / 1e3;
    g_array_sort(v, u64_cmp);
    return g_array_index(v, guint64, MIN((guint)(p * v->len), v->len - 1)) / 1e3;
}

/* ---- nanosecond hooks on a memslot layer ------------------------------ */

static void (*real_commit)(memory_listener *l);
static int (*real_set_region)(void *opaque, const memslot *s, GError **error);
static guint64 hook_ioctl_ns;
static sample hook_last;                 /* the last commit that did ioctls */
static GArray *hook_samples;             /* every such commit, when set */

static int
hook_set_region(void *opaque, const memslot *s, GError **error)
{
    guint64 t0 = now_ns();
    int ret = real_set_region(opaque, s, error);

    hook_ioctl_ns += now_ns() - t0;
    return ret;
}

static void
hook_commit(memory_listener *l)
{
    memslots *ms = (memslots *)l;        /* the listener is its first member */
    guint64 inhibited = ms->stats.inhibited_commits, ioctls = ms->stats.ioctls;
    guint64 t0 = now_ns();

    hook_ioctl_ns = 0;
    real_commit(l);
    if (ms->stats.ioctls == ioctls)
        return;
    hook_last = (sample){ now_ns() - t0, hook_ioctl_ns, 0,
                          ms->stats.inhibited_commits != inhibited };
    if (hook_samples)
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

/* ---- (a), (b): raw ioctls, non-overlapping commits --------------------- */

typedef struct {
    GArray *add, *del;                   /* sample */
    memslots_stats s;                    /* delta over the loop */
    guint64 inhibits, kicks, passes;
} pairs;

static void
pairs_clear(pairs *p)
{
    g_clear_pointer(&p->add, g_array_unref);
    g_clear_pointer(&p->del, g_array_unref);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(pairs, pairs_clear)

static int
raw_open_vm(int *kvm_fd)
{
    if ((*kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0)
        return -1;
    return ioctl(*kvm_fd, KVM_CREATE_VM, 0);
}

static int
raw_set(int vm_fd, guint slot, guint64 gpa, guint64 size, void *hva)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot, .guest_phys_addr = gpa, .memory_size = size,
        .userspace_addr = (guint64)(uintptr_t)hva,
    };

    return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

static gboolean
bench_raw(pairs *out)
{
    int kvm_fd, vm_fd = raw_open_vm(&kvm_fd);
    void *hva = mmap(NULL, SLOT_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    out->add = g_array_new(FALSE, FALSE, sizeof(sample));
    out->del = g_array_new(FALSE, FALSE, sizeof(sample));
    for (guint i = 0; vm_fd >= 0 && i < NR_PAIRS; i++) {
        guint64 t0 = now_ns(), t1, t2;
        int ret = raw_set(vm_fd, 0, SLOT_ADDR(i), SLOT_SIZE, hva);

        t1 = now_ns();
        if (ret < 0 || raw_set(vm_fd, 0, SLOT_ADDR(i), 0, hva) < 0)
            break;
        t2 = now_ns();
        g_array_append_vals(out->add, &(sample){ t1 - t0, t1 - t0, t1 - t0, false }, 1);
        g_array_append_vals(out->del, &(sample){ t2 - t1, t2 - t1, t2 - t1, false }, 1);
    }
    if (out->add->len < NR_PAIRS)
        fprintf(stderr, "bench-memslots: /dev/kvm is unusable: %s\n", g_strerror(errno));
    munmap(hva, SLOT_SIZE);
    if (vm_fd >= 0)
        close(vm_fd);
    if (kvm_fd >= 0)
        close(kvm_fd);
    return out->add->len == NR_PAIRS;
}

static gboolean
bench_nonoverlap(unsigned nr_vcpus, pairs *out, GError **error)
{
    g_autoptr(GPtrArray) vcpus = g_ptr_array_new();
    kvm_accel *kvm = kvm_accel__new(NULL, true, 0, error);
    memory_region *root, *slot, *boot = NULL, *touch = NULL;
    address_space *as;
    memslots_stats s0;

    if (!kvm)
        return FALSE;
    root = memory_region__new_container("system", G_MAXUINT64);
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
    for (unsigned i = 0; i < nr_vcpus && !*error; i++) {
        kvm_vcpu *vcpu;

        guest_params__init(boot->ram, i, nr_vcpus, TOUCH_BASE, TOUCH_BASE + TOUCH_SIZE, 0, 0);
        if ((vcpu = kvm_vcpu__create(kvm->vm_fd, i, &kvm->blocker, NULL, NULL, error))) {
            g_ptr_array_add(vcpus, vcpu);
            kvm_vcpu__start(vcpu, error);
        }
    }
    g_usleep(20000);                     /* let the vCPUs enter the guest */
    out->add = g_array_new(FALSE, FALSE, sizeof(sample));
    out->del = g_array_new(FALSE, FALSE, sizeof(sample));
    s0 = kvm->slots.stats;
    out->inhibits = kvm->blocker.inhibits;
    out->kicks = kvm->blocker.kicks;
    for (guint i = 0; !*error && i < 2 * NR_PAIRS; i++) {
        guint64 t0;

        memory_region_transaction__begin();
        if (i % 2)
            memory_region__del_subregion(root, slot);
        else
            memory_region__add_subregion(root, SLOT_ADDR(i / 2), slot, 0);
        t0 = now_ns();
        memory_region_transaction__commit();
        hook_last.extra_ns = now_ns() - t0;
        g_array_append_val(i % 2 ? out->del : out->add, hook_last);
    }
    out->s.commits = kvm->slots.stats.commits - s0.commits;
    out->s.ioctls = kvm->slots.stats.ioctls - s0.ioctls;
    out->s.commit_ns = kvm->slots.stats.commit_ns - s0.commit_ns;
    out->s.ioctl_ns = kvm->slots.stats.ioctl_ns - s0.ioctl_ns;
    out->inhibits = kvm->blocker.inhibits - out->inhibits;
    out->kicks = kvm->blocker.kicks - out->kicks;
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

/* ---- (c) inhibited commits under vm__run ------------------------------- */

static gboolean
bench_inhibited(vm_result *r, GArray *stalls, memslots_stats *s, GError **error)
{
    vm_config cfg = { .accel = VM_ACCEL_KVM, .atomic = true, .nr_vcpus = NR_VCPUS,
                      .ram_size = 256 * MiB, .churn_pause_us = 200 };
    g_autoptr(GArray) commits = g_array_new(FALSE, FALSE, sizeof(sample));
    g_autoptr(GArray) stall_us = g_array_new(FALSE, FALSE, sizeof(gint64));
    vm *v = vm__new(&cfg, error);
    memslots *ms;
    gboolean ok;

    if (!v)
        return FALSE;
    ms = vm__memslots(v);
    ms->blocker->stall_us = stall_us;
    hooks__install(ms);
    hook_samples = commits;
    *s = ms->stats;
    ok = vm__run(v, 3.0, 2000, r, error);
    hook_samples = NULL;
    ms->blocker->stall_us = NULL;
    s->commits = ms->stats.commits - s->commits;
    s->ioctls = ms->stats.ioctls - s->ioctls;
    s->ioctl_ns = ms->stats.ioctl_ns - s->ioctl_ns;
    s->inhibited_commits = ms->stats.inhibited_commits - s->inhibited_commits;
    /* The n-th inhibited commit recorded the n-th stall (µs resolution). */
    for (guint i = 0, n = 0; i < commits->len && n < stall_us->len; i++) {
        sample c = g_array_index(commits, sample, i);

        if (!c.inhibited)
            continue;
        c.commit_ns = g_array_index(stall_us, gint64, n++) * 1000;
        c.extra_ns = c.commit_ns > c.ioctl_ns ? c.commit_ns - c.ioctl_ns : 0;
        g_array_append_val(stalls, c);
    }
    vm__free(v);
    return ok;
}

/* ---- (d) slot scaling ---------------------------------------------------- */

typedef enum { SCALE_RAW, SCALE_NOOP, SCALE_LAYER, SCALE_API } scale_mode;
static const char *const scale_names[] = {
    "raw KVM ioctl", "memslot layer, no-op backend", "memslot layer + KVM", "memory API + KVM",
};

typedef struct {
    guint n;
    double total_ns, commit_ns, ioctl_ns;  /* per slot */
} scale;

static int
noop_set_region(void *opaque, const memslot *s, GError **error)
{
    return 0;
}

/* Slot j: 4 KiB at offset 4j KiB of one RAM block, mapped at SLOT_BASE + 8j
 * KiB (apart: flatview_simplify would merge neighbours).  RAW: the ioctl on
 * a bare VM fd; NOOP: sections straight into a memslot listener whose
 * backend does nothing (the layer's own cost); LAYER: the same on KVM;
 * API: one alias region per slot.  SCALE_BATCH slots per commit. */
static gboolean
bench_scale(guint n, scale_mode mode, scale *out, GError **error)
{
    g_autoptr(GPtrArray) aliases = g_ptr_array_new();
    memslot_backend noop = { "noop", noop_set_region, NULL, NULL };
    kvm_accel *kvm = NULL;
    memslots noop_ms = { 0 }, *ms = &noop_ms;
    memory_region *root = NULL, *ram = NULL;
    address_space *as = NULL;
    memslots_stats s0;
    int kvm_fd = -1, vm_fd = -1;
    guint64 t0;

    if (mode == SCALE_NOOP)
        memslots__init(&noop_ms, &noop, NULL, 32764, 0, true);
    else if (mode == SCALE_RAW && (vm_fd = raw_open_vm(&kvm_fd)) < 0)
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "KVM_CREATE_VM: %s", g_strerror(errno));
    else if (mode >= SCALE_LAYER && (kvm = kvm_accel__new(NULL, true, 0, error)))
        ms = &kvm->slots;
    if (*error || !(ram = memory_region__new_ram("bench.ram", n * PAGE, 0, error)))
        goto out;
    if (mode == SCALE_API) {
        root = memory_region__new_container("system", G_MAXUINT64);
        as = address_space__new("bench", root);
        memory_listener__register(&ms->listener, as);
        for (guint i = 0; i < n; i++)
            g_ptr_array_add(aliases, memory_region__new_alias("slot", ram, i * PAGE, PAGE));
    }
    s0 = ms->stats;
    t0 = now_ns();
    for (guint i = 0; i < n && !*error; i += SCALE_BATCH) {
        memory_region_transaction__begin();
        for (guint j = i; j < MIN(n, i + SCALE_BATCH); j++) {
            memory_region_section s = { .mr = ram, .offset_within_region = j * PAGE,
                                        .offset_within_address_space = SLOT_BASE + 2 * j * PAGE,
                                        .size = PAGE };

            if (mode == SCALE_API)
                memory_region__add_subregion(root, s.offset_within_address_space,
                                             g_ptr_array_index(aliases, j), 0);
            else if (mode != SCALE_RAW)
                ms->listener.region_add(&ms->listener, &s);
            else if (raw_set(vm_fd, j, s.offset_within_address_space, PAGE, (guint8 *)ram->ram + j * PAGE) < 0)
                g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                            "KVM_SET_USER_MEMORY_REGION slot %u: %s", j, g_strerror(errno));
        }
        memory_region_transaction__commit();
        if (mode == SCALE_NOOP || mode == SCALE_LAYER)
            ms->listener.commit(&ms->listener);
    }
    out->n = n;
    out->total_ns = (double)(now_ns() - t0) / n;
    out->commit_ns = mode == SCALE_RAW ? out->total_ns : (double)(ms->stats.commit_ns - s0.commit_ns) / n;
    out->ioctl_ns = mode == SCALE_RAW ? out->total_ns : (double)(ms->stats.ioctl_ns - s0.ioctl_ns) / n;
    if (mode != SCALE_RAW && !*error && ms->first_error)
        g_propagate_error(error, g_error_copy(ms->first_error));
    else if (mode != SCALE_RAW && !*error && memslots__used(ms) != n)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%u slots in use, expected %u",
                    memslots__used(ms), n);
out:
    if (mode == SCALE_NOOP)
        memslots__destroy(&noop_ms);
    kvm_accel__free(kvm);
    if (vm_fd >= 0)
        close(vm_fd);
    if (kvm_fd >= 0)
        close(kvm_fd);
    address_space__free(as);
    memory_region_transaction__begin();  /* no address space left: no render */
    for (guint i = aliases->len; i > 0; i--) {
        memory_region__del_subregion(root, g_ptr_array_index(aliases, i - 1));
        memory_region__free(g_ptr_array_index(aliases, i - 1));
    }
    memory_region_transaction__commit();
    memory_region__free(root);
    memory_region__free(ram);
    return !*error;
}

/* ---- report --------------------------------------------------------------- */

static bool all_met = true;

static void G_GNUC_PRINTF(3, 4)
target(const char *what, bool met, const char *fmt, ...)
{
    g_autofree char *fig = NULL;
    va_list ap;

    va_start(ap, fmt);
    fig = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    printf("    %-54s %-6s (%s)\n", what, met ? "met" : "MISSED", fig);
    all_met &= met;
}

static void
row(const char *what, GArray *a, goffset field)
{
    printf("    %-40s %8.2f %8.2f %8.2f %8.2f\n", what, stat_us(a, field, 0.5), stat_us(a, field, -1),
           stat_us(a, field, 0.9), stat_us(a, field, 0.99));
}

static void
fail(const char *what, const GError *error)
{
    printf("    %s FAILED: %s\n", what, error ? error->message : "unknown error");
    all_met = false;
}

int
main(void)
{
    g_auto(pairs) raw = { 0 }, idle = { 0 }, busy = { 0 };
    g_autoptr(GArray) stalls = g_array_new(FALSE, FALSE, sizeof(sample));
    g_autoptr(GError) e_idle = NULL, e_busy = NULL, e_inh = NULL;
    scale sc[4][2] = { { { 0 } } };      /* [scale_mode][1,000 / 32,000] */
    memslots_stats is = { 0 };
    vm_result r = { 0 };
    double raw_add, raw_del, raw_ioctl, per_commit = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("dmaguard memslot benchmark: seed 003 atomic commits on /dev/kvm\n");
    printf("  %s, %ld CPUs\n", g_get_os_info(G_OS_INFO_KEY_PRETTY_NAME), sysconf(_SC_NPROCESSORS_ONLN));
    if (!bench_raw(&raw))
        return 77;
    raw_add = stat_us(raw.add, F(commit_ns), 0.5);
    raw_del = stat_us(raw.del, F(commit_ns), 0.5);
    raw_ioctl = (raw_add + raw_del) / 2;
    bench_nonoverlap(0, &idle, &e_idle);
    bench_nonoverlap(NR_VCPUS, &busy, &e_busy);

    printf("\n(a) (b) %d adds and %d deletes of a 2 MiB slot, one per commit (µs):\n", NR_PAIRS, NR_PAIRS);
    printf("    %-40s %8s %8s %8s %8s\n", "", "median", "mean", "p90", "p99");
    row("raw ioctl on a bare VM fd: add", raw.add, F(commit_ns));
    row("raw ioctl on a bare VM fd: delete", raw.del, F(commit_ns));
    for (int v = 0; v < 2; v++) {
        pairs *p = v ? &busy : &idle;

        printf("  %s:\n", v ? "2 vCPUs running the guest program" : "idle VM, no vCPU");
        if (v ? e_busy : e_idle) {
            fail("non-overlapping commits", v ? e_busy : e_idle);
            continue;
        }
        row("memslot commit: add", p->add, F(commit_ns));
        row("  of which in the ioctl", p->add, F(ioctl_ns));
        row("memslot commit: delete", p->del, F(commit_ns));
        row("  of which in the ioctl", p->del, F(ioctl_ns));
        row("transaction commit (render, listeners): add", p->add, F(extra_ns));
        row("transaction commit (render, listeners): del", p->del, F(extra_ns));
        printf("    memslots_stats: %" G_GUINT64_FORMAT " commits, %.2f ioctls and %.2f µs each, %.0f%% in ioctls; "
               "%" G_GUINT64_FORMAT " inhibits, %" G_GUINT64_FORMAT " kicks, %" G_GUINT64_FORMAT " guest passes\n",
               p->s.commits, (double)p->s.ioctls / MAX(p->s.commits, 1), p->s.commit_ns / 1e3 / MAX(p->s.commits, 1),
               100.0 * p->s.ioctl_ns / MAX(p->s.commit_ns, 1), p->inhibits, p->kicks, p->passes);
    }

    printf("\n(c) vm__run, 3 s: 2 vCPUs, 256 MiB, the churn (punch a hole, remove it, resize) every 200 µs:\n");
    if (!bench_inhibited(&r, stalls, &is, &e_inh)) {
        fail("vm__run", e_inh);
    } else {
        per_commit = (double)is.ioctls / MAX(is.commits, 1);
        printf("    %" G_GUINT64_FORMAT " commits, %" G_GUINT64_FORMAT " inhibited, %" G_GUINT64_FORMAT
               " kicks, %.2f ioctls per commit, %.2f µs per ioctl (raw, bare VM: %.2f)\n",
               is.commits, is.inhibited_commits, r.kicks, per_commit, is.ioctl_ns / 1e3 / MAX(is.ioctls, 1), raw_ioctl);
        printf("    guest: %" G_GUINT64_FORMAT " passes, %" G_GUINT64_FORMAT " spurious faults, checksum %s\n",
               r.passes, r.spurious_faults, r.checksum_ok ? "ok" : "BAD");
        printf("    %-40s %8s %8s %8s %8s\n", "", "median", "mean", "p90", "p99");
        row("vCPU stall per inhibited commit", stalls, F(commit_ns));
        row("  of which that commit's ioctls", stalls, F(ioctl_ns));
        row("  stall beyond them", stalls, F(extra_ns));
    }

    printf("\n(d) registering 4 KiB slots, %d per commit (ns per slot; 1,000: best of 5 runs):\n", SCALE_BATCH);
    printf("    %-36s %9s %10s %9s %9s\n", "", "total", "memory API", "memslots", "ioctl");
    for (int m = SCALE_RAW; m <= SCALE_API; m++) {
        for (int k = 0; k < 2; k++) {
            g_autoptr(GError) e = NULL;
            scale *c = &sc[m][k], run;

            for (int i = 0; i < (k ? 1 : 5) && bench_scale(k ? 32000 : 1000, m, &run, &e); i++) {
                if (!c->n || run.total_ns < c->total_ns)
                    *c = run;
            }
            if (e)
                fail(scale_names[m], e);
            else
                printf("    %-28s %7s %9.0f %10.0f %9.0f %9.0f\n", scale_names[m], k ? "32,000" : "1,000",
                       c->total_ns, c->total_ns - c->commit_ns, c->commit_ns - c->ioctl_ns, c->ioctl_ns);
        }
    }

    printf("\nresults:\n");
    for (int k = 0; k < 2 && !e_idle; k++) {
        double c = stat_us(k ? idle.del : idle.add, F(commit_ns), 0.5), base = k ? raw_del : raw_add;

        target(k ? "non-overlapping commit <= 1.2x raw ioctl: delete" : "non-overlapping commit <= 1.2x raw ioctl: add",
               c <= TARGET_COMMIT_RATIO * base, "median %.2f / %.2f µs = %.2fx", c, base, c / base);
    }
    target("no overlap, 2 vCPUs running: 0 inhibits, 0 kicks",
           !e_idle && !e_busy && !idle.inhibits && !busy.inhibits && !busy.kicks && busy.passes,
           "%" G_GUINT64_FORMAT " inhibits, %" G_GUINT64_FORMAT " kicks in %" G_GUINT64_FORMAT " commits",
           idle.inhibits + busy.inhibits, busy.kicks, idle.s.commits + busy.s.commits);
    if (!e_inh) {
        double p99 = stat_us(stalls, F(commit_ns), 0.99), over = stat_us(stalls, F(extra_ns), 0.99);
        double limit = raw_ioctl * per_commit + TARGET_STALL_SLACK_US;

        target("p99 stall <= raw ioctl x ioctls/commit + 100 µs", p99 <= limit,
               "%.0f µs; %.2f x %.2f + 100 = %.0f µs", p99, raw_ioctl, per_commit, limit);
        target("p99 stall <= that commit's own ioctls + 100 µs", over <= TARGET_STALL_SLACK_US,
               "p99 of stall - ioctls %.0f µs", over);
    }
    for (int m = SCALE_RAW; m <= SCALE_API; m++) {
        double x0 = sc[m][0].total_ns, x1 = sc[m][1].total_ns;
        g_autofree char *what = g_strdup_printf("per-slot cost linear to 32,000: %s", scale_names[m]);

        if (m == SCALE_RAW)              /* the baseline: KVM's own */
            printf("    %-54s %-6s (%.0f / %.0f ns = %.2fx)\n", what, "", x1, x0, x1 / MAX(x0, 1));
        else if (sc[m][0].n && sc[m][1].n)
            target(what, x1 <= TARGET_LINEAR * x0, "%.0f / %.0f ns = %.2fx: %s%s", x1, x0, x1 / x0,
                   x1 <= TARGET_LINEAR * x0 ? "linear" : "NOT linear",
                   m >= SCALE_LAYER ? "; KVM alone above" : "");
    }
    printf(all_met ? "ALL TARGETS MET\n" : "TARGET MISSED\n");
    return 0;
}

/*
 * test-memory.c: the memory API (flat views, transactions, listener
 * order) and the memslot layer with seed 003's atomic commit, on the
 * software accelerator, so it runs everywhere.
 */
#include <glib.h>
#include <string.h>

#include "memory/memory.h"
#include "memory/memslots.h"
#include "accel/soft_accel.h"

#define MiB (1024ULL * 1024)

static flat_view *
view_of(address_space *as)
{
    return address_space__get_view(as);
}

static memory_region_section *
range(flat_view *v, guint i)
{
    return &g_array_index(v->ranges, memory_region_section, i);
}

/* render_memory_region(): a higher-priority MMIO hole splits RAM; an
 * alias shows its target at another address; removing the hole merges
 * RAM back into one range (flatview_simplify). */
static void
test_flat_view_render(void)
{
    memory_region *root = memory_region__new_container("system", G_MAXUINT64);
    memory_region *ram = memory_region__new_ram("ram", 64 * MiB, 0, NULL);
    memory_region *hole = memory_region__new_mmio("hole", 4 * MiB);
    memory_region *alias = memory_region__new_alias("ram-alias", ram, 8 * MiB, 2 * MiB);
    address_space *as = address_space__new("memory", root);
    flat_view *v;

    memory_region__add_subregion(root, 0, ram, 0);
    memory_region__add_subregion(root, 32 * MiB, hole, 1);
    memory_region__add_subregion(root, 128 * MiB, alias, 0);
    v = view_of(as);
    g_assert_cmpuint(v->ranges->len, ==, 4);
    g_assert_true(range(v, 0)->mr == ram && range(v, 0)->size == 32 * MiB);
    g_assert_true(range(v, 1)->mr == hole && range(v, 1)->offset_within_address_space == 32 * MiB);
    g_assert_true(range(v, 2)->mr == ram && range(v, 2)->offset_within_region == 36 * MiB);
    g_assert_true(range(v, 3)->mr == ram && range(v, 3)->offset_within_address_space == 128 * MiB &&
                  range(v, 3)->offset_within_region == 8 * MiB && range(v, 3)->size == 2 * MiB);
    flat_view__unref(v);

    memory_region__del_subregion(root, hole);
    memory_region__set_enabled(alias, false);
    v = view_of(as);
    g_assert_cmpuint(v->ranges->len, ==, 1);
    g_assert_cmpuint(range(v, 0)->size, ==, 64 * MiB);
    flat_view__unref(v);

    address_space__free(as);
    memory_region__del_subregion(root, ram);
    memory_region__del_subregion(root, alias);
    memory_region__free(alias);
    memory_region__free(hole);
    memory_region__free(ram);
    memory_region__free(root);
}

typedef struct {
    memory_listener l;
    const char *tag;
    GString *log;
} rec_listener;

static void rec_begin(memory_listener *l) { g_string_append_printf(((rec_listener *)l)->log, "%s:begin ", ((rec_listener *)l)->tag); }
static void rec_commit(memory_listener *l) { g_string_append_printf(((rec_listener *)l)->log, "%s:commit ", ((rec_listener *)l)->tag); }

static void
rec_add(memory_listener *l, const memory_region_section *s)
{
    g_string_append_printf(((rec_listener *)l)->log, "%s:add(%s@%" G_GUINT64_FORMAT "M) ",
                           ((rec_listener *)l)->tag, s->mr->name, (guint64)(s->offset_within_address_space / MiB));
}

static void
rec_del(memory_listener *l, const memory_region_section *s)
{
    g_string_append_printf(((rec_listener *)l)->log, "%s:del(%s@%" G_GUINT64_FORMAT "M) ",
                           ((rec_listener *)l)->tag, s->mr->name, (guint64)(s->offset_within_address_space / MiB));
}

static void
rec_log(memory_listener *l, const memory_region_section *s)
{
    g_string_append_printf(((rec_listener *)l)->log, "%s:log ", ((rec_listener *)l)->tag);
}

/* Adds go in listener order, deletes in reverse; one nested transaction
 * is one update. */
static void
test_listener_order_and_transactions(void)
{
    g_autoptr(GString) log = g_string_new(NULL);
    memory_region *root = memory_region__new_container("system", G_MAXUINT64);
    memory_region *a = memory_region__new_ram("a", 4 * MiB, 0, NULL);
    memory_region *b = memory_region__new_ram("b", 4 * MiB, 0, NULL);
    address_space *as = address_space__new("memory", root);
    rec_listener first = { { rec_begin, rec_commit, rec_add, rec_del, rec_log, rec_log, 0, NULL }, "A", log };
    rec_listener second = { { rec_begin, rec_commit, rec_add, rec_del, rec_log, rec_log, 5, NULL }, "B", log };

    memory_listener__register(&second.l, as);
    memory_listener__register(&first.l, as);
    g_string_truncate(log, 0);

    memory_region_transaction__begin();
    memory_region__add_subregion(root, 0, a, 0);
    memory_region_transaction__begin();
    memory_region__add_subregion(root, 16 * MiB, b, 0);
    memory_region_transaction__commit();
    g_assert_cmpstr(log->str, ==, "");             /* still inside */
    memory_region_transaction__commit();
    g_assert_cmpstr(log->str, ==,
                    "A:begin B:begin A:add(a@0M) B:add(a@0M) A:add(b@16M) B:add(b@16M) A:commit B:commit ");

    g_string_truncate(log, 0);
    memory_region__del_subregion(root, a);
    g_assert_cmpstr(log->str, ==, "A:begin B:begin B:del(a@0M) A:del(a@0M) A:commit B:commit ");

    g_string_truncate(log, 0);
    memory_region__set_log(b, true);
    g_assert_cmpstr(log->str, ==, "A:begin B:begin A:log B:log A:commit B:commit ");

    address_space__free(as);
    memory_region__del_subregion(root, b);
    memory_region__free(a);
    memory_region__free(b);
    memory_region__free(root);
}

static void
test_overlap_walk(void)
{
    g_autoptr(GArray) adds = g_array_new(FALSE, FALSE, sizeof(memory_region_section));
    g_autoptr(GArray) dels = g_array_new(FALSE, FALSE, sizeof(memory_region_section));
    memory_region_section s = { 0 };

    s.offset_within_address_space = 0; s.size = 10;
    g_array_append_val(dels, s);
    s.offset_within_address_space = 20; s.size = 10;
    g_array_append_val(adds, s);
    g_assert_false(memslots__adds_overlap_dels(adds, dels));
    s.offset_within_address_space = 5; s.size = 2;
    g_array_prepend_val(adds, s);
    g_assert_true(memslots__adds_overlap_dels(adds, dels));
}

/* A VM with a RAM region at 16 MiB split by a hole, and a resizable one. */
typedef struct {
    memory_region *root, *ram, *hole, *extra;
    address_space *as;
} test_vm;

static void
test_vm_init(test_vm *vm, guint64 ram_size)
{
    vm->root = memory_region__new_container("system", G_MAXUINT64);
    vm->ram = memory_region__new_ram("ram", ram_size, 0, NULL);
    vm->hole = memory_region__new_mmio("hole", 1 * MiB);
    vm->extra = memory_region__new_ram("extra", 4 * MiB, 8 * MiB, NULL);
    vm->as = address_space__new("memory", vm->root);
    memory_region__add_subregion(vm->root, 16 * MiB, vm->ram, 0);
    memory_region__add_subregion(vm->root, 16 * MiB + ram_size, vm->extra, 0);
}

static void
test_vm_destroy(test_vm *vm)
{
    address_space__free(vm->as);
    if (vm->hole->container)
        memory_region__del_subregion(vm->root, vm->hole);
    memory_region__del_subregion(vm->root, vm->ram);
    memory_region__del_subregion(vm->root, vm->extra);
    memory_region__free(vm->hole);
    memory_region__free(vm->extra);
    memory_region__free(vm->ram);
    memory_region__free(vm->root);
}

/* One stress transaction: punch the hole, remove it, resize extra. */
static void
test_vm_churn(test_vm *vm, guint i)
{
    switch (i % 3) {
    case 0:
        memory_region__add_subregion(vm->root, 16 * MiB + vm->ram->size / 2, vm->hole, 1);
        break;
    case 1:
        memory_region__del_subregion(vm->root, vm->hole);
        break;
    case 2:
        memory_region__set_size(vm->extra, vm->extra->size == 4 * MiB ? 8 * MiB : 4 * MiB);
        break;
    }
}

static void
test_memslots_split_merge_resize(void)
{
    soft_accel *sa = soft_accel__new(32, 0, true);
    test_vm vm;

    test_vm_init(&vm, 16 * MiB);
    memory_listener__register(&sa->slots.listener, vm.as);
    g_assert_cmpuint(memslots__used(&sa->slots), ==, 2);
    test_vm_churn(&vm, 0);                   /* hole splits ram */
    g_assert_cmpuint(memslots__used(&sa->slots), ==, 3);
    g_assert_cmpuint(sa->slots.stats.inhibited_commits, ==, 1);
    g_assert_null(soft_accel__translate(sa, 24 * MiB));
    g_assert_nonnull(soft_accel__translate(sa, 24 * MiB - 4096));
    test_vm_churn(&vm, 1);                   /* merge */
    g_assert_cmpuint(memslots__used(&sa->slots), ==, 2);
    test_vm_churn(&vm, 2);                   /* resize extra 4 -> 8 MiB */
    g_assert_cmpuint(memslots__find(&sa->slots, 32 * MiB)->memory_size, ==, 8 * MiB);
    g_assert_cmpuint(sa->slots.stats.inhibited_commits, ==, 3);
    /* A region that overlaps nothing is added without inhibiting. */
    {
        memory_region *far = memory_region__new_ram("far", 1 * MiB, 0, NULL);

        memory_region__add_subregion(vm.root, 1024 * MiB, far, 0);
        g_assert_cmpuint(sa->slots.stats.inhibited_commits, ==, 3);
        memory_region__del_subregion(vm.root, far);
        memory_region__free(far);
    }
    g_assert_null(sa->slots.first_error);
    g_assert_cmpuint(sa->blocker.kicks, ==, 0);   /* no vCPU to kick */
    soft_accel__free(sa);
    test_vm_destroy(&vm);
}

/* kvm_set_phys_mem(): a section larger than the slot size limit becomes
 * several slots; running out of slots is an error, not a crash. */
static void
test_memslots_max_size_and_exhaustion(void)
{
    soft_accel *sa = soft_accel__new(4, 4 * MiB, true);
    test_vm vm;

    test_vm_init(&vm, 12 * MiB);
    memory_listener__register(&sa->slots.listener, vm.as);
    g_assert_cmpuint(memslots__used(&sa->slots), ==, 4);   /* 3 + 1 */
    g_assert_null(sa->slots.first_error);
    test_vm_churn(&vm, 2);                                   /* extra: 8 MiB = 2 slots */
    g_assert_nonnull(sa->slots.first_error);
    g_assert_true(strstr(sa->slots.first_error->message, "no free memory slot"));
    soft_accel__free(sa);
    test_vm_destroy(&vm);
}

typedef struct {
    test_vm vm;
    guint64 ram_start, ram_end;
} stress_ctx;

static bool
stress_is_ram(void *opaque, uint64_t gpa)
{
    stress_ctx *c = opaque;
    memory_region_section s;

    return address_space__lookup(c->vm.as, gpa, &s) && s.mr->type == MR_RAM;
}

/* seed 003 on the software accelerator: two vCPUs touch every page of
 * RAM while the main thread churns; atomic commits give no spurious
 * fault, one-at-a-time updates do. */
static kvm_vcpu_stats
stress(bool atomic, guint transactions, double seconds, guint32 *checksum_errors)
{
    gint64 start, deadline;
    stress_ctx c;
    soft_accel *sa = soft_accel__new(32, 0, atomic);
    guest_params params[2] = { 0 };
    soft_vcpu *vcpus[2];
    kvm_vcpu_stats total = { 0 };
    guint64 hole_start;

    test_vm_init(&c.vm, 16 * MiB);
    memory_listener__register(&sa->slots.listener, c.vm.as);
    hole_start = 16 * MiB + 8 * MiB;
    for (unsigned i = 0; i < 2; i++) {
        params[i] = (guest_params){ .ram_start = 16 * MiB, .ram_end = 36 * MiB,
                                    .hole_start = hole_start, .hole_end = hole_start + MiB,
                                    .id = i, .nr_vcpus = 2 };
        vcpus[i] = soft_vcpu__start(sa, &params[i], stress_is_ram, &c, NULL, 0);
    }
    /* Churn while the vCPUs run: at least @transactions, at least
     * @seconds, so thread start-up cannot hide the window, and until each
     * vCPU finished a pass under the churn (the checks are on passes; a
     * busy machine or valgrind may give the vCPU threads little CPU while
     * this one churns), for a minute at most. */
    start = g_get_monotonic_time();
    deadline = start + (gint64)(seconds * G_USEC_PER_SEC);
    for (guint t = 0; t < transactions || g_get_monotonic_time() < deadline ||
                      ((params[0].pass == 0 || params[1].pass == 0) &&
                       g_get_monotonic_time() < start + 60 * G_USEC_PER_SEC); t++)
        test_vm_churn(&c.vm, t);
    if (c.vm.hole->container)
        memory_region__del_subregion(c.vm.root, c.vm.hole);
    *checksum_errors = 0;
    for (unsigned i = 0; i < 2; i++) {
        kvm_vcpu_stats s = soft_vcpu__stop(vcpus[i]);

        total.passes += s.passes;
        total.spurious_faults += s.spurious_faults;
        total.guest_errors += s.guest_errors;
        total.eintr += s.eintr;
        /* The host's checksum: every own page holds the final pass. */
        for (guint64 a = 16 * MiB + i * 4096; a < 36 * MiB; a += 2 * 4096) {
            if (a >= hole_start && a < hole_start + MiB)
                continue;
            *checksum_errors += *(guint32 *)soft_accel__translate(sa, a) != params[i].pass;
        }
    }
    soft_accel__free(sa);
    test_vm_destroy(&c.vm);
    return total;
}

static void
test_soft_stress_atomic(void)
{
    guint32 bad;
    kvm_vcpu_stats s = stress(true, 3000, 0.5, &bad);

    g_test_message("atomic: %" G_GUINT64_FORMAT " passes, %" G_GUINT64_FORMAT " kicks",
                   s.passes, s.eintr);
    g_assert_cmpuint(s.passes, >, 0);
    g_assert_cmpuint(s.spurious_faults, ==, 0);
    g_assert_cmpuint(s.guest_errors, ==, 0);
    g_assert_cmpuint(bad, ==, 0);
}

/* The same test must see the hazard when commits are not atomic. */
static void
test_soft_stress_non_atomic_sees_faults(void)
{
    guint32 bad;
    kvm_vcpu_stats s = stress(false, 3000, 0.5, &bad);

    /* A loaded machine may schedule the vCPUs away from every window;
     * a longer run must still see one. */
    for (int i = 0; i < 4 && s.spurious_faults == 0; i++)
        s = stress(false, 3000, 2.0, &bad);

    g_test_message("non-atomic: %" G_GUINT64_FORMAT " spurious faults, %" G_GUINT64_FORMAT " guest errors",
                   s.spurious_faults, s.guest_errors);
    g_assert_cmpuint(s.spurious_faults, >, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/memory/flat-view-render", test_flat_view_render);
    g_test_add_func("/memory/listener-order-and-transactions", test_listener_order_and_transactions);
    g_test_add_func("/memslots/overlap-walk", test_overlap_walk);
    g_test_add_func("/memslots/split-merge-resize", test_memslots_split_merge_resize);
    g_test_add_func("/memslots/max-slot-size-and-exhaustion", test_memslots_max_size_and_exhaustion);
    g_test_add_func("/memslots/seed003-soft-stress-atomic", test_soft_stress_atomic);
    g_test_add_func("/memslots/seed003-soft-stress-non-atomic-sees-faults", test_soft_stress_non_atomic_sees_faults);
    return g_test_run();
}

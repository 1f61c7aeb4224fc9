/*
 * test-kvm-vcpu.c: two vCPUs on /dev/kvm run the guest program while the
 * test thread changes the memory map.  Removing and re-adding a memslot
 * without inhibiting vCPU ioctls lets the guest fault on RAM (the hazard
 * seed 003 fixes); inside accel_ioctl__inhibit_begin/end it cannot.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel/accel_blocker.h"
#include "accel/kvm_vcpu.h"

#define NR_VCPUS       2
#define TEST_RAM_BASE  0x1000000ULL         /* 16 MiB */
#define TEST_RAM_SIZE  0x1000000ULL         /* 16 MiB */
#define TEST_HOLE_BASE (TEST_RAM_BASE + 0x400000)
#define TEST_HOLE_SIZE 0x100000ULL
#define TSS_ADDR       0xfffbd000UL
#define PAGE           4096u
#define STOP_TIMEOUT_MS 5000
#define CHURN_GAP_US   200
/* How long the vCPU threads may take to get somewhere: only a broken run
 * takes that long (valgrind and a busy machine take seconds). */
#define WAIT_US        (30 * G_USEC_PER_SEC)

typedef struct {
    int kvm_fd, vm_fd;
    void *boot, *ram;
    accel_blocker blocker;
    kvm_vcpu *vcpu[NR_VCPUS];
    gint is_ram_calls;               /* live count of spurious faults */
    bool hole;                       /* the guest skips TEST_HOLE_* */
} test_vm;

static bool
kvm_available(void)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

#define SKIP_WITHOUT_KVM()                                  \
    do {                                                    \
        if (!kvm_available()) {                             \
            g_test_skip("no usable /dev/kvm");              \
            return;                                         \
        }                                                   \
    } while (0)

/* The committed memory map: the whole test range is RAM. */
static bool
test_is_ram(void *opaque, uint64_t gpa)
{
    test_vm *vm = opaque;

    g_atomic_int_inc(&vm->is_ram_calls);
    return gpa >= TEST_RAM_BASE && gpa < TEST_RAM_BASE + TEST_RAM_SIZE;
}

static int
set_region(test_vm *vm, unsigned slot, uint64_t gpa, uint64_t size, void *hva)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot, .guest_phys_addr = gpa, .memory_size = size,
        .userspace_addr = (uintptr_t)hva,
    };

    return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

static void
test_vm__init(test_vm *vm, bool hole)
{
    GError *error = NULL;

    memset(vm, 0, sizeof(*vm));
    vm->hole = hole;
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    g_assert_cmpint(vm->kvm_fd, >=, 0);
    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    g_assert_cmpint(vm->vm_fd, >=, 0);
    g_assert_cmpint(ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR), ==, 0);

    vm->boot = mmap(NULL, GUEST_BOOT_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    g_assert_true(vm->boot != MAP_FAILED);
    vm->ram = mmap(NULL, TEST_RAM_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    g_assert_true(vm->ram != MAP_FAILED);
    g_assert_cmpint(set_region(vm, 0, GUEST_BOOT_BASE, GUEST_BOOT_SIZE, vm->boot), ==, 0);
    g_assert_cmpint(set_region(vm, 1, TEST_RAM_BASE, TEST_RAM_SIZE, vm->ram), ==, 0);

    guest_program__load(vm->boot);
    accel_blocker__init(&vm->blocker, kvm_vcpu__kick);
    for (unsigned i = 0; i < NR_VCPUS; i++) {
        guest_params__init(vm->boot, i, NR_VCPUS, TEST_RAM_BASE,
                           TEST_RAM_BASE + TEST_RAM_SIZE,
                           hole ? TEST_HOLE_BASE : 0,
                           hole ? TEST_HOLE_BASE + TEST_HOLE_SIZE : 0);
        vm->vcpu[i] = kvm_vcpu__create(vm->vm_fd, i, &vm->blocker,
                                       test_is_ram, vm, &error);
        g_assert_no_error(error);
        g_assert_nonnull(vm->vcpu[i]);
    }
}

static void
test_vm__start(test_vm *vm)
{
    GError *error = NULL;

    for (unsigned i = 0; i < NR_VCPUS; i++) {
        g_assert_true(kvm_vcpu__start(vm->vcpu[i], &error));
        g_assert_no_error(error);
    }
}

/* Until the guest on every vCPU has completed @passes passes (it writes
 * guest_params.pass itself): when the vCPU threads get the CPU is up to
 * the scheduler, so the tests wait for progress instead of sleeping. */
static void
test_vm__wait_passes(test_vm *vm, uint32_t passes)
{
    gint64 deadline = g_get_monotonic_time() + WAIT_US;

    for (unsigned i = 0; i < NR_VCPUS; i++) {
        while (guest_params__get(vm->boot, i)->pass < passes) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(1000);
        }
    }
}

static bool
test_vm__passed(test_vm *vm, uint32_t passes)
{
    for (unsigned i = 0; i < NR_VCPUS; i++)
        if (guest_params__get(vm->boot, i)->pass < passes)
            return false;
    return true;
}

static void
test_vm__stop(test_vm *vm, kvm_vcpu_stats *stats)
{
    for (unsigned i = 0; i < NR_VCPUS; i++) {
        stats[i] = kvm_vcpu__stop(vm->vcpu[i], guest_params__get(vm->boot, i),
                                  STOP_TIMEOUT_MS);
        g_assert_cmpstr(kvm_vcpu__error(vm->vcpu[i]), ==, NULL);
    }
}

static void
test_vm__free(test_vm *vm)
{
    for (unsigned i = 0; i < NR_VCPUS; i++)
        kvm_vcpu__free(vm->vcpu[i]);
    accel_blocker__destroy(&vm->blocker);
    close(vm->vm_fd);
    close(vm->kvm_fd);
    munmap(vm->ram, TEST_RAM_SIZE);
    munmap(vm->boot, GUEST_BOOT_SIZE);
}

/* Every own page of each vCPU holds its last pass number; pages in the
 * hole were never touched. */
static void
test_vm__check_pages(test_vm *vm)
{
    for (unsigned i = 0; i < NR_VCPUS; i++) {
        uint32_t pass = guest_params__get(vm->boot, i)->pass;
        unsigned checked = 0;

        g_assert_cmpuint(pass, >, 0);
        for (uint64_t page = i; page * PAGE < TEST_RAM_SIZE; page += NR_VCPUS) {
            uint64_t gpa = TEST_RAM_BASE + page * PAGE;
            uint32_t word;

            memcpy(&word, (char *)vm->ram + page * PAGE, sizeof(word));
            if (vm->hole && gpa >= TEST_HOLE_BASE &&
                gpa < TEST_HOLE_BASE + TEST_HOLE_SIZE) {
                g_assert_cmpuint(word, ==, 0);
                continue;
            }
            if (word != pass)
                g_error("vCPU %u page 0x%" G_GINT64_MODIFIER "x: %u, want %u",
                        i, gpa, word, pass);
            checked++;
        }
        g_assert_cmpuint(checked, >, 0);
    }
}

static void
report(const char *what, const kvm_vcpu_stats *stats, double seconds)
{
    for (unsigned i = 0; i < NR_VCPUS; i++)
        g_test_message("%s: vCPU %u: %" G_GUINT64_FORMAT " passes in %.3f s "
                       "(%.0f/s), %" G_GUINT64_FORMAT " mmio exits, %"
                       G_GUINT64_FORMAT " spurious, %" G_GUINT64_FORMAT
                       " guest errors, %" G_GUINT64_FORMAT " run calls, %"
                       G_GUINT64_FORMAT " eintr",
                       what, i, stats[i].passes, seconds,
                       stats[i].passes / seconds, stats[i].mmio_exits,
                       stats[i].spurious_faults, stats[i].guest_errors,
                       stats[i].run_calls, stats[i].eintr);
}

/* a. Undisturbed run: every pass finds what it wrote before. */
static void
test_run_intact(void)
{
    kvm_vcpu_stats stats[NR_VCPUS];
    test_vm vm;
    gint64 t0;

    SKIP_WITHOUT_KVM();
    test_vm__init(&vm, true);
    t0 = g_get_monotonic_time();
    test_vm__start(&vm);
    g_usleep(300 * G_TIME_SPAN_MILLISECOND);
    test_vm__wait_passes(&vm, 2);                /* a pass checked the one before */
    test_vm__stop(&vm, stats);
    report("intact", stats, (g_get_monotonic_time() - t0) / 1e6);

    for (unsigned i = 0; i < NR_VCPUS; i++) {
        g_assert_cmpuint(stats[i].passes, >, 0);
        g_assert_cmpuint(stats[i].guest_errors, ==, 0);
        g_assert_cmpuint(stats[i].spurious_faults, ==, 0);
        g_assert_cmpuint(stats[i].mmio_exits, ==, 0);
        g_assert_cmpuint(stats[i].passes, ==, guest_params__get(vm.boot, i)->pass);
    }
    test_vm__check_pages(&vm);
    test_vm__free(&vm);
}

/* Delete test-RAM slot 1 and re-add it, for @ms (at least), optionally
 * inside the blocker; returns the number of delete+add pairs.  The gap
 * between pairs lets the vCPUs get back into the guest, so the inhibitor
 * really has to kick them out of KVM_RUN. */
static unsigned
churn_slot(test_vm *vm, bool inhibit, unsigned ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    unsigned n = 0;

    do {
        if (inhibit)
            accel_ioctl__inhibit_begin(&vm->blocker);
        g_assert_cmpint(set_region(vm, 1, TEST_RAM_BASE, 0, vm->ram), ==, 0);
        g_assert_cmpint(set_region(vm, 1, TEST_RAM_BASE, TEST_RAM_SIZE, vm->ram), ==, 0);
        if (inhibit)
            accel_ioctl__inhibit_end(&vm->blocker);
        n++;
        g_usleep(CHURN_GAP_US);
    } while (g_get_monotonic_time() < end);
    return n;
}

/* b. The hazard: a non-atomic update lets the vCPUs see RAM vanish.  It
 * takes a vCPU in the guest at the moment the slot is gone: the churn
 * goes on until one was (a busy machine may keep the vCPU threads off the
 * CPU for a while), for WAIT_US at most. */
static void
test_hazard_visible(void)
{
    kvm_vcpu_stats stats[NR_VCPUS];
    guint64 spurious = 0;
    unsigned pairs;
    test_vm vm;
    gint64 t0;

    SKIP_WITHOUT_KVM();
    test_vm__init(&vm, false);
    t0 = g_get_monotonic_time();
    test_vm__start(&vm);
    pairs = churn_slot(&vm, false, 300);
    while (g_atomic_int_get(&vm.is_ram_calls) == 0 && g_get_monotonic_time() < t0 + WAIT_US)
        pairs += churn_slot(&vm, false, 300);
    test_vm__stop(&vm, stats);
    report("hazard", stats, (g_get_monotonic_time() - t0) / 1e6);

    for (unsigned i = 0; i < NR_VCPUS; i++)
        spurious += stats[i].spurious_faults;
    g_test_message("hazard: %u unprotected delete+add pairs, %" G_GUINT64_FORMAT
                   " spurious faults", pairs, spurious);
    g_assert_cmpuint(spurious, >, 0);
    g_assert_cmpuint(spurious, ==, (guint64)g_atomic_int_get(&vm.is_ram_calls));
    test_vm__free(&vm);
}

/* c. The same churn inside the blocker: no vCPU is in KVM_RUN while the
 * slot is gone, so the guest never notices.  The churn goes on until the
 * guests made progress through it and the blocker had to kick a vCPU out
 * of KVM_RUN at least once, for WAIT_US at most. */
static void
test_hazard_inhibited(void)
{
    kvm_vcpu_stats stats[NR_VCPUS];
    unsigned pairs;
    test_vm vm;
    gint64 t0;

    SKIP_WITHOUT_KVM();
    test_vm__init(&vm, false);
    t0 = g_get_monotonic_time();
    test_vm__start(&vm);
    pairs = churn_slot(&vm, true, 300);
    while ((!test_vm__passed(&vm, 1) || vm.blocker.kicks == 0) &&
           g_get_monotonic_time() < t0 + WAIT_US)
        pairs += churn_slot(&vm, true, 100);
    test_vm__stop(&vm, stats);
    report("inhibited", stats, (g_get_monotonic_time() - t0) / 1e6);
    g_test_message("inhibited: %u delete+add pairs, %" G_GUINT64_FORMAT
                   " inhibits, %" G_GUINT64_FORMAT " kicks",
                   pairs, vm.blocker.inhibits, vm.blocker.kicks);

    for (unsigned i = 0; i < NR_VCPUS; i++) {
        g_assert_cmpuint(stats[i].passes, >, 0);
        g_assert_cmpuint(stats[i].spurious_faults, ==, 0);
        g_assert_cmpuint(stats[i].mmio_exits, ==, 0);
        g_assert_cmpuint(stats[i].guest_errors, ==, 0);
    }
    g_assert_cmpuint(vm.blocker.inhibits, ==, pairs);
    g_assert_cmpuint(vm.blocker.kicks, >, 0);
    test_vm__check_pages(&vm);
    test_vm__free(&vm);
}

static unsigned
count_fds(void)
{
    GDir *dir = g_dir_open("/proc/self/fd", 0, NULL);
    unsigned n = 0;

    g_assert_nonnull(dir);
    while (g_dir_read_name(dir))
        n++;
    g_dir_close(dir);
    return n;
}

/* Threads of this process; @user_only leaves out the workers the kernel
 * runs in it for a VM (kvm-nx-lpage-recovery since Linux 6.13), which live
 * until the VM fd is closed. */
static unsigned
count_tasks(bool user_only)
{
    GDir *dir = g_dir_open("/proc/self/task", 0, NULL);
    const char *name;
    unsigned n = 0;

    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *path = g_strdup_printf("/proc/self/task/%s/comm", name);
        g_autofree char *comm = NULL;

        if (user_only && g_file_get_contents(path, &comm, NULL, NULL) &&
            g_str_has_prefix(comm, "kvm-"))
            continue;
        n++;
    }
    g_dir_close(dir);
    return n;
}

/* The kernel reaps its VM workers right after the VM fd is closed; give
 * it a moment rather than race it. */
static unsigned
wait_tasks(unsigned want)
{
    unsigned n;

    for (int i = 0; (n = count_tasks(false)) != want && i < 200; i++)
        g_usleep(10 * G_TIME_SPAN_MILLISECOND);
    return n;
}

/* d. stop + free leave no thread and no fd behind, including a vCPU that
 * is stopped with a zero timeout (kicked out by the host-side quit). */
static void
test_no_leak(void)
{
    kvm_vcpu_stats stats;
    unsigned fds;
    test_vm vm;

    SKIP_WITHOUT_KVM();
    g_assert_cmpuint(wait_tasks(1), ==, 1);
    fds = count_fds();

    test_vm__init(&vm, false);
    test_vm__start(&vm);
    test_vm__wait_passes(&vm, 1);                /* both in the guest, a pass done */
    g_assert_cmpuint(count_tasks(true), ==, 1 + NR_VCPUS);
    /* vCPU 0: the guest is asked to stop; vCPU 1: kicked at once, without
     * telling the guest (the host-side quit path). */
    stats = kvm_vcpu__stop(vm.vcpu[0], guest_params__get(vm.boot, 0), STOP_TIMEOUT_MS);
    g_assert_cmpuint(stats.passes, >, 0);
    stats = kvm_vcpu__stop(vm.vcpu[1], NULL, 0);
    g_assert_cmpuint(stats.run_calls, >, 0);
    g_assert_cmpstr(kvm_vcpu__error(vm.vcpu[0]), ==, NULL);
    g_assert_cmpstr(kvm_vcpu__error(vm.vcpu[1]), ==, NULL);
    g_assert_cmpuint(count_tasks(true), ==, 1);
    test_vm__free(&vm);

    g_assert_cmpuint(wait_tasks(1), ==, 1);
    g_assert_cmpuint(count_fds(), ==, fds);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* meson's skip status: this machine has no usable /dev/kvm. */
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        g_print("no usable /dev/kvm: skipping the KVM tests\n");
        return 77;
    }
    g_test_add_func("/kvm-vcpu/run-intact", test_run_intact);
    g_test_add_func("/kvm-vcpu/hazard-visible", test_hazard_visible);
    g_test_add_func("/kvm-vcpu/hazard-inhibited", test_hazard_inhibited);
    g_test_add_func("/kvm-vcpu/no-leak", test_no_leak);
    return g_test_run();
}

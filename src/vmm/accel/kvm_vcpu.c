/*
 * accel/kvm_vcpu.c: vCPU threads on /dev/kvm running the built-in guest program.
 *
 * Every ioctl on the vCPU fd is bracketed by accel_cpu_ioctl__begin/end, so
 * an inhibitor (accel/accel_blocker.c, seed 003) can change memslots while no
 * vCPU is inside one.  Getting a vCPU out of KVM_RUN is kvm_vcpu__kick:
 * immediate_exit covers the window before the vCPU enters the guest, an
 * empty SIGUSR1 handler without SA_RESTART the time it is in it.
 */
#include "accel/kvm_vcpu.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dmg_i18n.h"

#define KVM_VCPU_SIGNAL SIGUSR1

extern const char dmg_guest_program_start[];
extern const char dmg_guest_program_end[];

/* accel/guest_program.S hard-codes these. */
G_STATIC_ASSERT(sizeof(guest_params) == 64);
G_STATIC_ASSERT(offsetof(guest_params, ram_start) == 0);
G_STATIC_ASSERT(offsetof(guest_params, ram_end) == 4);
G_STATIC_ASSERT(offsetof(guest_params, hole_start) == 8);
G_STATIC_ASSERT(offsetof(guest_params, hole_end) == 12);
G_STATIC_ASSERT(offsetof(guest_params, id) == 16);
G_STATIC_ASSERT(offsetof(guest_params, nr_vcpus) == 20);
G_STATIC_ASSERT(offsetof(guest_params, stop) == 24);
G_STATIC_ASSERT(offsetof(guest_params, errors) == 28);
G_STATIC_ASSERT(offsetof(guest_params, pass) == 32);
G_STATIC_ASSERT(offsetof(guest_params, pages_per_tick) == 36);
G_STATIC_ASSERT(GUEST_PARAMS_ADDR == 0x8000);
G_STATIC_ASSERT(GUEST_PORT_PASS == 0x10 && GUEST_PORT_DONE == 0x11 && GUEST_PORT_TICK == 0x12);

struct kvm_vcpu {
    unsigned id;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    accel_blocker *blocker;
    accel_vcpu_slot *slot;
    kvm_vcpu_is_ram_fn is_ram;
    void *opaque;

    pthread_t thread;            /* caller side, for join */
    pthread_t tid;               /* the same, as the thread saw itself */
    bool started;                /* caller side: thread created, not joined */
    gint has_tid;                /* set by the thread before its first ioctl */
    gint quit;                   /* host asks the loop to end */
    gint stopping;               /* host asked the guest to stop: no throttle */
    dirty_limit limit;

    GMutex lock;                 /* protects finished */
    GCond cond;
    bool finished;

    kvm_vcpu_stats stats;        /* written by the thread, read after join */
    char *error;                 /* why the loop ended early, or NULL */
};

/* ---- guest memory --------------------------------------------------- */

void
guest_program__load(void *boot_hva)
{
    size_t len = dmg_guest_program_end - dmg_guest_program_start;

    g_assert(GUEST_PROGRAM_ADDR + len <= GUEST_PARAMS_ADDR);
    memcpy((char *)boot_hva + GUEST_PROGRAM_ADDR, dmg_guest_program_start, len);
}

guest_params *
guest_params__get(void *boot_hva, unsigned id)
{
    return (guest_params *)((char *)boot_hva + GUEST_PARAMS_ADDR) + id;
}

void
guest_params__init(void *boot_hva, unsigned id, unsigned nr_vcpus,
                   uint32_t ram_start, uint32_t ram_end,
                   uint32_t hole_start, uint32_t hole_end)
{
    guest_params *p = guest_params__get(boot_hva, id);

    g_return_if_fail(nr_vcpus > 0 && id < nr_vcpus);
    g_return_if_fail(GUEST_PARAMS_ADDR + (id + 1) * sizeof(*p) <=
                     GUEST_STACK_TOP - nr_vcpus * GUEST_STACK_SIZE);

    memset(p, 0, sizeof(*p));
    p->ram_start = ram_start;
    p->ram_end = ram_end;
    p->hole_start = hole_start;
    p->hole_end = hole_end;
    p->id = id;
    p->nr_vcpus = nr_vcpus;
}

/* ---- ioctls --------------------------------------------------------- */

/* Every ioctl on the vCPU fd, KVM_RUN included, inside begin/end; a kick
 * that came while it ran leaves immediate_exit set, clear it before end. */
static int
kvm_vcpu__ioctl(kvm_vcpu *vcpu, unsigned long req, void *arg)
{
    int ret, err;

    accel_cpu_ioctl__begin(vcpu->slot);
    ret = ioctl(vcpu->fd, req, arg);
    err = errno;
    __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    accel_cpu_ioctl__end(vcpu->slot);
    errno = err;
    return ret;
}

static gboolean
set_errno_error(GError **error, int err, const char *what)
{
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err),
                _("%s failed: %s"), what, g_strerror(err));
    return FALSE;
}

/* Opened once, and closed again: only the size is kept. */
static gssize
kvm__vcpu_mmap_size(GError **error)
{
    static gssize size;
    gssize cached = __atomic_load_n(&size, __ATOMIC_ACQUIRE);
    int fd, err;

    if (cached > 0)
        return cached;
    fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        set_errno_error(error, errno, "open /dev/kvm");
        return -1;
    }
    int ret = ioctl(fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    err = errno;
    close(fd);
    if (ret <= 0) {
        set_errno_error(error, ret < 0 ? err : EINVAL, "KVM_GET_VCPU_MMAP_SIZE");
        return -1;
    }
    __atomic_store_n(&size, (gssize)ret, __ATOMIC_RELEASE);
    return ret;
}

static void
segment__flat(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
    *s = (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = selector,
        .type = type, .present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0,
        .g = 1, .avl = 0,
    };
}

/* 32-bit flat protected mode, paging off, at the guest program. */
static gboolean
kvm_vcpu__init_regs(kvm_vcpu *vcpu, GError **error)
{
    struct kvm_sregs sregs;
    struct kvm_regs regs = { 0 };

    if (kvm_vcpu__ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        return set_errno_error(error, errno, "KVM_GET_SREGS");
    segment__flat(&sregs.cs, 0x08, 0xb);      /* code, execute/read, accessed */
    segment__flat(&sregs.ds, 0x10, 0x3);      /* data, read/write, accessed */
    sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
    sregs.cr0 |= 1;                           /* PE */
    sregs.cr0 &= ~(1UL << 31);                /* PG */
    if (kvm_vcpu__ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        return set_errno_error(error, errno, "KVM_SET_SREGS");

    regs.rip = GUEST_PROGRAM_ADDR;
    regs.rflags = 2;
    regs.rsp = GUEST_STACK_TOP - (uint64_t)vcpu->id * GUEST_STACK_SIZE;
    regs.rdi = vcpu->id;
    if (kvm_vcpu__ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        return set_errno_error(error, errno, "KVM_SET_REGS");
    return TRUE;
}

void
kvm_vcpu__set_throttle(kvm_vcpu *vcpu, guint64 tick_ns)
{
    vcpu->limit = (dirty_limit){ .tick_ns = tick_ns };
}

/* ---- migration ------------------------------------------------------ */

gboolean
kvm_vcpu__save_state(kvm_vcpu *vcpu, kvm_vcpu_state *state, GError **error)
{
    int ret;

    /* Not through kvm_vcpu__ioctl: the caller holds the inhibitor that
     * kvm_vcpu__ioctl would wait for. */
    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    ret = ioctl(vcpu->fd, KVM_RUN, NULL);
    __atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    if (ret == 0 || (errno != EINTR && errno != EAGAIN)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    _("vCPU %u: completing its last exit before saving its state failed: %s"),
                    vcpu->id, ret == 0 ? _("it entered the guest") : g_strerror(errno));
        return FALSE;
    }
    if (ioctl(vcpu->fd, KVM_GET_REGS, &state->regs) < 0)
        return set_errno_error(error, errno, "KVM_GET_REGS");
    if (ioctl(vcpu->fd, KVM_GET_SREGS, &state->sregs) < 0)
        return set_errno_error(error, errno, "KVM_GET_SREGS");
    return TRUE;
}

gboolean
kvm_vcpu__load_state(kvm_vcpu *vcpu, const kvm_vcpu_state *state, GError **error)
{
    g_return_val_if_fail(!vcpu->started, FALSE);
    if (kvm_vcpu__ioctl(vcpu, KVM_SET_SREGS, (void *)&state->sregs) < 0)
        return set_errno_error(error, errno, "KVM_SET_SREGS");
    if (kvm_vcpu__ioctl(vcpu, KVM_SET_REGS, (void *)&state->regs) < 0)
        return set_errno_error(error, errno, "KVM_SET_REGS");
    return TRUE;
}

/* ---- create / free -------------------------------------------------- */

kvm_vcpu *
kvm_vcpu__create(int vm_fd, unsigned id, accel_blocker *blocker,
                 kvm_vcpu_is_ram_fn is_ram, void *opaque, GError **error)
{
    kvm_vcpu *vcpu;
    gssize size;

    g_return_val_if_fail(blocker != NULL, NULL);
    size = kvm__vcpu_mmap_size(error);
    if (size < 0)
        return NULL;

    vcpu = g_new0(kvm_vcpu, 1);
    vcpu->id = id;
    vcpu->blocker = blocker;
    vcpu->is_ram = is_ram;
    vcpu->opaque = opaque;
    vcpu->run_size = size;
    g_mutex_init(&vcpu->lock);
    g_cond_init(&vcpu->cond);

    vcpu->fd = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (vcpu->fd < 0) {
        set_errno_error(error, errno, "KVM_CREATE_VCPU");
        goto err_free;
    }
    vcpu->run = mmap(NULL, vcpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                     vcpu->fd, 0);
    if (vcpu->run == MAP_FAILED) {
        set_errno_error(error, errno, "mmap kvm_run");
        goto err_close;
    }
    vcpu->slot = accel_blocker__add_vcpu(blocker, vcpu);
    if (!kvm_vcpu__init_regs(vcpu, error))
        goto err_del;
    return vcpu;

err_del:
    accel_blocker__del_vcpu(blocker, vcpu->slot);
    munmap(vcpu->run, vcpu->run_size);
err_close:
    close(vcpu->fd);
err_free:
    g_cond_clear(&vcpu->cond);
    g_mutex_clear(&vcpu->lock);
    g_free(vcpu);
    return NULL;
}

void
kvm_vcpu__free(kvm_vcpu *vcpu)
{
    if (!vcpu)
        return;
    if (vcpu->started)
        kvm_vcpu__stop(vcpu, NULL, 0);
    accel_blocker__del_vcpu(vcpu->blocker, vcpu->slot);
    munmap(vcpu->run, vcpu->run_size);
    close(vcpu->fd);
    g_free(vcpu->error);
    g_cond_clear(&vcpu->cond);
    g_mutex_clear(&vcpu->lock);
    g_free(vcpu);
}

const char *
kvm_vcpu__error(const kvm_vcpu *vcpu)
{
    return vcpu->error;
}

/* ---- the run loop --------------------------------------------------- */

void
kvm_vcpu__kick(void *opaque)
{
    kvm_vcpu *vcpu = opaque;

    __atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (g_atomic_int_get(&vcpu->has_tid))
        pthread_kill(vcpu->tid, KVM_VCPU_SIGNAL);
}

static void
kvm_vcpu__signal(int sig)
{
    (void)sig;                   /* only there to make KVM_RUN return EINTR */
}

static gpointer
kvm_vcpu__install_signal(gpointer unused)
{
    struct sigaction sa = { .sa_handler = kvm_vcpu__signal };

    (void)unused;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;             /* no SA_RESTART: KVM_RUN returns -EINTR */
    sigaction(KVM_VCPU_SIGNAL, &sa, NULL);
    return NULL;
}

static void
kvm_vcpu__io(kvm_vcpu *vcpu, bool *done)
{
    struct kvm_run *run = vcpu->run;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    uint32_t value = 0;

    if (run->io.direction == KVM_EXIT_IO_IN) {
        memset(data, 0xff, (size_t)run->io.size * run->io.count);
        return;
    }
    memcpy(&value, data, MIN(run->io.size, sizeof(value)));
    switch (run->io.port) {
    case GUEST_PORT_PASS:
        vcpu->stats.passes++;
        break;
    case GUEST_PORT_DONE:
        vcpu->stats.guest_errors = value;
        *done = true;
        break;
    case GUEST_PORT_TICK:
        /* Outside any ioctl: an inhibitor does not wait for a sleeping
         * vCPU; a kick's signal wakes it. */
        if (!g_atomic_int_get(&vcpu->stopping))
            dirty_limit__tick(&vcpu->limit);
        break;
    default:
        break;
    }
}

static void
kvm_vcpu__mmio(kvm_vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;

    vcpu->stats.mmio_exits++;
    if (vcpu->is_ram && vcpu->is_ram(vcpu->opaque, run->mmio.phys_addr))
        vcpu->stats.spurious_faults++;
    if (!run->mmio.is_write)
        memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
}

static char *
kvm_vcpu__exit_error(kvm_vcpu *vcpu)
{
    struct kvm_run *run = vcpu->run;

    switch (run->exit_reason) {
    case KVM_EXIT_INTERNAL_ERROR:
        return g_strdup_printf(_("vCPU %u: KVM internal error, suberror %u"),
                               vcpu->id, run->internal.suberror);
    case KVM_EXIT_FAIL_ENTRY:
        return g_strdup_printf(_("vCPU %u: entry failed, hardware reason 0x%llx"),
                               vcpu->id, (unsigned long long)
                               run->fail_entry.hardware_entry_failure_reason);
    case KVM_EXIT_SHUTDOWN:
        return g_strdup_printf(_("vCPU %u: guest shutdown (triple fault)"),
                               vcpu->id);
    default:
        return g_strdup_printf(_("vCPU %u: unexpected exit reason %u"),
                               vcpu->id, run->exit_reason);
    }
}

static void *
kvm_vcpu__thread(void *opaque)
{
    kvm_vcpu *vcpu = opaque;
    sigset_t set;
    bool done = false;

    /* Before the first begin: a kicker sees has_tid under the slot lock,
     * and cannot rely on pthread_create having stored vcpu->thread yet. */
    vcpu->tid = pthread_self();
    g_atomic_int_set(&vcpu->has_tid, 1);
    sigemptyset(&set);
    sigaddset(&set, KVM_VCPU_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    while (!done && !g_atomic_int_get(&vcpu->quit)) {
        int ret = kvm_vcpu__ioctl(vcpu, KVM_RUN, NULL);

        vcpu->stats.run_calls++;
        if (ret < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                vcpu->stats.eintr++;
                continue;
            }
            vcpu->error = g_strdup_printf(_("vCPU %u: KVM_RUN failed: %s"),
                                          vcpu->id, g_strerror(errno));
            break;
        }
        switch (vcpu->run->exit_reason) {
        case KVM_EXIT_IO:
            kvm_vcpu__io(vcpu, &done);
            break;
        case KVM_EXIT_MMIO:
            kvm_vcpu__mmio(vcpu);
            break;
        case KVM_EXIT_HLT:
            done = true;
            break;
        case KVM_EXIT_INTR:
            vcpu->stats.eintr++;
            break;
        default:
            vcpu->error = kvm_vcpu__exit_error(vcpu);
            done = true;
            break;
        }
    }

    g_mutex_lock(&vcpu->lock);
    vcpu->finished = true;
    g_cond_broadcast(&vcpu->cond);
    g_mutex_unlock(&vcpu->lock);
    return NULL;
}

gboolean
kvm_vcpu__start(kvm_vcpu *vcpu, GError **error)
{
    static GOnce signal_once = G_ONCE_INIT;
    int err;

    g_return_val_if_fail(!vcpu->started, FALSE);
    g_once(&signal_once, kvm_vcpu__install_signal, NULL);

    vcpu->finished = false;
    g_atomic_int_set(&vcpu->quit, 0);
    g_atomic_int_set(&vcpu->stopping, 0);
    err = pthread_create(&vcpu->thread, NULL, kvm_vcpu__thread, vcpu);
    if (err)
        return set_errno_error(error, err, "pthread_create");
    vcpu->started = true;
    return TRUE;
}

kvm_vcpu_stats
kvm_vcpu__stop(kvm_vcpu *vcpu, guest_params *params, unsigned timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    if (params)
        params->stop = 1;
    g_atomic_int_set(&vcpu->stopping, 1);
    if (!vcpu->started)
        return vcpu->stats;

    g_mutex_lock(&vcpu->lock);
    while (!vcpu->finished &&
           g_cond_wait_until(&vcpu->cond, &vcpu->lock, deadline))
        ;
    /* The guest did not stop: make the loop end, kicking until it has
     * (a kick can race with the vCPU clearing immediate_exit). */
    while (!vcpu->finished) {
        g_atomic_int_set(&vcpu->quit, 1);
        kvm_vcpu__kick(vcpu);
        g_cond_wait_until(&vcpu->cond, &vcpu->lock,
                          g_get_monotonic_time() + 10 * G_TIME_SPAN_MILLISECOND);
    }
    g_mutex_unlock(&vcpu->lock);

    pthread_join(vcpu->thread, NULL);
    g_atomic_int_set(&vcpu->has_tid, 0);
    vcpu->started = false;
    return vcpu->stats;
}

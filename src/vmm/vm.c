/*
 * vm.c: a VM on the embedded VMM, and the seed 003 churn.
 */
#include "vm.h"

#include <inttypes.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dmg_i18n.h"

#define MiB (1024ULL * 1024)
#define GiB (1024ULL * MiB)
#define PAGE 4096ULL
#define VM_RAM_BASE (16 * MiB)           /* below it: the boot region */
#define VM_PCI_HOLE (3 * GiB)            /* where low RAM ends at most */
#define VM_HIGH_BASE (4 * GiB)
#define VM_TOUCH_MAX (64 * MiB)
#define VM_RESIZE_STEP (4 * MiB)
#define VM_MIN_RAM (64 * MiB)
#define VM_ROUND_UP(x, a) (((x) + (a) - 1) / (a) * (a))

typedef struct {
    kvm_vcpu *kvm;
    soft_vcpu *soft;
} vm_vcpu;

struct vm {
    vm_config cfg;
    vm_vcpu *vcpus;                      /* while started */
    memory_region *root, *boot, *ram, *low, *high, *hole;
    GPtrArray *device_regions;           /* memory_region * */
    address_space *as;
    kvm_accel *kvm;
    soft_accel *soft;
    guint64 low_size;
    guint64 touch_start, touch_end, hole_start;
    guint64 transactions;
    bool paused;                         /* vm__pause: vCPUs inhibited */
    /* vm__load_cpus: where the next vm__start resumes the vCPUs */
    kvm_vcpu_state *kvm_states;
    soft_vcpu_state *soft_states;
};

memslots *
vm__memslots(vm *v)
{
    return v->kvm ? &v->kvm->slots : &v->soft->slots;
}

static accel_blocker *
vm__blocker(vm *v)
{
    return v->kvm ? &v->kvm->blocker : &v->soft->blocker;
}

static guint64
vm__devices_size(const vm_config *cfg)
{
    guint64 sum = 0;

    for (guint i = 0; cfg->memory_devices && i < cfg->memory_devices->len; i++)
        sum += ((vm_memory_device *)g_ptr_array_index(cfg->memory_devices, i))->size;
    return sum;
}

static gboolean
vm__check_size(const vm_config *cfg, GError **error)
{
    guint64 host = (guint64)sysconf(_SC_PHYS_PAGES) * (guint64)sysconf(_SC_PAGESIZE);
    guint64 need = cfg->ram_size + vm__devices_size(cfg) + GUEST_BOOT_SIZE;

    if (cfg->ram_size < VM_MIN_RAM) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("the domain has %" PRIu64 " MiB of memory; dmaguard run needs at least %llu MiB to run its guest program next to an MMIO hole"),
                    (uint64_t)(cfg->ram_size / MiB), (unsigned long long)(VM_MIN_RAM / MiB));
        return FALSE;
    }
    if (need > host) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                    _("the domain needs %" PRIu64 " MiB of guest memory but this host has %" PRIu64 " MiB; lower <memory> or run it on a bigger host"),
                    (uint64_t)(need / MiB), (uint64_t)(host / MiB));
        return FALSE;
    }
    return TRUE;
}

/* pc_memory_init(): pc.ram below the PCI hole and above 4 GiB, both as
 * aliases of one RAM block; then the memory devices. */
static gboolean
vm__map_memory(vm *v, GError **error)
{
    guint64 dev_base;

    v->root = memory_region__new_container("system", G_MAXUINT64);
    if (!(v->boot = memory_region__new_ram("boot", GUEST_BOOT_SIZE, 0, error)) ||
        !(v->ram = memory_region__new_ram("pc.ram", v->cfg.ram_size, 0, error)))
        return FALSE;
    /* ram_block_add() -> qemu_madvise(QEMU_MADV_HUGEPAGE): transparent
     * huge pages for guest RAM, so faulting it in (a migration's
     * destination writes every page) costs one fault per 2 MiB.  Only a
     * hint: without THP the RAM works the same. */
    madvise(v->ram->ram, v->cfg.ram_size, MADV_HUGEPAGE);
    v->low_size = MIN(v->cfg.ram_size, VM_PCI_HOLE - VM_RAM_BASE);
    v->low = memory_region__new_alias("ram-below-4g", v->ram, 0, v->low_size);
    v->hole = memory_region__new_mmio("mmio-hole", 1 * MiB);
    v->device_regions = g_ptr_array_new();
    v->as = address_space__new("memory", v->root);
    memory_region_transaction__begin();
    memory_region__add_subregion(v->root, GUEST_BOOT_BASE, v->boot, 0);
    memory_region__add_subregion(v->root, VM_RAM_BASE, v->low, 0);
    if (v->cfg.ram_size > v->low_size) {
        v->high = memory_region__new_alias("ram-above-4g", v->ram, v->low_size,
                                           v->cfg.ram_size - v->low_size);
        memory_region__add_subregion(v->root, VM_HIGH_BASE, v->high, 0);
    }
    dev_base = VM_HIGH_BASE + VM_ROUND_UP(v->cfg.ram_size - v->low_size, GiB);
    for (guint i = 0; v->cfg.memory_devices && i < v->cfg.memory_devices->len; i++) {
        vm_memory_device *md = g_ptr_array_index(v->cfg.memory_devices, i);
        memory_region *mr = memory_region__new_ram(md->alias, md->size, 0, error);

        if (!mr)
            break;
        memory_region__add_subregion(v->root, dev_base, mr, 0);
        g_ptr_array_add(v->device_regions, mr);
        dev_base += VM_ROUND_UP(md->size, GiB);
    }
    if (v->cfg.log_dirty)
        memory_region__set_log(v->ram, true);
    memory_region_transaction__commit();
    return !(error && *error);
}

static gboolean
vm__create_accel(vm *v, GError **error)
{
    if (v->cfg.accel == VM_ACCEL_KVM) {
        if (!(v->kvm = kvm_accel__new(v->cfg.kvm_device, v->cfg.atomic, 0, error)))
            return FALSE;
    } else {
        v->soft = soft_accel__new(509, 0, v->cfg.atomic);
    }
    memory_listener__register(&vm__memslots(v)->listener, v->as);
    if (vm__memslots(v)->first_error) {
        g_propagate_error(error, g_error_copy(vm__memslots(v)->first_error));
        return FALSE;
    }
    return TRUE;
}

vm *
vm__new(const vm_config *cfg, GError **error)
{
    vm *v;

    if (!vm__check_size(cfg, error))
        return NULL;
    v = g_new0(vm, 1);
    v->cfg = *cfg;
    v->cfg.nr_vcpus = MAX(cfg->nr_vcpus, 1);
    if (!vm__map_memory(v, error) || !vm__create_accel(v, error)) {
        vm__free(v);
        return NULL;
    }
    /* The guest touches RAM it can reach in 32-bit mode; the hole goes
     * in the middle of it, the resize at the end of low RAM beyond it. */
    v->touch_start = VM_RAM_BASE;
    v->touch_end = VM_RAM_BASE + MIN(VM_TOUCH_MAX, (v->low_size / 2) & ~(MiB - 1));
    v->hole_start = (v->touch_start + v->touch_end) / 2 & ~(MiB - 1);
    guest_program__load(v->boot->ram);
    return v;
}

void
vm__free(vm *v)
{
    if (!v)
        return;
    vm__resume(v);                       /* a paused VM holds the blocker */
    g_free(v->kvm_states);
    g_free(v->soft_states);
    kvm_accel__free(v->kvm);
    soft_accel__free(v->soft);
    address_space__free(v->as);
    if (v->hole && v->hole->container)
        memory_region__del_subregion(v->root, v->hole);
    for (guint i = 0; v->root && i < v->root->subregions->len;)
        memory_region__del_subregion(v->root, g_ptr_array_index(v->root->subregions, i));
    for (guint i = 0; v->device_regions && i < v->device_regions->len; i++)
        memory_region__free(g_ptr_array_index(v->device_regions, i));
    g_clear_pointer(&v->device_regions, g_ptr_array_unref);
    memory_region__free(v->hole);
    memory_region__free(v->high);
    memory_region__free(v->low);
    memory_region__free(v->ram);
    memory_region__free(v->boot);
    memory_region__free(v->root);
    g_free(v);
}

/* One transaction of the churn: punch the hole, remove it, resize. */
static void
vm__churn(vm *v)
{
    switch (v->transactions++ % 4) {
    case 0:
        memory_region__add_subregion(v->root, v->hole_start, v->hole, 1);
        break;
    case 1:
        memory_region__del_subregion(v->root, v->hole);
        break;
    case 2:
        memory_region__set_size(v->low, v->low_size - VM_RESIZE_STEP);
        break;
    case 3:
        memory_region__set_size(v->low, v->low_size);
        break;
    }
}

static bool
vm__is_ram(void *opaque, uint64_t gpa)
{
    vm *v = opaque;
    memory_region_section s;

    return address_space__lookup(v->as, gpa, &s) && s.mr->type == MR_RAM;
}

/* Boot vCPU @i, or resume it from the migrated state. */
static gboolean
vm__start_vcpu(vm *v, vm_vcpu *c, unsigned i, GError **error)
{
    guest_params *p = guest_params__get(v->boot->ram, i);
    guint64 tick_ns = dirty_limit__tick_ns(v->cfg.dirty_rate, v->cfg.nr_vcpus);

    if (!v->kvm_states && !v->soft_states) {
        guest_params__init(v->boot->ram, i, v->cfg.nr_vcpus, v->touch_start, v->touch_end,
                           v->hole_start, v->hole_start + v->hole->size);
        p->pages_per_tick = v->cfg.dirty_rate ? DIRTY_LIMIT_PAGES_PER_TICK : 0;
    }
    if (v->soft) {
        c->soft = soft_vcpu__start(v->soft, p, vm__is_ram, v,
                                   v->soft_states ? &v->soft_states[i] : NULL, tick_ns);
        return TRUE;
    }
    if (!(c->kvm = kvm_vcpu__create(v->kvm->vm_fd, i, &v->kvm->blocker, vm__is_ram, v, error)))
        return FALSE;
    kvm_vcpu__set_throttle(c->kvm, tick_ns);
    return (!v->kvm_states || kvm_vcpu__load_state(c->kvm, &v->kvm_states[i], error)) &&
           kvm_vcpu__start(c->kvm, error);
}

static gboolean
vm__start_vcpus(vm *v, vm_vcpu *vcpus, GError **error)
{
    gboolean ok = TRUE;

    for (unsigned i = 0; ok && i < v->cfg.nr_vcpus; i++)
        ok = vm__start_vcpu(v, &vcpus[i], i, error);
    /* A migrated state is used once. */
    g_clear_pointer(&v->kvm_states, g_free);
    g_clear_pointer(&v->soft_states, g_free);
    return ok;
}

static void
vm__stop_vcpus(vm *v, vm_vcpu *vcpus, vm_result *r)
{
    for (unsigned i = 0; i < v->cfg.nr_vcpus; i++) {
        guest_params *p = guest_params__get(v->boot->ram, i);
        kvm_vcpu_stats s = { 0 };

        if (vcpus[i].soft) {
            s = soft_vcpu__stop(vcpus[i].soft);
        } else if (vcpus[i].kvm) {
            s = kvm_vcpu__stop(vcpus[i].kvm, p, 5000);
            kvm_vcpu__free(vcpus[i].kvm);
        }
        r->passes += s.passes;
        r->spurious_faults += s.spurious_faults;
        r->mmio_exits += s.mmio_exits;
        r->guest_errors += s.guest_errors;
    }
}

/* Every page a vCPU owns holds the number of the last pass it reported. */
static void
vm__checksum(vm *v, vm_result *r)
{
    guint64 stride = v->cfg.nr_vcpus * PAGE;
    guint64 bad = 0;

    for (unsigned i = 0; i < v->cfg.nr_vcpus; i++) {
        guint32 pass = guest_params__get(v->boot->ram, i)->pass;

        for (guint64 a = v->touch_start + i * PAGE; a < v->touch_end; a += stride) {
            guint32 word;

            if (a >= v->hole_start && a < v->hole_start + v->hole->size)
                continue;
            word = *(guint32 *)((guint8 *)v->ram->ram + (a - VM_RAM_BASE));
            r->checksum += word;
            r->checksum_expected += pass;
            bad += word != pass;
        }
    }
    r->checksum_ok = bad == 0 && r->passes > 0;
    r->touched_bytes = v->touch_end - v->touch_start;
}

address_space *
vm__address_space(vm *v)
{
    return v->as;
}

void *
vm__ram_hva(vm *v, guint64 gpa)
{
    if (gpa < VM_RAM_BASE || gpa >= VM_RAM_BASE + v->low_size)
        return NULL;
    return (guint8 *)v->ram->ram + (gpa - VM_RAM_BASE);
}

memory_region *
vm__ram_region(vm *v)
{
    return v->ram;
}

memory_region *
vm__boot_region(vm *v)
{
    return v->boot;
}

void
vm__pause(vm *v)
{
    if (v->paused)
        return;
    accel_ioctl__inhibit_begin(vm__blocker(v));
    v->paused = true;
}

void
vm__resume(vm *v)
{
    if (!v->paused)
        return;
    v->paused = false;
    accel_ioctl__inhibit_end(vm__blocker(v));
}

bool
vm__started(vm *v)
{
    return v->vcpus != NULL;
}

bool
vm__paused(vm *v)
{
    return v->paused;
}

/* ---- vCPU state for migration ---------------------------------------- */

#define VM_CPUS_HDR 8u
#define VM_SOFT_STATE_LEN 16u

gboolean
vm__save_cpus(vm *v, GByteArray *out, GError **error)
{
    guint32 hdr[2] = { GUINT32_TO_LE(v->soft ? VM_ACCEL_SOFT : VM_ACCEL_KVM),
                       GUINT32_TO_LE(v->cfg.nr_vcpus) };

    g_return_val_if_fail(v->vcpus && v->paused, FALSE);
    g_byte_array_append(out, (guint8 *)hdr, sizeof(hdr));
    for (unsigned i = 0; i < v->cfg.nr_vcpus; i++) {
        if (v->soft) {
            soft_vcpu_state st;
            guint32 pass;
            guint64 page;

            soft_vcpu__save_state(v->vcpus[i].soft, &st);
            pass = GUINT32_TO_LE(st.pass);
            page = GUINT64_TO_LE(st.next_page);
            g_byte_array_append(out, (guint8 *)&pass, 4);
            g_byte_array_append(out, (const guint8 *)"\0\0\0\0", 4);
            g_byte_array_append(out, (guint8 *)&page, 8);
        } else {
            kvm_vcpu_state st;

            /* The kernel's own x86 layout: both ends run this host's KVM. */
            if (!kvm_vcpu__save_state(v->vcpus[i].kvm, &st, error))
                return FALSE;
            g_byte_array_append(out, (guint8 *)&st, sizeof(st));
        }
    }
    return TRUE;
}

static const char *
vm__accel_name(guint32 accel)
{
    return accel == VM_ACCEL_KVM ? "kvm" : accel == VM_ACCEL_SOFT ? "soft" : "unknown";
}

gboolean
vm__load_cpus(vm *v, const guint8 *data, gsize len, GError **error)
{
    guint32 accel, nr;
    gsize each;

    g_return_val_if_fail(!v->vcpus, FALSE);
    g_clear_pointer(&v->kvm_states, g_free);
    g_clear_pointer(&v->soft_states, g_free);
    if (!data)
        return TRUE;
    if (len < VM_CPUS_HDR)
        goto err_len;
    memcpy(&accel, data, 4);
    memcpy(&nr, data + 4, 4);
    accel = GUINT32_FROM_LE(accel);
    nr = GUINT32_FROM_LE(nr);
    if (accel != (v->soft ? VM_ACCEL_SOFT : VM_ACCEL_KVM)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    _("the migration source ran its vCPUs on the %s accelerator, this destination uses %s; run both with the same --accel"),
                    vm__accel_name(accel), vm__accel_name(v->soft ? VM_ACCEL_SOFT : VM_ACCEL_KVM));
        return FALSE;
    }
    if (nr != v->cfg.nr_vcpus) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    _("the migration source has %u vCPUs, this destination %u; both need the same number"),
                    nr, v->cfg.nr_vcpus);
        return FALSE;
    }
    each = v->soft ? VM_SOFT_STATE_LEN : sizeof(kvm_vcpu_state);
    if (len != VM_CPUS_HDR + nr * each)
        goto err_len;
    data += VM_CPUS_HDR;
    if (!v->soft) {
        v->kvm_states = g_memdup2(data, nr * each);
        return TRUE;
    }
    v->soft_states = g_new0(soft_vcpu_state, nr);
    for (guint32 i = 0; i < nr; i++, data += each) {
        guint32 pass;
        guint64 page;

        memcpy(&pass, data, 4);
        memcpy(&page, data + 8, 8);
        v->soft_states[i].pass = GUINT32_FROM_LE(pass);
        v->soft_states[i].next_page = GUINT64_FROM_LE(page);
    }
    return TRUE;

err_len:
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                _("vCPU state of %" G_GSIZE_FORMAT " bytes does not fit %s vCPUs"),
                len, v->soft ? "soft" : "kvm");
    return FALSE;
}

bool
vm__ram_offset(vm *v, guint64 gpa, guint64 *offset)
{
    if (gpa >= VM_RAM_BASE && gpa < VM_RAM_BASE + v->low_size) {
        *offset = gpa - VM_RAM_BASE;
        return true;
    }
    if (v->high && gpa >= VM_HIGH_BASE && gpa - VM_HIGH_BASE < v->high->size) {
        *offset = v->low_size + (gpa - VM_HIGH_BASE);
        return true;
    }
    return false;
}

void
vm__touch_range(vm *v, guint64 *start, guint64 *end)
{
    *start = v->touch_start;
    *end = v->touch_end;
}

void
vm__balloon_range(vm *v, guint64 *start, guint64 *end)
{
    *start = v->touch_end;
    *end = VM_RAM_BASE + v->low_size;
}

gboolean
vm__start(vm *v, GError **error)
{
    v->vcpus = g_new0(vm_vcpu, v->cfg.nr_vcpus);
    return vm__start_vcpus(v, v->vcpus, error);
}

void
vm__stop(vm *v, vm_result *r)
{
    *r = (vm_result){ 0 };
    vm__resume(v);
    if (!v->vcpus)
        return;
    vm__stop_vcpus(v, v->vcpus, r);
    g_clear_pointer(&v->vcpus, g_free);
    r->slots_used = memslots__used(vm__memslots(v));
    vm__checksum(v, r);
}

gboolean
vm__run(vm *v, double seconds, guint64 min_transactions, vm_result *r, GError **error)
{
    g_autofree vm_vcpu *vcpus = g_new0(vm_vcpu, v->cfg.nr_vcpus);
    gint64 t0 = g_get_monotonic_time();
    gint64 deadline = t0 + (gint64)(seconds * G_USEC_PER_SEC);
    gboolean ok;

    *r = (vm_result){ 0 };
    ok = vm__start_vcpus(v, vcpus, error);
    while (ok && (g_get_monotonic_time() < deadline || v->transactions < min_transactions)) {
        vm__churn(v);
        if (v->cfg.churn_pause_us)
            g_usleep(v->cfg.churn_pause_us);
    }
    /* Leave the map as it was: no hole, full low RAM. */
    while (v->transactions % 4)
        vm__churn(v);
    vm__stop_vcpus(v, vcpus, r);
    r->seconds = (g_get_monotonic_time() - t0) / (double)G_USEC_PER_SEC;
    r->transactions = v->transactions;
    r->commits = vm__memslots(v)->stats.commits;
    r->inhibited_commits = vm__memslots(v)->stats.inhibited_commits;
    r->ioctls = vm__memslots(v)->stats.ioctls;
    r->ioctl_ns = vm__memslots(v)->stats.ioctl_ns;
    r->commit_ns = vm__memslots(v)->stats.commit_ns;
    r->kicks = vm__blocker(v)->kicks;
    r->slots_used = memslots__used(vm__memslots(v));
    vm__checksum(v, r);
    if (ok && v->cfg.log_dirty) {
        r->dirty_pages = memslots__sync_dirty(vm__memslots(v), v->ram, error);
        ok = r->dirty_pages != G_MAXUINT64;
    }
    if (ok && vm__memslots(v)->first_error) {
        g_propagate_error(error, g_error_copy(vm__memslots(v)->first_error));
        ok = FALSE;
    }
    return ok;
}

/*
 * accel/soft_accel.c: memslots and vCPUs in software.
 */
#include "accel/soft_accel.h"

#include <gio/gio.h>
#include <errno.h>

#include "dmg_i18n.h"

#define PAGE_SIZE 4096u
/* Pages one "KVM_RUN" touches before it returns to the VMM. */
#define SOFT_RUN_PAGES 64

struct soft_vcpu {
    soft_accel *sa;
    guest_params *params;
    kvm_vcpu_is_ram_fn is_ram;
    void *opaque;
    accel_vcpu_slot *slot;
    GThread *thread;
    gint immediate_exit;
    gint quit;
    kvm_vcpu_stats stats;
    /* guest state that survives between "runs" */
    guint32 pass;
    guint64 next_page;
    guint tick_left;                     /* pages until GUEST_PORT_TICK */
    dirty_limit limit;
};

static int
soft_set_region(void *opaque, const memslot *s, GError **error)
{
    soft_accel *sa = opaque;
    soft_slot fresh = { 0 };
    int ret = 0;

    g_rw_lock_writer_lock(&sa->table_lock);
    while (sa->table->len <= (guint)s->slot)
        g_array_append_val(sa->table, fresh);
    if (s->memory_size) {
        /* kvm_set_memory_region(): a new slot must not overlap another. */
        for (guint i = 0; i < sa->table->len; i++) {
            soft_slot *o = &g_array_index(sa->table, soft_slot, i);

            if (i != (guint)s->slot && o->used && s->start_addr < o->start + o->size &&
                o->start < s->start_addr + s->memory_size) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                            _("soft memslot %d at 0x%llx overlaps slot %u: %s"), s->slot,
                            (unsigned long long)s->start_addr, i, g_strerror(EEXIST));
                ret = -1;
                break;
            }
        }
    }
    if (ret == 0)
        g_array_index(sa->table, soft_slot, s->slot) = (soft_slot){
            .used = s->memory_size != 0, .start = s->start_addr,
            .size = s->memory_size, .hva = s->ram };
    g_rw_lock_writer_unlock(&sa->table_lock);
    return ret;
}

static int
soft_get_dirty_log(void *opaque, memslot *s, GError **error)
{
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                _("the software accelerator does not track dirty pages"));
    return -1;
}

static void
soft_kick(void *opaque)
{
    soft_vcpu *vcpu = opaque;

    g_atomic_int_set(&vcpu->immediate_exit, 1);
}

soft_accel *
soft_accel__new(unsigned nr_memslots, guint64 max_slot_size, bool atomic)
{
    soft_accel *sa = g_new0(soft_accel, 1);
    memslot_backend backend = { "soft", soft_set_region, soft_get_dirty_log, sa };

    g_rw_lock_init(&sa->table_lock);
    sa->table = g_array_new(FALSE, TRUE, sizeof(soft_slot));
    accel_blocker__init(&sa->blocker, soft_kick);
    memslots__init(&sa->slots, &backend, &sa->blocker, nr_memslots, max_slot_size, atomic);
    return sa;
}

void
soft_accel__free(soft_accel *sa)
{
    if (!sa)
        return;
    memory_listener__unregister(&sa->slots.listener);
    memslots__destroy(&sa->slots);
    accel_blocker__destroy(&sa->blocker);
    g_array_unref(sa->table);
    g_rw_lock_clear(&sa->table_lock);
    g_free(sa);
}

guint8 *
soft_accel__translate(soft_accel *sa, guint64 gpa)
{
    guint8 *hva = NULL;

    g_rw_lock_reader_lock(&sa->table_lock);
    for (guint i = 0; i < sa->table->len; i++) {
        soft_slot *s = &g_array_index(sa->table, soft_slot, i);

        if (s->used && gpa >= s->start && gpa < s->start + s->size) {
            hva = s->hva + (gpa - s->start);
            break;
        }
    }
    g_rw_lock_reader_unlock(&sa->table_lock);
    return hva;
}

/* One guest page access: what accel/guest_program.S does, in C.  An address
 * without a slot is an MMIO exit; reads of it return all ones. */
static void
soft_vcpu__touch(soft_vcpu *v, guint64 gpa)
{
    guint8 *hva = soft_accel__translate(v->sa, gpa);
    guint32 val = 0xffffffffu;

    if (hva) {
        val = *(volatile guint32 *)hva;
    } else {
        v->stats.mmio_exits++;
        if (v->is_ram && v->is_ram(v->opaque, gpa))
            v->stats.spurious_faults++;
    }
    if (val != v->pass - 1)
        v->params->errors++;
    if (hva)
        *(volatile guint32 *)hva = v->pass;
}

/* accel/guest_program.S's tick: true when this page ends a tick's worth. */
static bool
soft_vcpu__tick_due(soft_vcpu *v)
{
    if (!v->params->pages_per_tick)
        return false;
    if (v->tick_left > 1) {
        v->tick_left--;
        return false;
    }
    v->tick_left = v->params->pages_per_tick;
    return true;
}

/* One KVM_RUN: a batch of pages, or until kicked or a tick (*tick). */
static bool
soft_vcpu__run(soft_vcpu *v, bool *tick)
{
    guest_params *p = v->params;
    guint64 stride = (guint64)p->nr_vcpus * PAGE_SIZE;

    for (int n = 0; n < SOFT_RUN_PAGES; n++) {
        guint64 gpa = p->ram_start + (guint64)p->id * PAGE_SIZE + v->next_page * stride;

        if (g_atomic_int_get(&v->immediate_exit)) {
            v->stats.eintr++;
            return true;
        }
        if (gpa >= p->ram_end) {
            p->pass = v->pass;
            v->stats.passes++;
            v->next_page = 0;
            if (p->stop) {
                v->stats.guest_errors = p->errors;
                return false;
            }
            v->pass++;
            continue;
        }
        if (!(gpa >= p->hole_start && gpa < p->hole_end)) {
            soft_vcpu__touch(v, gpa);
            *tick = soft_vcpu__tick_due(v);
        }
        v->next_page++;
        if (*tick)
            return true;
    }
    return true;
}

static gpointer
soft_vcpu__thread(gpointer data)
{
    soft_vcpu *v = data;
    bool more = true;

    while (more && !g_atomic_int_get(&v->quit)) {
        bool tick = false;

        accel_cpu_ioctl__begin(v->slot);
        v->stats.run_calls++;
        more = soft_vcpu__run(v, &tick);
        g_atomic_int_set(&v->immediate_exit, 0);
        accel_cpu_ioctl__end(v->slot);
        /* The exit to the host: held there, outside the "ioctl". */
        if (tick && !v->params->stop)
            dirty_limit__tick(&v->limit);
    }
    return NULL;
}

soft_vcpu *
soft_vcpu__start(soft_accel *sa, guest_params *params, kvm_vcpu_is_ram_fn is_ram,
                 void *opaque, const soft_vcpu_state *state, guint64 tick_ns)
{
    soft_vcpu *v = g_new0(soft_vcpu, 1);

    v->sa = sa;
    v->params = params;
    v->is_ram = is_ram;
    v->opaque = opaque;
    v->pass = state ? state->pass : 1;
    v->next_page = state ? state->next_page : 0;
    v->limit.tick_ns = tick_ns;
    v->slot = accel_blocker__add_vcpu(&sa->blocker, v);
    v->thread = g_thread_new("soft-vcpu", soft_vcpu__thread, v);
    return v;
}

void
soft_vcpu__save_state(soft_vcpu *v, soft_vcpu_state *state)
{
    state->pass = v->pass;
    state->next_page = v->next_page;
}

kvm_vcpu_stats
soft_vcpu__stop(soft_vcpu *v)
{
    kvm_vcpu_stats stats;

    v->params->stop = 1;
    g_thread_join(v->thread);
    stats = v->stats;
    accel_blocker__del_vcpu(&v->sa->blocker, v->slot);
    g_free(v);
    return stats;
}

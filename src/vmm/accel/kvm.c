/*
 * accel/kvm.c: the VM file descriptor and the KVM memslot backend.
 */
#include "accel/kvm.h"

#include <gio/gio.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "dmg_i18n.h"
#include "accel/kvm_vcpu.h"

/* Where KVM on Intel keeps the real-mode TSS: three pages below 4 GiB,
 * above any RAM this VMM maps (kvmtool uses the same address). */
#define KVM_TSS_ADDR 0xfffbd000UL

static int
kvm_set_region(void *opaque, const memslot *s, GError **error)
{
    kvm_accel *kvm = opaque;
    struct kvm_userspace_memory_region r = {
        .slot = s->slot,
        .flags = s->flags & MEMSLOT_LOG_DIRTY_PAGES ? KVM_MEM_LOG_DIRTY_PAGES : 0,
        .guest_phys_addr = s->start_addr,
        .memory_size = s->memory_size,
        .userspace_addr = (guint64)(uintptr_t)s->ram,
    };

    if (ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) == 0)
        return 0;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                _("KVM_SET_USER_MEMORY_REGION slot %d at 0x%llx (%llu bytes) failed: %s"),
                s->slot, (unsigned long long)s->start_addr,
                (unsigned long long)s->memory_size, g_strerror(errno));
    return -1;
}

static int
kvm_get_dirty_log(void *opaque, memslot *s, GError **error)
{
    kvm_accel *kvm = opaque;
    struct kvm_dirty_log d = { .slot = s->slot, .dirty_bitmap = s->dirty_bmap };

    if (ioctl(kvm->vm_fd, KVM_GET_DIRTY_LOG, &d) == 0)
        return 0;
    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                _("KVM_GET_DIRTY_LOG slot %d failed: %s"), s->slot, g_strerror(errno));
    return -1;
}

static bool
kvm_accel__open(kvm_accel *kvm, const char *dev, GError **error)
{
    int v;

    if ((kvm->kvm_fd = open(dev, O_RDWR | O_CLOEXEC)) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("cannot open %s: %s; KVM needs the kvm module loaded and read-write access to the device (are you in the kvm group?)"),
                    dev, g_strerror(errno));
        return false;
    }
    if ((v = ioctl(kvm->kvm_fd, KVM_GET_API_VERSION, 0)) != KVM_API_VERSION) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    _("%s speaks KVM API %d, this VMM needs %d"), dev, v, KVM_API_VERSION);
        return false;
    }
    if ((kvm->vm_fd = ioctl(kvm->kvm_fd, KVM_CREATE_VM, 0)) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("KVM_CREATE_VM failed: %s"), g_strerror(errno));
        return false;
    }
    if (ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    _("KVM_SET_TSS_ADDR failed: %s"), g_strerror(errno));
        return false;
    }
    v = ioctl(kvm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
    kvm->nr_memslots = v > 0 ? (unsigned)v : 32;
    kvm->sync_mmu = ioctl(kvm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_MMU) > 0;
    return true;
}

kvm_accel *
kvm_accel__new(const char *dev, bool atomic, guint64 max_slot_size, GError **error)
{
    kvm_accel *kvm = g_new0(kvm_accel, 1);
    memslot_backend backend = { "kvm", kvm_set_region, kvm_get_dirty_log, kvm };

    kvm->kvm_fd = kvm->vm_fd = -1;
    if (!kvm_accel__open(kvm, dev ? dev : "/dev/kvm", error)) {
        if (kvm->vm_fd >= 0)
            close(kvm->vm_fd);
        if (kvm->kvm_fd >= 0)
            close(kvm->kvm_fd);
        g_free(kvm);
        return NULL;
    }
    accel_blocker__init(&kvm->blocker, kvm_vcpu__kick);
    memslots__init(&kvm->slots, &backend, &kvm->blocker, kvm->nr_memslots,
                   max_slot_size, atomic);
    return kvm;
}

void
kvm_accel__free(kvm_accel *kvm)
{
    if (!kvm)
        return;
    memory_listener__unregister(&kvm->slots.listener);
    memslots__destroy(&kvm->slots);
    accel_blocker__destroy(&kvm->blocker);
    close(kvm->vm_fd);
    close(kvm->kvm_fd);
    g_free(kvm);
}

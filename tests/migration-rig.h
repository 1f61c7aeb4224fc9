/*
 * migration-rig.h: shared helpers of the migration tests.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "accel/kvm_vcpu.h"
#include "machine.h"
#include "migration/migration.h"
#include "vfio/vfio.h"
#include "vm.h"

#define MiB (1024ULL * 1024)

bool kvm_usable(void);
/* KVM where /dev/kvm works, else the software accelerator. */
vm_accel best_accel(void);
vm *new_vm(vm_accel accel, guint64 ram_mib);
/* The same, its guest dirtying at most @dirty_rate bytes/s (0: no limit). */
vm *new_vm_rate(vm_accel accel, guint64 ram_mib, guint64 dirty_rate);
guest_params *params_of(vm *v, unsigned id);
/* Until every vCPU of @v has reported @passes more passes. */
void wait_passes(vm *v, guint32 passes);
/* A VM of @ram_mib running the guest program on 2 vCPUs. */
vm *running_vm(vm_accel accel, guint64 ram_mib);
/* The source after a refused, cancelled or failed migration: running, not
 * logging, its guest going on with every page it checks intact. */
void assert_source_runs(vm *src);

/* A q35 machine whose soft VFIO containers map @v's guest memory (its
 * savevm entries migrate with it); @with_viommu: an intel-iommu with
 * interrupt remapping. */
vmm_machine *machine_on(vm *v, vm_accel accel, bool iommu_pt, bool with_viommu);
/* An mlx5_vfio_pci-like VF: migration, dirty tracking, P2P (or a plain
 * vfio-pci without @caps_migration), in IOMMU group @group (20 or 21). */
vfio_device *add_device(vmm_machine *m, const char *alias, int group, bool caps_migration,
                        vfio_enable_migration enable, bool iommu_pt);
/* Free @m; no page may stay pinned. */
void free_machine(vmm_machine *m);

/* A destination on a thread: it receives into @dst (with the devices of
 * @m, or none) and closes @fd when done, as a process would.  @p NULL: a
 * 20 s timeout, no autostart. */
typedef struct receiver {
    GThread *thread;
    vm *dst;
    vmm_machine *m;
    int fd;
    migration_params p;
    migration_stats st;
    GError *err;
    gboolean ok;
} receiver;

receiver *receiver_start(vm *dst, vmm_machine *m, int fd, const migration_params *p);
/* Wait for the receive to end; receiver_free waits if this was not called. */
void receiver_join(receiver *rx);
void receiver_free(receiver *rx);
void socket_pair(int sv[2]);

/*
 * migration-rig.h: shared helpers of the migration tests.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "kvm_vcpu.h"
#include "vm.h"

#define MiB (1024ULL * 1024)

bool kvm_usable(void);
/* KVM where /dev/kvm works, else the software accelerator. */
vm_accel best_accel(void);
vm *new_vm(vm_accel accel, guint64 ram_mib);
guest_params *params_of(vm *v, unsigned id);
/* Until every vCPU of @v has reported @passes more passes. */
void wait_passes(vm *v, guint32 passes);
/* A VM of @ram_mib running the guest program on 2 vCPUs. */
vm *running_vm(vm_accel accel, guint64 ram_mib);
/* The source after a refused, cancelled or failed migration: running, not
 * logging, its guest going on with every page it checks intact. */
void assert_source_runs(vm *src);

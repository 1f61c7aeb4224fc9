/*
 * machine.h: the embedded VMM's machine object: its lifecycle.  It owns the
 * discard manager, the migration blocker registry, the address spaces and
 * every realized device (machine_state.h).  A dry run realizes the same
 * objects without KVM, pinning or DMA; verdicts are read off them
 * afterwards.
 */
#pragma once

#include "machine_state.h"

vmm_machine *vmm_machine__new(const vmm_machine_config *cfg);
void vmm_machine__free(vmm_machine *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(vmm_machine, vmm_machine__free);

/* Accelerator and memory backend: take their discard disables. */
void vmm_machine__init_accel(vmm_machine *m);

/* Machine creation done: evaluate conditions that depend on every
 * device (qemu_machine_creation_done / the seed 004 run-time check). */
void vmm_machine__done(vmm_machine *m);


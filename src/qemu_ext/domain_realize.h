/*
 * domain_realize.h: build the VMM machine a domain describes.  This is the
 * single path from domain XML to the device model; check reads verdicts
 * off its result, and the argv builder and the real run realize the same.
 */
#pragma once

#include "domain_conf.h"
#include "host_profile.h"
#include "machine.h"
#include "qemu_profile.h"
#include "memory/memory.h"
#include "vfio/vfio.h"

/* Realize @def's devices on a new machine, with the dry-run backend unless
 * @backend is given.  Configuration errors become error findings on the
 * machine; the result is never NULL. */
vmm_machine *dmg_domain_realize(const dmgDomainDef *def, dmgHostProfile *host,
                                const dmgQemuProfile *qemu,
                                const vfio_backend_ops *backend);
/* The same on running guest memory: VFIO containers map @memory as the
 * devices attach, and the balloon discards from it. */
vmm_machine *dmg_domain_realize_on(const dmgDomainDef *def, dmgHostProfile *host,
                                   const dmgQemuProfile *qemu,
                                   const vfio_backend_ops *backend,
                                   address_space *memory);

/* The IOMMU group a hostdev lands in: sysfs, or a synthetic negative id
 * for a device that is not on this host (a singleton group). */
int dmg_hostdev_group(const dmgDomainDef *def, const dmgHostdevDef *h,
                      dmgHostProfile *host);

/* libvirt's qemuMigrationSrcIsAllowedHostdev(), where this libvirt and
 * this QEMU run it (libvirt_migration.c). */
/* libvirt_validate.c: virDomainDefHostdevValidate(), duplicates. */
void dmg_libvirt_validate_hostdevs(const dmgDomainDef *def, vmm_machine *m);
void dmg_libvirt_validate_addresses(const dmgDomainDef *def, vmm_machine *m);
void dmg_libvirt_validate_aliases(const dmgDomainDef *def, vmm_machine *m);
void dmg_libvirt_validate_hugepages(const dmgDomainDef *def, vmm_machine *m);
/* libvirt_validate.c: the machine type check of qemuValidateDomainDef(). */
void dmg_libvirt_validate_machine(const dmgDomainDef *def, const dmgQemuProfile *qemu,
                                  vmm_machine *m);
/* libvirt_validate.c: qemuValidateDomainVCpuTopology(). */
void dmg_libvirt_validate_vcpu_topology(const dmgDomainDef *def, const dmgQemuProfile *qemu,
                                        vmm_machine *m);
/* libvirt_validate.c: qemuDomainDefValidateMemoryHotplug() and
 * virDomainMemoryDefValidate(). */
void dmg_libvirt_validate_memory(const dmgDomainDef *def, const dmgHostProfile *host,
                                 vmm_machine *m);
/* libvirt_validate.c: virDomainDefIOMMUValidate() and
 * qemuValidateDomainDeviceDefIOMMU(). */
void dmg_libvirt_validate_iommu(const dmgDomainDef *def, vmm_machine *m);
void dmg_libvirt_migration_check(const dmgDomainDef *def, const dmgHostProfile *host,
                                 const dmgQemuProfile *qemu, vmm_machine *m);
/* libvirt's qemuHostdevPreparePCIDevicesCheckSupport(), the start check
 * of PCI hostdevs against the host's VFIO support, as the host's domain
 * capabilities show it (libvirt_hostdev.c, host_domcaps.h). */
void dmg_libvirt_hostdev_check(const dmgDomainDef *def, dmgHostProfile *host,
                               vmm_machine *m);
/* What `virsh migrate` prints after "error: " for the machine's blockers
 * on this libvirt and QEMU, and the layer that refuses (@layer); NULL when
 * nothing blocks.  Caller frees. */
char *dmg_libvirt_migration_refusal(const dmgHostProfile *host, const dmgQemuProfile *qemu,
                                    vmm_machine *m, migration_layer *layer);

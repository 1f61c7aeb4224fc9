/*
 * libvirt_memlock.h: the RLIMIT_MEMLOCK libvirt's QEMU driver gives the
 * QEMU process at start, qemuDomainGetMemLockLimitBytes() of the judged
 * libvirt (src/qemu/qemu_domain.c).
 */
#pragma once

#include <stdbool.h>

#include "domain_conf.h"
#include "host_profile.h"

/* qemuDomainGetMemLockLimitBytes(@def, @force_vfio) as the libvirt of
 * @host computes it for the started domain (sizes aligned by
 * qemu_postparse.c), in bytes: 0 when libvirt sets no limit, and libvirt's
 * VIR_DOMAIN_MEMORY_PARAM_UNLIMITED (no limit at all, <locked/>).  @host
 * also gives the IOMMU groups that place hostdevs on a pSeries guest's
 * PHBs, and its NVLink2 bridges.  libvirt passes @force_vfio = false at
 * start (qemuProcessLaunch()), true when it hotplugs a VFIO device or an
 * NVMe disk. */
/* A limit whose bytes do not fit in a signed 64-bit number: libvirt's own
 * KiB << 10 wraps there (issue 14: checked arithmetic, "exceeds", never a
 * wrapped number). */
#define DMG_MEMLOCK_EXCEEDS G_MAXUINT64

guint64 dmg_qemu_domain_get_memlock_limit_bytes(const dmgDomainDef *def,
                                                dmgHostProfile *host,
                                                bool force_vfio);

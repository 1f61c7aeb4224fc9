/*
 * host_iommu.h: the host IOMMU's dirty tracking (host_iommu.c).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* 1 when every unit under SYSFS_ROOT/class/iommu tracks dirty pages, 0
 * when one clearly does not, -1 when sysfs does not say. */
int dmg_iommu_read_dirty_tracking(const char *sysfs_root);

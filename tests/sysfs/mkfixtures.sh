#!/bin/sh
# mkfixtures.sh: (re)build the fake sysfs trees the tests point --sysfs at.
#
# The trees are committed, because tests run from a clean checkout; this
# script exists so they can be regenerated and reviewed instead of being
# edited by hand.  Running it twice gives the same trees.
#
# Every symlink is relative and takes the shortest path through the common
# ancestor, which is what kernfs does (kernfs_get_target_path), so
# bus/pci/devices/X -> ../../../devices/... exactly as on a real host.
#
# Usage: tests/sysfs/mkfixtures.sh        (from anywhere)

set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=

# mkfile PATH CONTENT: a sysfs attribute, one value and a newline.
mkfile() {
    mkdir -p "$root/$(dirname "$1")"
    printf '%s\n' "$2" > "$root/$1"
}

# mklink LINK TARGET: both relative to the tree root.  realpath -ms is
# purely lexical, so the target need not exist yet and symlinks already in
# the tree are not followed.
mklink() {
    dir=$(dirname "$1")
    mkdir -p "$root/$dir"
    rel=$(realpath -ms --relative-to="$root/$dir" "$root/$2")
    ln -sfn "$rel" "$root/$1"
}

# pci_dev PARENT ADDR VENDOR DEVICE CLASS GROUP DRIVER
# PARENT is the device directory above it, e.g. pci0000:00/0000:00:01.0.
pci_dev() {
    dev="devices/$1/$2"
    mkfile "$dev/vendor" "$3"
    mkfile "$dev/device" "$4"
    mkfile "$dev/class" "$5"
    mklink "$dev/subsystem" "bus/pci"
    mklink "bus/pci/devices/$2" "$dev"
    iommu_group "$6" "$dev"
    mklink "$dev/driver" "bus/pci/drivers/$7"
    mklink "bus/pci/drivers/$7/$2" "$dev"
}

# iommu_group N DEVDIR: put DEVDIR in group N, both directions.
iommu_group() {
    mkfile "kernel/iommu_groups/$1/type" "DMA"
    mklink "$2/iommu_group" "kernel/iommu_groups/$1"
    mklink "kernel/iommu_groups/$1/devices/$(basename "$2")" "$2"
}

# mdev_type PARENTDIR TYPE NAME: an mdev_supported_types entry.
mdev_type() {
    t="devices/$1/mdev_supported_types/$2"
    mkfile "$t/name" "$3"
    mkfile "$t/device_api" "vfio-pci"
    mkfile "$t/available_instances" "1"
}

# mdev PARENTDIR TYPE UUID GROUP
mdev() {
    dev="devices/$1/$3"
    mklink "$dev/mdev_type" "devices/$1/mdev_supported_types/$2"
    mklink "devices/$1/mdev_supported_types/$2/devices/$3" "$dev"
    mklink "$dev/subsystem" "bus/mdev"
    mklink "bus/mdev/devices/$3" "$dev"
    iommu_group "$4" "$dev"
    mklink "$dev/driver" "bus/mdev/drivers/vfio_mdev"
    mklink "bus/mdev/drivers/vfio_mdev/$3" "$dev"
}

# intel_iommu NAME CAP ECAP: a VT-d unit.  intel-iommu registers it with
# no parent device (iommu_device_sysfs_add), so it lives under
# devices/virtual/iommu, and its registers are printed as "%llx" in the
# intel-iommu attribute group.
intel_iommu() {
    dev="devices/virtual/iommu/$1"
    mkfile "$dev/intel-iommu/version" "1:0"
    mkfile "$dev/intel-iommu/cap" "$2"
    mkfile "$dev/intel-iommu/ecap" "$3"
    mklink "class/iommu/$1" "$dev"
}

# amd_iommu NAME PCIDEV FEATURES: an AMD-Vi unit, registered under its own
# PCI function (0000:00:00.2 on real hosts); FEATURES is what
# amd-iommu/features prints: "EFR:EFR2" today, "EFR" on old kernels.
amd_iommu() {
    dev="devices/pci0000:00/$2/iommu/$1"
    mkfile "$dev/amd-iommu/cap" "190b0f"
    mkfile "$dev/amd-iommu/features" "$3"
    mklink "class/iommu/$1" "$dev"
}

# hex VALUE: a register as the kernel's "%llx" prints it.
hex() {
    printf '%x' "$1"
}

# The register bits host_profile.c reads (see the comment there for the
# kernel macros).  Only these bits matter; the rest of each value is
# made up to look like a register, not copied from a real host.
ECAP_SMTS=$((1 << 43))
ECAP_SLADS=$((1 << 45))
ECAP_SMPWC=$((1 << 48))
INTEL_CAP=d2078c106f0466
ECAP_BASE=0xf050da
ECAP_DIRTY=$(hex $((ECAP_BASE | ECAP_SMTS | ECAP_SLADS | ECAP_SMPWC)))
ECAP_NO_SLADS=$(hex $((ECAP_BASE | ECAP_SMTS | ECAP_SMPWC)))
EFR_HDSUP=$((1 << 52))
EFR_BASE=0x58f77ef22294ade
EFR_DIRTY=$(hex $((EFR_BASE | EFR_HDSUP)))
EFR_NO_DIRTY=$(hex $((EFR_BASE & ~EFR_HDSUP)))

# The HiSilicon accelerator VF of host1: migratable, no device dirty
# tracking, so only IOMMU dirty tracking can lift its blocker.
hisi_vf() {
    pci_dev pci0000:3a/0000:3a:02.0 0000:3c:00.1 0x19e5 0xa251 0x120000 22 hisi_acc_vfio_pci
}

dma_entry_limit() {
    mkfile "module/vfio_iommu_type1/parameters/dma_entry_limit" "$1"
}

# A GPU and its HDMI audio function: one group, because the functions of
# a multifunction device without ACS cannot be isolated from each other.
gpu_pair() {
    pci_dev pci0000:00/0000:00:01.0 0000:01:00.0 0x10de 0x2204 0x030000 1 vfio-pci
    pci_dev pci0000:00/0000:00:01.0 0000:01:00.1 0x10de 0x1aef 0x040300 1 vfio-pci
}

# begin NAME: start a tree from nothing, so removed entries do not linger.
begin() {
    root="$here/$1"
    rm -rf "$root"
    mkdir -p "$root"
}

# Fail loudly if any ../ count is wrong.
check() {
    broken=$(find "$root" -xtype l)
    if [ -n "$broken" ]; then
        echo "mkfixtures.sh: dangling symlinks:" >&2
        echo "$broken" >&2
        exit 1
    fi
}

# host1: one of each kind of device dmaguard reasons about.
# 0000:af:00.0 is deliberately absent: the device-not-on-host case.
begin host1
gpu_pair
# mlx5 VFs behind their own root port, each VF isolated by ACS.
pci_dev pci0000:3a/0000:3a:00.0 0000:3b:00.1 0x15b3 0x101e 0x020000 20 mlx5_vfio_pci
pci_dev pci0000:3a/0000:3a:00.0 0000:3b:00.2 0x15b3 0x101e 0x020000 21 mlx5_vfio_pci
pci_dev pci0000:3a/0000:3a:02.0 0000:3c:00.1 0x19e5 0xa251 0x120000 22 hisi_acc_vfio_pci
# The integrated GPU is the mdev parent; it stays on its host driver.
pci_dev pci0000:00 0000:00:02.0 0x8086 0x3e92 0x030000 2 i915
mdev_type pci0000:00/0000:00:02.0 i915-GVTg_V5_4 GVTg_V5_4
mdev_type pci0000:00/0000:00:02.0 i915-GVTg_V5_8 GVTg_V5_8
mdev pci0000:00/0000:00:02.0 i915-GVTg_V5_4 4b20d080-1b54-4048-85b3-a6a62d165c01 30
mdev pci0000:00/0000:00:02.0 i915-GVTg_V5_8 c0ffee00-0000-4000-8000-000000000002 31
dma_entry_limit 65535
check

# smalllimit: an administrator lowered type1's mapping limit.
begin smalllimit
gpu_pair
dma_entry_limit 1000
check

# IOMMU dirty tracking (class/iommu).  host1 and smalllimit have no
# class/iommu at all: the "nothing known" case.

# intel-dirty: two VT-d units, both with scalable mode, second-stage A/D
# (SSADS) and coherent page walks.
begin intel-dirty
hisi_vf
intel_iommu dmar0 "$INTEL_CAP" "$ECAP_DIRTY"
intel_iommu dmar1 "$INTEL_CAP" "$ECAP_DIRTY"
check

# intel-mixed: dmar1 lacks SSADS, so devices behind it cannot be tracked.
begin intel-mixed
hisi_vf
intel_iommu dmar0 "$INTEL_CAP" "$ECAP_DIRTY"
intel_iommu dmar1 "$INTEL_CAP" "$ECAP_NO_SLADS"
check

# amd-dirty: two AMD-Vi units with HDSup, printed "EFR:EFR2" (Linux 6.7+).
begin amd-dirty
hisi_vf
amd_iommu ivhd0 0000:00:00.2 "$EFR_DIRTY:0"
amd_iommu ivhd1 0000:00:00.3 "$EFR_DIRTY:0"
check

# amd-dirty-efr-only: the same, as kernels before EFR2 printed it.
begin amd-dirty-efr-only
hisi_vf
amd_iommu ivhd0 0000:00:00.2 "$EFR_DIRTY"
check

# amd-nodirty: AMD-Vi without HDSup.
begin amd-nodirty
hisi_vf
amd_iommu ivhd0 0000:00:00.2 "$EFR_NO_DIRTY:0"
check

#!/bin/bash
# libvirt-truth.sh BUILD SRC DATADIR [--baseline FILE] [--write-baseline FILE]:
# the truth test (issue 13 item 6).  Every test domain without a hostdev,
# and every dmaguard sample domain with its hostdevs removed, is started
# paused (virsh create --paused) on a private real libvirtd with the
# machine's QEMU, then destroyed; virt-dmaguard check must report a
# configuration error exactly when libvirt or QEMU refuses, for the same
# cause.  tests/libvirt-truth.py does the work and says how the domains
# are rewritten and judged; tests/libvirtd-private.sh runs the daemon.
# dmaguard's hook is NOT installed in that daemon: every refusal is
# libvirt's or QEMU's own.  Exit 77 (skip) without root, libvirtd, virsh,
# unshare, the libvirt-qemu user or libvirt's test data.
set -u
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) data=$3
shift 3
tool="$build/tools/virt-dmaguard"

# shellcheck source=libvirtd-private.sh
. "$src/tests/libvirtd-private.sh"
lvp_require
[ -d "$data" ] || lvp_skip "no libvirt test data at $data (tools/fetch-libvirt-testdata.sh)"
[ -x "$tool" ] || { echo "not ok 1 - $tool is not built"; echo "1..1"; exit 1; }

lvp_init dmaguard-truth
# Every QEMU and the daemon stopped, $LVP_DIR removed, even when meson
# stops the test for its timeout.
lvp_trap
# libvirt's and QEMU's words untranslated: the rules that classify them
# are English (tests/libvirt_refusals.py).
export LC_ALL=C.UTF-8
# virt-dmaguard's emulator probe cache: this test's own.
export XDG_CACHE_HOME=$LVP_DIR/xdg
lvp_run python3 "$src/tests/libvirt-truth.py" --tool "$tool" --src "$src" --data "$data" \
    --uri "$LVP_URI" --work "$LVP_DIR/work" "$@"
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    echo "# daemon log:"; sed 's/^/#   /' "$LVP_DIR/daemon.log" 2>/dev/null | tail -15
fi
exit $rc

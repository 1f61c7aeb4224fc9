#!/usr/bin/env bash
# bench-scale.sh [BUILDDIR]: how `virt-dmaguard check` scales with the
# size of one domain (issue 14: near-linear analysis).  Generates domains
# with 1k, 10k and 100k PCI hostdevs (distinct host addresses, not on this
# host, so each is its own group) and one with 100k <qemu:device>
# overrides that match nothing, times `check --json` on each (best of
# DMG_BENCH_SCALE_RUNS, 3), and prints the cost per device and its ratio
# to the 1k domain's.  Target: per-device cost at 100k within 2x of 1k.
# A benchmark, not a test: exit 0 when the target is missed ("MISSED").
set -euo pipefail
builddir=$(cd "${1:-./build}" && pwd)
tool=$builddir/tools/virt-dmaguard
runs=${DMG_BENCH_SCALE_RUNS:-3}
[ -x "$tool" ] || { echo "bench-scale: build first (ninja -C $builddir)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

hostdevs() {
    python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
print("<domain type='kvm'><name>scale</name><memory unit='GiB'>4</memory><vcpu>2</vcpu>"
      "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>")
for i in range(n):
    d, b, s, f = i >> 16, (i >> 8) & 0xff, (i >> 3) & 0x1f, i & 7
    # Compact, so that 100k stay under the 16 MiB XML limit.
    print(f"<hostdev mode='subsystem' type='pci'><source><address domain='{d}' "
          f"bus='{b}' slot='{s}' function='{f}'/></source></hostdev>")
print("</devices></domain>")
PY
}
overrides() {
    python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
print("<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>scale</name>"
      "<memory unit='GiB'>4</memory><vcpu>2</vcpu><os><type arch='x86_64' machine='q35'>hvm</type></os>"
      "<devices></devices><qemu:override>")
for i in range(n):
    print(f"<qemu:device alias='ua-none{i}'><qemu:frontend><qemu:property name='x-balloon-allowed' "
          f"type='bool' value='true'/></qemu:frontend></qemu:device>")
print("</qemu:override></domain>")
PY
}

# best FILE: the best of $runs runs, in microseconds
best() {
    local b= t0 t1 d rc
    for ((i = 0; i < runs; i++)); do
        t0=$EPOCHREALTIME
        rc=0
        "$tool" check --xml "$1" --qemu-version 7.2 --sysfs /nonexistent --json >/dev/null 2>"$tmp/err" || rc=$?
        t1=$EPOCHREALTIME
        # 0 and 1 are verdicts; anything else means nothing was measured.
        if [ "$rc" -gt 1 ]; then
            echo "bench-scale: check failed on $1 (exit $rc): $(head -c 300 "$tmp/err")" >&2
            exit 2
        fi
        d=$((${t1//[.,]/} - ${t0//[.,]/}))
        if [ -z "$b" ] || [ "$d" -lt "$b" ]; then b=$d; fi
    done
    echo "$b"
}

echo "bench-scale: virt-dmaguard check --json on one domain, best of $runs"
base=
for n in 1000 10000 100000; do
    hostdevs $n >"$tmp/h$n.xml"
    us=$(best "$tmp/h$n.xml")
    per=$(awk -v us="$us" -v n="$n" 'BEGIN { printf "%.1f", us / n }')
    [ -n "$base" ] || base=$per
    awk -v n="$n" -v us="$us" -v per="$per" -v base="$base" 'BEGIN {
        r = per / base
        printf "  %6d hostdevs   %8.1f ms  %6.1f us per device  %5.2fx the 1k cost%s\n",
               n, us / 1000, per, r, n == 100000 ? (r <= 2 ? "  target <= 2x: met" : "  target <= 2x: MISSED") : "" }'
done
overrides 100000 >"$tmp/o.xml"
us=$(best "$tmp/o.xml")
awk -v us="$us" -v base="$base" 'BEGIN {
    per = us / 100000
    printf "  100000 overrides  %8.1f ms  %6.1f us per override  %5.2fx the 1k hostdev cost\n",
           us / 1000, per, per / base }'
exit 0

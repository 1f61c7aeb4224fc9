#!/usr/bin/env bash
# bench-check.sh [BUILDDIR]
#
# Throughput of `virt-dmaguard check --json` against `virt-xml-validate`,
# both pinned to one core:
#
#   (a) virt-dmaguard check --json over DMG_BENCH_DOMAINS (10,000) generated
#       domain XMLs of realistic size (bench/gen-domains.py), the --xml
#       arguments batched DMG_BENCH_BATCH (2,500) per process so that process
#       startup does not dominate; the best of DMG_BENCH_RUNS (3) runs;
#   (b) virt-xml-validate FILE domain, one process per file as users run it,
#       on DMG_BENCH_VALIDATE_SAMPLE (200) of the same files;
#   (c) a table: both rates, their ratio, and whether the targets are met
#       (>= 5,000 domains/s, >= 50x virt-xml-validate's per-domain rate).
#
# This is a benchmark, not a test: it exits 0 when a target is missed (it
# prints "TARGET MISSED"), and non-zero only when it cannot measure.
#
# BUILDDIR defaults to ./build; the source root is the parent of the
# directory holding this script.  DMG_BENCH_CPU picks the core (0).

set -euo pipefail

script_path=${BASH_SOURCE[0]}
case $script_path in
    */*) script_dir=${script_path%/*} ;;
    *) script_dir=. ;;
esac
script_dir=$(cd "$script_dir" && pwd)
srcdir=${script_dir%/*}
builddir=$(cd "${1:-./build}" && pwd)

ndomains=${DMG_BENCH_DOMAINS:-10000}
batch=${DMG_BENCH_BATCH:-2500}
runs=${DMG_BENCH_RUNS:-3}
nsample=${DMG_BENCH_VALIDATE_SAMPLE:-200}
cpu=${DMG_BENCH_CPU:-0}
seed=${DMG_BENCH_SEED:-20240501}
target_rate=5000
target_ratio=50

tool=$builddir/tools/virt-dmaguard
sysfs=$srcdir/tests/sysfs/host1

die() {
    echo "bench-check: $*" >&2
    exit 2
}

[ -x "$tool" ] || die "$tool not found; build first (ninja -C $builddir)"
[ -d "$sysfs" ] || die "$sysfs not found"
command -v python3 >/dev/null || die "python3 not found"
command -v virt-xml-validate >/dev/null ||
    die "virt-xml-validate not found (Debian: apt-get install libvirt-clients)"
if command -v taskset >/dev/null && taskset -c "$cpu" true 2>/dev/null; then
    pin=(taskset -c "$cpu")
    pinned="pinned to CPU $cpu"
else
    pin=()
    pinned="NOT pinned (taskset unavailable)"
fi
have_time=false
[ -x /usr/bin/time ] && have_time=true

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/dmg-bench.XXXXXX")
trap 'rm -rf "$tmpdir"' EXIT

now() { date +%s.%N; }
# calc EXPR: floating-point arithmetic without bc
calc() { python3 -c "print($1)"; }

echo "dmaguard benchmark: $ndomains domains, $pinned"
echo "  tool:   $tool (run from a private copy)"
echo "  host:   --sysfs $sysfs --qemu-version 9.1"
echo "  $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"

python3 "$script_dir/gen-domains.py" -n "$ndomains" --seed "$seed" "$tmpdir/domains" 2>"$tmpdir/gen.log" ||
    { cat "$tmpdir/gen.log" >&2; die "generating domains failed"; }
sed 's/^/  /' "$tmpdir/gen.log"

# Relative names keep the command lines short (10,000 --xml arguments).
cd "$tmpdir/domains"
files=(domain-*.xml)
[ "${#files[@]}" -eq "$ndomains" ] || die "expected $ndomains files, found ${#files[@]}"
# Read every file once so that (a) and (b) both start from the page cache.
cat "${files[@]}" >/dev/null

# Run a private copy: a concurrent `ninja` relinking the build tree's binary
# must not break (or change) the measurement half-way.
cp "$tool" "$tmpdir/virt-dmaguard"
tool=$tmpdir/virt-dmaguard

xmlargs=()
for f in "${files[@]}"; do
    xmlargs+=(--xml "$f")
done
check_cmd=("${pin[@]}" "$tool" check --json --sysfs "$sysfs" --qemu-version 9.1)

# --- (a) virt-dmaguard check --json ----------------------------------------
# run_check OUTPREFIX: all domains in batches; sets $wall and $cpu_s
# (seconds; cpu_s is 0 without /usr/bin/time).
run_check() {
    local out=$1 i rc start end
    cpu_s=0
    : >"$tmpdir/times"
    start=$(now)
    for ((i = 0; i < ndomains; i += batch)); do
        rc=0
        if $have_time; then
            /usr/bin/time -f '%U %S' -a -o "$tmpdir/times" \
                "${check_cmd[@]}" "${xmlargs[@]:2*i:2*batch}" >"$out.$i.json" 2>"$out.$i.err" || rc=$?
        else
            "${check_cmd[@]}" "${xmlargs[@]:2*i:2*batch}" >"$out.$i.json" 2>"$out.$i.err" || rc=$?
        fi
        # 0: analyzed; 1: some domain has configuration errors (expected
        # for a few generated domains).  Anything else is a failure.
        if [ "$rc" -gt 1 ]; then
            sed 's/^/  /' "$out.$i.err" >&2
            die "virt-dmaguard check exited $rc on batch starting at ${files[i]}"
        fi
    done
    end=$(now)
    if $have_time; then
        cpu_s=$(awk '/^[0-9.]+ [0-9.]+$/ { s += $1 + $2 } END { printf "%.3f", s }' "$tmpdir/times")
    fi
    wall=$(calc "$end - $start")
}

echo
echo "(a) virt-dmaguard check --json, $ndomains domains in batches of $batch, best of $runs:"
# warm-up: dynamic linking, page cache of the binary and the sysfs tree
"${check_cmd[@]}" "${xmlargs[@]:0:20}" >/dev/null 2>&1 || true
best_wall=
best_cpu=
for ((r = 1; r <= runs; r++)); do
    run_check "$tmpdir/check-$r"
    printf '    run %d: %.3f s wall, %.3f s CPU (user+sys), %.0f domains/s\n' \
        "$r" "$wall" "$cpu_s" "$(calc "$ndomains / $wall")"
    if [ -z "$best_wall" ] || [ "$(calc "int($wall < $best_wall)")" = 1 ]; then
        best_wall=$wall
        best_cpu=$cpu_s
        best_run=$r
    fi
done

# Sanity: every domain got a verdict.
nverdicts=$(python3 - "$tmpdir/check-$best_run" "$ndomains" "$batch" <<'EOF'
import json, sys
prefix, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
total = 0
for i in range(0, n, batch):
    with open("%s.%d.json" % (prefix, i)) as f:
        total += len(json.load(f)["domains"])
print(total)
EOF
)
[ "$nverdicts" -eq "$ndomains" ] || die "expected $ndomains verdicts, got $nverdicts"
echo "    $nverdicts verdicts (JSON checked)"

# --- (b) virt-xml-validate -------------------------------------------------
step=$((ndomains / nsample))
[ "$step" -ge 1 ] || step=1
sample=()
for ((i = 0; i < ndomains && ${#sample[@]} < nsample; i += step)); do
    sample+=("${files[i]}")
done
echo
echo "(b) virt-xml-validate FILE domain, one process per file, ${#sample[@]} of the same files:"
nvalid=0
start=$(now)
for f in "${sample[@]}"; do
    if "${pin[@]}" virt-xml-validate "$f" domain >/dev/null 2>"$tmpdir/validate.err"; then
        nvalid=$((nvalid + 1))
    fi
done
end=$(now)
validate_wall=$(calc "$end - $start")
printf '    %.3f s wall, %d of %d files valid\n' "$validate_wall" "$nvalid" "${#sample[@]}"
if [ "$nvalid" -ne "${#sample[@]}" ]; then
    echo "    WARNING: some generated domains do not validate; last error:"
    sed 's/^/      /' "$tmpdir/validate.err"
fi

# --- (c) the figures -------------------------------------------------------
dmg_rate=$(calc "$ndomains / $best_wall")
dmg_cpu_rate=
[ "$best_cpu" != 0 ] && dmg_cpu_rate=$(calc "$ndomains / $best_cpu")
val_rate=$(calc "${#sample[@]} / $validate_wall")
ratio=$(calc "$dmg_rate / $val_rate")
rate_ok=$(calc "int($dmg_rate >= $target_rate)")
ratio_ok=$(calc "int($ratio >= $target_ratio)")
verdict() { [ "$1" = 1 ] && echo "met" || echo "MISSED"; }

echo
echo "(c) results, one core:"
printf '    %-34s %10s\n' "" "domains/s"
printf '    %-34s %10.0f\n' "virt-dmaguard check --json (wall)" "$dmg_rate"
[ -n "$dmg_cpu_rate" ] &&
    printf '    %-34s %10.0f\n' "virt-dmaguard check --json (CPU)" "$dmg_cpu_rate"
printf '    %-34s %10.1f\n' "virt-xml-validate" "$val_rate"
printf '    %-34s %9.0fx\n' "ratio (per-domain rate)" "$ratio"
echo
printf '    target >= %d domains/s:            %s (%.0f)\n' "$target_rate" "$(verdict "$rate_ok")" "$dmg_rate"
printf '    target >= %dx virt-xml-validate:     %s (%.0fx)\n' "$target_ratio" "$(verdict "$ratio_ok")" "$ratio"
if [ "$rate_ok" = 1 ] && [ "$ratio_ok" = 1 ]; then
    echo "ALL TARGETS MET"
else
    echo "TARGET MISSED"
fi
exit 0

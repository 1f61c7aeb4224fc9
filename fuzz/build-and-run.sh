#!/usr/bin/env bash
# build-and-run.sh [TARGET] [SECONDS] [WORKDIR]
#
# Build one of the libFuzzer targets with clang
# (-fsanitize=fuzzer,address,undefined), compiling src/util, src/conf,
# src/vmm (with its subsystem folders) and src/qemu_ext directly (no meson), seed its corpus
# and fuzz for SECONDS (default 120).  TARGET (default domain-parse; also
# from $DMG_FUZZ_TARGET, the argument wins):
#
#   domain-parse      fuzz/fuzz-domain-parse.c, dmg_check_xml(); seeds:
#                     tests/domains*/*.xml, the domains of examples/*.xml
#                     and a few generated benchmark domains
#   migration-stream  fuzz/fuzz-migration-stream.c, the destination of a
#                     migration (migration__receive_machine()); seeds: real
#                     streams the binary itself writes with
#                     DMG_FUZZ_MAKE_SEEDS=DIR, truncated and corrupted
#                     variants of them, and fuzz/reproducers/*.mig
#
# WORKDIR (default: build-fuzz/ for domain-parse, build-fuzz-TARGET/ for
# the others, in the source root, ignored by git) holds the binary,
# corpus/ (grows across runs), seeds/, artifacts/ (crash-*, leak-*,
# timeout-*, oom-* reproducers) and fuzz.log.
#
# Environment: DMG_FUZZ_TARGET, CC (default clang-14, else clang),
# DMG_FUZZ_JOBS (1), DMG_FUZZ_ARGS (extra libFuzzer flags).
#
# Not part of CI.  Exit status: libFuzzer's (0 when nothing was found).
# Reproduce a finding: WORKDIR/fuzz-TARGET WORKDIR/artifacts/crash-...

set -euo pipefail

script_path=${BASH_SOURCE[0]}
case $script_path in
    */*) script_dir=${script_path%/*} ;;
    *) script_dir=. ;;
esac
script_dir=$(cd "$script_dir" && pwd)
srcdir=${script_dir%/*}

target=${DMG_FUZZ_TARGET:-domain-parse}
case ${1:-} in
    '' | *[!a-z-]*) ;;                   # SECONDS (a number) or nothing
    *) target=$1; shift ;;
esac
case $target in
    domain-parse) default_workdir=$srcdir/build-fuzz ;;
    migration-stream) default_workdir=$srcdir/build-fuzz-$target ;;
    *)
        echo "build-and-run: unknown target '$target' (domain-parse, migration-stream)" >&2
        exit 2
        ;;
esac
seconds=${1:-120}
workdir=${2:-$default_workdir}
jobs=${DMG_FUZZ_JOBS:-1}
case $seconds in
    '' | *[!0-9]*) echo "build-and-run: SECONDS must be a number, not '$seconds'" >&2; exit 2 ;;
esac

if [ -z "${CC:-}" ]; then
    if command -v clang-14 >/dev/null; then CC=clang-14; else CC=clang; fi
fi
command -v "$CC" >/dev/null || { echo "build-and-run: $CC not found" >&2; exit 2; }

mkdir -p "$workdir/corpus" "$workdir/seeds" "$workdir/artifacts"
workdir=$(cd "$workdir" && pwd)
bin=$workdir/fuzz-$target

# --- build -----------------------------------------------------------------
# src/vmm needs gnutls (migration/tls.c) and liburing (vfio/soft.c pins
# with io_uring), as src/vmm/meson.build links them.
pkgs="libvirt libvirt-qemu libxml-2.0 glib-2.0 gio-2.0 json-glib-1.0 gnutls liburing"
# shellcheck disable=SC2086  # $pkgs is a list of package names
read -r -a pkg_cflags <<<"$(pkg-config --cflags $pkgs)"
# shellcheck disable=SC2086
read -r -a pkg_libs <<<"$(pkg-config --libs $pkgs)"

# What meson's config.h defines (meson.build: conf.set_quoted).
defines=(
    -D_GNU_SOURCE
    -DGETTEXT_PACKAGE='"dmaguard"'
    -DLOCALEDIR='"/usr/local/share/locale"'
    -DPACKAGE_VERSION='"fuzz"'
    -DDMG_SOURCE_EXAMPLES_DIR="\"$srcdir/examples\""
    -DDMG_DATADIR='"/usr/local/share/dmaguard"'
    -DDMG_FUZZ_SYSFS_DEFAULT="\"$srcdir/tests/sysfs/host1\""
)

shopt -s nullglob
sources=("$srcdir"/src/util/*.c "$srcdir"/src/conf/*.c
         "$srcdir"/src/vmm/*.c "$srcdir"/src/vmm/*/*.c "$srcdir"/src/vmm/*/*.S
         "$srcdir"/src/qemu_ext/*.c)
echo "building $bin with $CC ($(${CC} --version | head -n1))"
echo "  ${#sources[@]} sources from src/util, src/conf, src/vmm, src/qemu_ext"
"$CC" -std=gnu11 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Wall -Wno-unused-parameter -Wno-unused-variable \
    "${defines[@]}" \
    -I"$srcdir/src/util" -I"$srcdir/src/conf" -I"$srcdir/src/vmm" \
    -I"$srcdir/src/qemu_ext" \
    "${pkg_cflags[@]}" \
    "$script_dir/fuzz-$target.c" "${sources[@]}" \
    "${pkg_libs[@]}" -o "$bin"

# --- seeds -----------------------------------------------------------------
# The run's environment; the seed generator runs under it too.
# GSlice's magazines would hide leaks of json-glib nodes from LeakSanitizer.
export G_SLICE=always-malloc G_DEBUG=gc-friendly
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export DMG_FUZZ_SYSFS=$srcdir/tests/sysfs/host1
export LC_ALL=C.UTF-8

seed_domains() {
    rm -f "$workdir"/seeds/*
    n=0
    for f in "$srcdir"/tests/domains*/*.xml; do
        cp "$f" "$workdir/seeds/$(basename "$(dirname "$f")")-$(basename "$f")"
        n=$((n + 1))
    done
    # A test-driver <node> file holds several domains: each is a seed, and so is
    # the whole file (a non-<domain> root).
    for f in "$srcdir"/examples/*.xml; do
        cp "$f" "$workdir/seeds/examples-$(basename "$f")"
        n=$((n + 1))
        if command -v xmllint >/dev/null; then
            count=$(xmllint --xpath 'count(/node/domain)' "$f" 2>/dev/null || echo 0)
            case $count in ''|*[!0-9]*) count=0 ;; esac
            for ((i = 1; i <= count; i++)); do
                xmllint --xpath "/node/domain[$i]" "$f" \
                    >"$workdir/seeds/examples-$(basename "$f" .xml)-$i.xml" 2>/dev/null &&
                    n=$((n + 1))
            done
        fi
    done
    if command -v python3 >/dev/null; then
        python3 "$srcdir/bench/gen-domains.py" -n 16 --seed 7 "$workdir/seeds/gen" 2>/dev/null &&
            for f in "$workdir"/seeds/gen/*.xml; do
                mv "$f" "$workdir/seeds/bench-$(basename "$f")"
                n=$((n + 1))
            done
        rmdir "$workdir/seeds/gen" 2>/dev/null || true
    fi
    echo "  $n seeds in $workdir/seeds, corpus in $workdir/corpus"
}

# Real streams: the binary migrates a small guest into files
# (fuzz-migration-stream.c, make_seeds()).
# The reproducers of past findings go in too, so a regression shows at once.
seed_migration() {
    rm -f "$workdir"/seeds/*
    DMG_FUZZ_MAKE_SEEDS=$workdir/seeds "$bin"
    for f in "$script_dir"/reproducers/*.mig; do
        cp "$f" "$workdir/seeds/reproducer-$(basename "$f")"
    done
    n=$(find "$workdir/seeds" -type f | wc -l)
    echo "  $n seeds in $workdir/seeds, corpus in $workdir/corpus"
}

case $target in
    domain-parse)
        seed_domains
        dict=$script_dir/domain.dict
        # Multi-MB inputs (issue 14): the pre-scan, the reader's limits
        # and libxml2's quadratic paths only show on large documents.
        max_len=4194304
        ;;
    migration-stream)
        seed_migration
        dict=$script_dir/migration.dict
        # A PAGES record carries up to 256 pages (1 MiB); the seeds are
        # about 60 KiB.
        max_len=262144
        ;;
esac

# --- run -------------------------------------------------------------------
args=(
    -max_total_time="$seconds"
    -timeout=10
    -rss_limit_mb=2048
    -max_len="$max_len"
    -print_final_stats=1
    -artifact_prefix="$workdir/artifacts/"
    -dict="$dict"
)
if [ "$jobs" -gt 1 ]; then
    args+=(-jobs="$jobs" -workers="$jobs")
fi
# shellcheck disable=SC2206
extra=(${DMG_FUZZ_ARGS:-})

echo "fuzzing for ${seconds}s: $bin ${args[*]} ${extra[*]} corpus seeds"
rc=0
"$bin" "${args[@]}" "${extra[@]}" "$workdir/corpus" "$workdir/seeds" \
    >"$workdir/fuzz.log" 2>&1 || rc=$?

# --- result ----------------------------------------------------------------
echo
grep -E '^(INFO: (seed corpus|Loaded)|#[0-9]+[[:space:]]+(INITED|DONE)|Done [0-9]+ runs|stat::)' "$workdir/fuzz.log" || true
findings=("$workdir"/artifacts/*)
if [ "$rc" -ne 0 ] || [ "${#findings[@]}" -gt 0 ]; then
    echo
    echo "FINDING (libFuzzer exit $rc).  Report from $workdir/fuzz.log:"
    sed -n '/^==[0-9]*==ERROR\|runtime error\|deadly signal\|ERROR: libFuzzer/,/^SUMMARY/p' \
        "$workdir/fuzz.log" | head -n 60
    # While fuzzing, ASan unwinds malloc stacks with frame pointers, which
    # system glib lacks: the frame calling g_malloc0() goes missing.  Replay
    # each reproducer with the slow unwinder for the exact stack.
    for f in "${findings[@]}"; do
        echo
        echo "=== replay of $f (ASAN_OPTIONS=fast_unwind_on_malloc=0):"
        ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" "$bin" "$f" 2>&1 |
            sed -n '/^==[0-9]*==ERROR\|runtime error\|deadly signal/,/^SUMMARY/p' |
            grep -v 'in fuzzer::\|in main \|in __libc_start\|in _start ' | head -n 60
    done
    echo
    echo "Reproducers:"
    for f in "${findings[@]}"; do
        echo "  $f"
    done
    echo "Re-run one with: $bin REPRODUCER"
else
    echo
    echo "no crash, leak or timeout in ${seconds}s"
fi
exit "$rc"

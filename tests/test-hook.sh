#!/bin/bash
# shellcheck disable=SC2016,SC2034  # check() evals its condition in single quotes
# test-hook.sh: dmaguard-qemu-hook run exactly as libvirt runs a
# /etc/libvirt/hooks/qemu.d/ script: `HOOK NAME OP SUBOP -` with the
# domain XML on standard input; exit status, standard output (must stay
# empty), standard error (one line when refusing) and the log.
# Usage: test-hook.sh BUILD_ROOT SOURCE_ROOT
set -u
build=${1:?build root}
src=$(cd "${2:?source root}" && pwd)
export LC_ALL=C.UTF-8
# DMAGUARD_WRAP runs the hook under e.g. valgrind (tools/run-tests.sh).
read -r -a wrap <<<"${DMAGUARD_WRAP:-}"
hook_bin=$build/tools/dmaguard-qemu-hook
hook=("${wrap[@]}" "$hook_bin")
doms=$src/tests/domains
tmp=$(mktemp -d)
bg=
trap '[ -n "$bg" ] && kill "$bg" 2>/dev/null; rm -rf "$tmp"' EXIT
n=0 failed=0
unset DMAGUARD_HOOK_TEST_CRASH DMAGUARD_HOOK_TEST_HANG

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
    n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
    for f in "$tmp/out" "$tmp/err"; do [ -f "$f" ] && sed "s|^|# ${f##*/}: |" "$f" | head -10; done
}
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

# policy NAME [EXTRA LINES...]: a policy file logging to $tmp/NAME.log
policy() {
    local name=$1
    shift
    {
        echo "[hook]"
        echo "log=$tmp/logs/$name.log"
        echo "[profile]"
        echo "sysfs=$src/tests/sysfs/host1"
        # never /var/cache/dmaguard, the default
        echo "qemu-cache=$tmp/cache"
        printf '%s\n' "$@"
    } >"$tmp/$name.conf"
    conf=$tmp/$name.conf
    log=$tmp/logs/$name.log
}

# run WANT DESC FILE NAME OP SUBOP: the hook with FILE on stdin
run() {
    local want=$1 desc=$2 file=$3
    shift 3
    DMAGUARD_CONF=$conf "${hook[@]}" "$@" - <"$file" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then ok "$desc (exit $got)"; else not_ok "$desc: exit $got, expected $want"; fi
    if [ -s "$tmp/out" ]; then not_ok "$desc: printed on stdout"; else ok "$desc: stdout empty"; fi
}

one_stderr_line() {
    local desc=$1 needle
    shift
    if [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "$desc: one line on stderr"; else not_ok "$desc: $(wc -l <"$tmp/err") lines on stderr"; fi
    for needle in "$@"; do
        if grep -qF -- "$needle" "$tmp/err"; then ok "$desc: stderr names '$needle'"; else not_ok "$desc: stderr lacks '$needle'"; fi
    done
}

logged() {
    local desc=$1 pattern=$2
    if grep -qE -- "$pattern" "$log" 2>/dev/null; then ok "$desc"; else
        not_ok "$desc: log lacks /$pattern/"; sed 's/^/# log: /' "$log" 2>/dev/null | tail -5; fi
}

[ -x "$hook_bin" ] || { echo "Bail out! $hook_bin not built"; exit 1; }

# --- configuration errors refuse prepare and start --------------------
policy default
for op in start prepare; do
    run 1 "$op begin of pci-optin-not-mdev is refused" "$doms/pci-optin-not-mdev.xml" pci-optin-not-mdev "$op" begin
    one_stderr_line "$op begin refusal" "dmaguard: domain pci-optin-not-mdev: " \
        "(code balloon-optin-not-mdev)" "ua-gpu0"
done
logged "the log records the refusal with the verdict" \
    '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-][0-9:]{5} .*domain pci-optin-not-mdev prepare/begin: balloon inert, migration blocked, 1 error, 0 warnings: REFUSED: .*\(code balloon-optin-not-mdev\)'

# --- a clean domain starts; the verdict is logged ---------------------
run 0 "start begin of no-hostdev is allowed" "$doms/no-hostdev.xml" no-hostdev start begin
check "no-hostdev: nothing on stderr" '[ ! -s "$tmp/err" ]'
logged "the log has no-hostdev's verdict" \
    'domain no-hostdev start/begin: balloon effective, migration allowed, 0 errors, 0 warnings: allowed$'

# --- an inert balloon is a warning, not a refusal ---------------------
run 0 "start begin of pci-gpu-audio-shared-group is allowed" "$doms/pci-gpu-audio-shared-group.xml" gpu-audio start begin
logged "the log warns that the balloon is inert" \
    'domain gpu-audio start/begin: balloon inert, .*: warning: balloon balloon0 is inert.*\(code vfio-group\)'
logged "the inert balloon's domain is logged as allowed" 'domain gpu-audio start/begin: .*: allowed$'

# --- migrate begin (destination) ---------------------------------------
# libvirt 9.0 (the built default here: the test's shell maps no libvirt)
# asks QEMU; 8.5 refuses the hostdev itself.  The refusal leads with the
# layer and the words virsh migrate prints.
policy mig90 "qemu-version=7.2"
run 1 "migrate begin of a domain with a PCI hostdev is refused" "$doms/pci-gpu-audio-shared-group.xml" gpu-audio migrate begin
one_stderr_line "migrate refusal (libvirt 9.0)" "dmaguard: domain gpu-audio cannot migrate: QEMU's migration blockers refuse it" \
    "Requested operation is not valid: cannot migrate domain: VFIO device doesn't support migration; VFIO device doesn't support migration" \
    "(code vfio-migration-unsupported)" "more blocker"
logged "the log records the refused migration" 'domain gpu-audio migrate/begin: .*migration blocked.*: REFUSED: '
policy mig85 "qemu-version=7.2" "libvirt-version=8.5"
run 1 "migrate begin with [profile] libvirt-version=8.5 is refused" "$doms/pci-gpu-audio-shared-group.xml" gpu-audio migrate begin
one_stderr_line "migrate refusal (libvirt 8.5)" "dmaguard: domain gpu-audio cannot migrate: libvirt refuses it" \
    "Operation not supported: cannot migrate a domain with <hostdev mode='subsystem' type='pci'>" \
    "(code libvirt-hostdev-pci)" "more blockers"
policy badlibvirt "libvirt-version=nine"
run 0 "a bad [profile] libvirt-version: internal error, allowed" "$doms/pci-gpu-audio-shared-group.xml" gpu-audio migrate begin
logged "the log names the bad libvirt-version" "internal error: bad policy file: .*\\[profile\\] libvirt-version: libvirt version 'nine' is not a version"
policy default
run 0 "migrate begin of no-hostdev is allowed" "$doms/no-hostdev.xml" no-hostdev migrate begin
check "migrate begin of no-hostdev: stdout is empty (XML unchanged)" '[ ! -s "$tmp/out" ]'
policy nomig "[migration]" "refuse=false"
run 0 "[migration] refuse=false lets a blocked migration through" "$doms/pci-gpu-audio-shared-group.xml" gpu-audio migrate begin
logged "... and logs it as a warning" 'migrate/begin: .*: warning: migration is blocked, not refused'

# --- other operations return at once, without reading stdin ------------
policy default
before=$(wc -l <"$log")
printf 'garbage \x00\x01 not xml' >"$tmp/garbage"
for opsub in "started begin" "stopped end" "release end" "reconnect begin" "prepare end" "migrate end" "restore begin"; do
    # shellcheck disable=SC2086
    run 0 "$opsub exits 0 with garbage on stdin" "$tmp/garbage" dom $opsub
done
# A writer that never closes stdin: the hook must not wait for it.
exec 9< <(exec sleep 60)
bg=$!
start=$(date +%s%N)
DMAGUARD_CONF=$conf timeout 20 "${hook[@]}" dom stopped end - <&9 >"$tmp/out" 2>"$tmp/err"
rc=$? end=$(date +%s%N)
exec 9<&-
kill "$bg" 2>/dev/null; bg=
check "stopped end does not wait for stdin to close (exit $rc, $(((end - start) / 1000000)) ms)" \
    '[ "$rc" -eq 0 ] && [ $(((end - start) / 1000000)) -lt 10000 ]'
check "those operations log nothing" '[ "$(wc -l <"$log")" -eq "$before" ]'

# --- bad input and crashes are internal errors -------------------------
run 0 "garbage XML on start begin: internal error, allowed" "$tmp/garbage" dom start begin
logged "the log says internal error for garbage XML" 'domain dom start/begin: no verdict: internal error: .*XML.*allowed \(fail-closed=false\)'
DMAGUARD_HOOK_TEST_CRASH=1 run 0 "a crashing analysis lets the domain start" "$doms/pci-optin-not-mdev.xml" crashy start begin
logged "the log says internal error for the crash" 'domain crashy start/begin: no verdict: internal error: .*signal 6'
head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$tmp/huge"
run 0 "more than 16 MiB on stdin: internal error, allowed" "$tmp/huge" huge start begin
logged "the log says the XML is too large" 'domain huge start/begin: .*internal error: .*larger than 16 MiB'

policy closed "[hook]" "fail-closed=true"
run 1 "fail-closed: garbage XML refuses" "$tmp/garbage" dom start begin
one_stderr_line "fail-closed garbage" "dmaguard: domain dom: internal error: "
DMAGUARD_HOOK_TEST_CRASH=1 run 1 "fail-closed: a crash refuses" "$doms/no-hostdev.xml" crashy start begin
one_stderr_line "fail-closed crash" "internal error: " "signal 6"
logged "the log says REFUSED (fail-closed)" 'domain crashy start/begin: no verdict: internal error: .*REFUSED \(fail-closed=true\)'

# Without its timeout the analysis would hang for good; with timeout=1 it
# is killed after a second, plus the hook's own start (2.6 s in all under
# valgrind on a busy machine): the bound leaves room for that.
policy hang "[hook]" "timeout=1"
start=$(date +%s%N)
DMAGUARD_HOOK_TEST_HANG=1 run 0 "a hanging analysis is killed after the timeout" "$doms/no-hostdev.xml" hangs start begin
ms=$((($(date +%s%N) - start) / 1000000))
check "... within the timeout ($ms ms)" '[ "$ms" -lt 10000 ]'
logged "the log says the analysis was killed" 'domain hangs start/begin: .*internal error: .*did not finish within 1 s'

# --- the policy ----------------------------------------------------------
policy warnonly "[warn-only]" "codes=balloon-optin-not-mdev"
run 0 "[warn-only] codes=balloon-optin-not-mdev: the domain starts" "$doms/pci-optin-not-mdev.xml" optin start begin
logged "... logged as a warning" 'domain optin start/begin: .*1 error.*: warning: not refused by the policy: .*\(code balloon-optin-not-mdev\)'
logged "... and allowed" 'domain optin start/begin: .*: allowed$'

policy refuseother "[refuse]" "codes=iommu-caching-mode-required;dma-entry-limit"
run 0 "[refuse] codes without the domain's code: the domain starts" "$doms/pci-optin-not-mdev.xml" optin start begin
logged "... and the unlisted error is a warning" 'warning: not refused by the policy: .*\(code balloon-optin-not-mdev\)'
policy refusethis "[refuse]" "codes=iommu-caching-mode-required, balloon-optin-not-mdev"
run 1 "[refuse] codes listing the domain's code: refused" "$doms/pci-optin-not-mdev.xml" optin start begin

policy malformed "this is not a key file" "[refuse"
run 0 "a malformed policy file: internal error, allowed" "$doms/pci-optin-not-mdev.xml" optin start begin
logged "the log says the policy is bad" 'domain optin start/begin: no verdict: internal error: bad policy file: '
policy unknownkey "[refuse]" "code=balloon-optin-not-mdev"
run 0 "an unknown policy key: internal error, allowed" "$doms/pci-optin-not-mdev.xml" optin start begin
logged "the log names the unknown key" "internal error: bad policy file: .*unknown key 'code' in \\[refuse\\]"
policy badversion "qemu-version=banana"
run 0 "a bad qemu-version: internal error, allowed" "$doms/no-hostdev.xml" dom start begin
logged "the log names qemu-version" 'internal error: bad policy file: .*qemu-version'
policy salvaged "[hook]" "fail-closed=true" "[refuse" "garbage line"
run 1 "a malformed policy that says fail-closed=true refuses" "$doms/no-hostdev.xml" dom start begin
one_stderr_line "malformed fail-closed policy" "internal error: bad policy file"

policy pinned "qemu-version=9.1" "qemu-features=x-migration-iommu-pt"
run 0 "[profile] qemu-version and qemu-features are used" "$doms/no-hostdev.xml" dom start begin
policy nolog
sed -i 's|^log=.*|log=|' "$conf"
run 0 "log= (empty) disables the log" "$doms/no-hostdev.xml" dom start begin
check "... and no log file is written" '[ ! -e "$log" ]'
policy deep
sed -i "s|^log=.*|log=$tmp/logs/a/b/c/hook.log|" "$conf"
run 0 "the log directory is created" "$doms/no-hostdev.xml" dom start begin
check "... with the log in it" 'grep -q "domain dom start/begin: .*allowed" "$tmp/logs/a/b/c/hook.log"'

# --- the domain's own QEMU: probed once, then cached --------------------
# emu_xml EMULATOR OUT: no-hostdev with that <emulator>
emu_xml() { sed "s|<emulator>[^<]*</emulator>|<emulator>$1</emulator>|" "$doms/no-hostdev.xml" >"$2"; }
policy default
if [ -x /usr/bin/qemu-system-x86_64 ]; then
    rm -rf "$tmp/cache"
    run 0 "start begin judges for the domain's <emulator>" "$doms/no-hostdev.xml" dom start begin
    check "... whose probe is cached in [profile] qemu-cache" \
        'grep -qx "path=/usr/bin/qemu-system-x86_64" "$tmp"/cache/qemu-probe-*.ini'
else
    n=$((n + 1)); echo "ok $n # SKIP /usr/bin/qemu-system-x86_64 is not installed"
fi
mkdir -p "$tmp/emu"
cp "$src/tests/fake-qemu.sh" "$tmp/emu/qemu"
chmod +x "$tmp/emu/qemu"
cp -p "$tmp/emu/qemu" "$tmp/emu/qemu.orig"
emu_xml "$tmp/emu/qemu" "$tmp/emu.xml"
run 0 "start begin with a fake QEMU 9.1" "$tmp/emu.xml" emu start begin
logged "... is judged" 'domain emu start/begin: balloon effective, .*: allowed$'
# Replaced by something that is not QEMU, same size and mtime: the cached
# probe answers and the binary is not run (it would fail the analysis).
sed -i 's/^mode=qmp$/mode=bad/' "$tmp/emu/qemu"
touch -r "$tmp/emu/qemu.orig" "$tmp/emu/qemu"
run 0 "a binary replaced with the same size and mtime is not run again" "$tmp/emu.xml" emu start begin
check "... the cached probe judged it" \
    '[ "$(grep -c "domain emu start/begin: balloon effective, .*: allowed$" "$log")" -eq 2 ]'
touch -d "@$(($(stat -c %Y "$tmp/emu/qemu.orig") + 10))" "$tmp/emu/qemu"
run 0 "a new mtime: probed again, not QEMU: internal error, allowed" "$tmp/emu.xml" emu start begin
logged "... the log names the binary and what to do" \
    "domain emu start/begin: no verdict: internal error: .*cannot probe the QEMU binary $tmp/emu/qemu: it does not answer QMP.*qemu-version in \\[profile\\].*allowed \\(fail-closed=false\\)\$"
check "... and does not quote its output" '! grep -q SECRET "$log"'
emu_xml "$tmp/emu/none" "$tmp/none.xml"
policy closed "[hook]" "fail-closed=true"
run 1 "fail-closed: a missing <emulator> refuses" "$tmp/none.xml" dom start begin
one_stderr_line "missing emulator" "internal error: " "$tmp/emu/none: it does not exist"
policy badcache "qemu-cache=relative/dir"
run 0 "a relative qemu-cache: internal error, allowed" "$doms/no-hostdev.xml" dom start begin
logged "the log names qemu-cache" 'internal error: bad policy file: .*qemu-cache'
# A binary that never answers: killed at the probe's deadline (3/4 of the
# timeout) or with the analysis at the timeout, whichever comes first
# under load; either way the domain is allowed and no hook hangs.
sed 's/^mode=qmp$/mode=hang/' "$src/tests/fake-qemu.sh" >"$tmp/emu/hang"
chmod +x "$tmp/emu/hang"
emu_xml "$tmp/emu/hang" "$tmp/hang.xml"
policy hangemu "[hook]" "timeout=4"
run 0 "an <emulator> that hangs: internal error, allowed" "$tmp/hang.xml" dom start begin
logged "... killed at the deadline" \
    "internal error: .*($tmp/emu/hang: it did not answer within 3 s|did not finish within 4 s)"

# --- usage and isolation from libvirt ----------------------------------
"${hook[@]}" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "no arguments: usage, exit 2" '[ "$rc" -eq 2 ] && grep -q Usage "$tmp/err"'
if command -v readelf >/dev/null; then
    check "the hook is not linked against libvirt" '! readelf -d "$hook_bin" | grep -q "NEEDED.*libvirt"'
else
    n=$((n + 1)); echo "ok $n # SKIP readelf not available"
fi

echo "1..$n"
[ "$failed" -eq 0 ]

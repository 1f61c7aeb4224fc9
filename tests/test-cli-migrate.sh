#!/bin/bash
# test-cli-migrate.sh: `virt-dmaguard migrate` and `virt-dmaguard incoming`
# as real processes on loopback: a live migration over TCP, a UNIX socket
# and TLS; a domain with migration blockers refused before connecting;
# bad peers (garbage, hostile XML, a destination gone mid-stream, a closed
# port, a wrong CA, a cancel); and bad input (exit 2).
# Usage: test-cli-migrate.sh BUILD_ROOT SOURCE_ROOT
set -u
build=${1:?build root}
src=${2:?source root}
# DMAGUARD_WRAP runs the tool under e.g. valgrind (tools/run-tests.sh).
read -r -a wrap <<<"${DMAGUARD_WRAP:-}"
tool=("${wrap[@]}" "$build/tools/virt-dmaguard")
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
n=0 failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
# not_ok DESCRIPTION [FILE...]: the files shown as TAP comments
not_ok() {
    n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
    shift
    for f in "$@"; do [ -s "$f" ] && sed "s|^|# ${f##*/}: |" "$f" | head -25; done
}
# check DESCRIPTION COMMAND...: one command.  Several: { A && B; }; result DESCRIPTION
check() { local desc=$1; shift; if "$@"; then ok "$desc"; else not_ok "$desc" "${files[@]}"; fi; }
result() { local rc=$?; if [ "$rc" -eq 0 ]; then ok "$1"; else not_ok "$1" "${files[@]}"; fi; }
has() { grep -q -- "$2" "$1"; }
lacks() { ! grep -q -- "$2" "$1"; }

if python3 -c 'import os; os.close(os.open("/dev/kvm", os.O_RDWR))' 2>/dev/null; then accel=kvm; else accel=soft; fi
dom=$src/tests/domains/no-hostdev.xml
# A few live rounds: the guest dirties its 64 MiB faster than any limit,
# and under valgrind (tools/run-tests.sh) each round costs.
vmargs=(--memory 256M --accel "$accel" --seconds 0.5 --max-rounds 5)

# start_incoming NAME ARGS...: `incoming` in the background; sets
# $inc_pid and $port (read from its first line, "listening on ADDR").  It
# gives up by itself when no source comes (--wait), so no test can hang.
start_incoming() {
    local name=$1
    shift
    "${tool[@]}" incoming --wait 120 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    inc_pid=$!
    pids+=("$inc_pid")
    port=
    for _ in $(seq 1200); do
        if grep -qs '^listening on ' "$tmp/$name.out" "$tmp/$name.err"; then break; fi
        kill -0 "$inc_pid" 2>/dev/null || break
        sleep 0.05
    done
    port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$tmp/$name.out" "$tmp/$name.err" 2>/dev/null | head -1)
}
# wait_incoming: its exit status in $inc_rc
wait_incoming() { wait "$inc_pid"; inc_rc=$?; }
# migrate NAME ARGS...: exit status in $mig_rc
migrate() {
    local name=$1
    shift
    "${tool[@]}" migrate "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    mig_rc=$?
}
# A python3 fake peer: fake_peer NAME SCRIPT; it prints its port first.
fake_peer() {
    local name=$1
    python3 -c "$2" >"$tmp/$name.port" 2>"$tmp/$name.err" &
    fake_pid=$!
    pids+=("$fake_pid")
    for _ in $(seq 600); do [ -s "$tmp/$name.port" ] && break; sleep 0.05; done
    port=$(head -1 "$tmp/$name.port")
}
checksum() { sed -n 's/.*RAM checksum at switch-over: \(0x[0-9a-f]*\).*/\1/p' "$1" | head -1; }
rounds() { grep -cE '^round [0-9]+: [0-9.]+ MiB sent, [0-9]+ dirty pages left, [0-9.]+ MB/s' "$1"; }
dest_passes() { sed -n 's/.*guest on the destination: ran [0-9.]* s, \([0-9]*\) passes, mismatched reads: \([0-9]*\),.*: intact$/\1 \2/p' "$1"; }

# both_ok LABEL SRC DST: a completed migration as both sides report it
both_ok() {
    local label=$1 s=$2 d=$3 sum_s sum_d pd
    files=("$tmp/$s.out" "$tmp/$s.err" "$tmp/$d.out" "$tmp/$d.err")
    check "$label: migrate exits 0 (got $mig_rc)" [ "$mig_rc" -eq 0 ]
    check "$label: incoming exits 0 (got $inc_rc)" [ "$inc_rc" -eq 0 ]
    sum_s=$(checksum "$tmp/$s.out") sum_d=$(checksum "$tmp/$d.out")
    [ -n "$sum_s" ] && [ "$sum_s" = "$sum_d" ]
    result "$label: the destination's RAM checksum equals the source's ($sum_s)"
    read -r passes errors <<<"$(dest_passes "$tmp/$d.out")"
    [ "${passes:-0}" -gt 0 ] && [ "${errors:-1}" -eq 0 ]
    result "$label: the guest ran on at the destination (${passes:-?} passes, ${errors:-?} mismatched reads, checksum intact)"
    check "$label: per-round progress on the source ($(rounds "$tmp/$s.out") lines)" \
        [ "$(rounds "$tmp/$s.out")" -gt 0 ]
    check "$label: the same rounds on the destination" \
        [ "$(rounds "$tmp/$s.out")" -eq "$(rounds "$tmp/$d.out")" ]
    has "$tmp/$s.out" "stop-and-copy" && has "$tmp/$d.out" "stop-and-copy"
    result "$label: the last round is stop-and-copy on both sides"
    check "$label: the source is stopped" has "$tmp/$s.out" "now stopped"
}

# --- plain TCP --------------------------------------------------------
start_incoming tcp-dst --listen 127.0.0.1:0
files=("$tmp/tcp-dst.out" "$tmp/tcp-dst.err")
[ -n "$port" ] && [ "$port" -gt 0 ] && head -1 "$tmp/tcp-dst.out" | grep -q "^listening on 127.0.0.1:$port$"
result "incoming prints 'listening on 127.0.0.1:PORT' first"
migrate tcp-src --xml "$dom" --to "127.0.0.1:$port" "${vmargs[@]}"
wait_incoming
both_ok "tcp ($accel)" tcp-src tcp-dst
files=("$tmp/tcp-src.out" "$tmp/tcp-dst.out")
has "$tmp/tcp-src.out" "connected to 127.0.0.1:$port" && has "$tmp/tcp-dst.out" "connection from 127.0.0.1:"
result "tcp: each side names the other"

# --- a dirty rate limit: the migration converges --------------------------
if [ "$accel" = kvm ]; then
    start_incoming rate-dst --listen 127.0.0.1:0
    migrate rate-src --xml "$dom" --to "127.0.0.1:$port" --memory 256M --accel kvm \
        --seconds 0.5 --max-rounds 5 --dirty-rate 16M
    wait_incoming
    both_ok "dirty-rate" rate-src rate-dst
    files=("$tmp/rate-src.out" "$tmp/rate-src.err")
    check "dirty-rate: with --dirty-rate 16M the migration converges" \
        has "$tmp/rate-src.out" "converged within the downtime limit"
fi
migrate rate-bad --xml "$dom" --to 127.0.0.1:9 --dirty-rate fast
files=("$tmp/rate-bad.out" "$tmp/rate-bad.err")
[ "$mig_rc" -eq 2 ] && has "$tmp/rate-bad.err" "dirty-rate 'fast' is not a size"
result "a --dirty-rate that is not a size: exit 2 with a message"

# --- a UNIX socket, with --json on both sides ---------------------------
sock=$tmp/dst.sock
start_incoming unix-dst --listen "unix:$sock" --json
migrate unix-src --xml "$dom" --to "unix:$sock" "${vmargs[@]}" --json
wait_incoming
files=("$tmp/unix-src.out" "$tmp/unix-src.err" "$tmp/unix-dst.out" "$tmp/unix-dst.err")
check "unix: migrate exits 0 (got $mig_rc)" [ "$mig_rc" -eq 0 ]
check "unix: incoming exits 0 (got $inc_rc)" [ "$inc_rc" -eq 0 ]
check "unix: JSON documents agree (result, checksum, rounds, guest)" python3 - "$tmp/unix-src.out" "$tmp/unix-dst.out" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
d = json.load(open(sys.argv[2]))
assert s["result"] == "migrated" and d["result"] == "migrated", (s["result"], d["result"])
assert s["checksum"] == d["checksum"], (s["checksum"], d["checksum"])
assert len(s["rounds"]) == d["rounds"] > 0 and s["rounds"][-1]["final"]
assert d["guest"]["passes"] > 0 and d["guest"]["guest_errors"] == 0 and d["guest"]["checksum_ok"]
assert s["ram_bytes"] == d["ram_bytes"] == 256 << 20 and s["accel"] == d["accel"]
PY
check "unix: progress lines go to standard error with --json" [ "$(rounds "$tmp/unix-dst.err")" -gt 0 ]
check "unix: the socket file is gone afterwards" [ ! -e "$sock" ]

# --- TLS --------------------------------------------------------------
certs=$tmp/certs
if bash "$src/tests/tls-certs.sh" "$certs" >"$tmp/certs.log" 2>&1; then
    start_incoming tls-dst --listen 127.0.0.1:0 --tls --tls-x509-dir "$certs/good"
    migrate tls-src --xml "$dom" --to "localhost:$port" "${vmargs[@]}" --tls --tls-x509-dir "$certs/good"
    wait_incoming
    both_ok "tls" tls-src tls-dst
    files=("$tmp/tls-src.out" "$tmp/tls-dst.out")
    has "$tmp/tls-src.out" "over TLS (TLS" && has "$tmp/tls-dst.out" "over TLS (TLS"
    result "tls: both sides name the cipher"

    # the source trusts another CA: both fail, both say why
    start_incoming badca-dst --listen 127.0.0.1:0 --tls --tls-x509-dir "$certs/good"
    migrate badca-src --xml "$dom" --to "127.0.0.1:$port" "${vmargs[@]}" --tls --tls-x509-dir "$certs/other"
    wait_incoming
    files=("$tmp/badca-src.out" "$tmp/badca-src.err" "$tmp/badca-dst.out" "$tmp/badca-dst.err")
    check "wrong CA: migrate exits 1 (got $mig_rc)" [ "$mig_rc" -eq 1 ]
    check "wrong CA: incoming exits 1 (got $inc_rc)" [ "$inc_rc" -eq 1 ]
    check "wrong CA: the source says the destination's certificate was rejected" \
        has "$tmp/badca-src.err" "certificate of the migration destination .* was rejected"
    check "wrong CA: the destination says its certificate's CA is unknown to the source" \
        grep -qi "certificate\|CA" "$tmp/badca-dst.err"
    check "wrong CA: the guest keeps running on the source" \
        has "$tmp/badca-src.err" "keeps running on the source"
    check "wrong CA: no round was sent" [ "$(rounds "$tmp/badca-src.out")" -eq 0 ]

    # a destination with TLS, a source without: both fail
    start_incoming notls-dst --listen 127.0.0.1:0 --tls --tls-x509-dir "$certs/good"
    migrate notls-src --xml "$dom" --to "127.0.0.1:$port" "${vmargs[@]}"
    wait_incoming
    files=("$tmp/notls-src.err" "$tmp/notls-dst.err")
    [ "$mig_rc" -eq 1 ] && [ "$inc_rc" -eq 1 ]
    result "TLS only on the destination: both exit 1 ($mig_rc, $inc_rc)"
    check "TLS only on the destination: the source hints at --tls" has "$tmp/notls-src.err" "tls"
else
    not_ok "tests/tls-certs.sh made the certificates" "$tmp/certs.log"
fi

# --- a domain with migration blockers: refused before connecting --------
start_incoming blocked-dst --listen 127.0.0.1:0
# libvirt 8.5 refuses the hostdev itself, and QEMU blocks it too
migrate blocked-src --xml "$src/tests/domains/hisi-no-dirty.xml" --to "127.0.0.1:$port" "${vmargs[@]}" \
    --sysfs "$src/tests/sysfs/host1" --qemu-version 9.1 --libvirt-version 8.5
files=("$tmp/blocked-src.out" "$tmp/blocked-src.err" "$tmp/blocked-dst.out")
check "blocked domain: migrate exits 1 (got $mig_rc)" [ "$mig_rc" -eq 1 ]
has "$tmp/blocked-src.err" "blocker (libvirt): ua-acc0 \[libvirt-hostdev-pci\]" &&
    has "$tmp/blocked-src.err" "blocker (qemu): ua-acc0 \[vfio-no-dirty-tracking\]"
result "blocked domain: every blocker listed (libvirt-hostdev-pci, vfio-no-dirty-tracking)"
# libvirt 9.0 asks QEMU instead: QEMU's blocker alone
migrate blocked90-src --xml "$src/tests/domains/hisi-no-dirty.xml" --to "127.0.0.1:$port" "${vmargs[@]}" \
    --sysfs "$src/tests/sysfs/host1" --qemu-version 9.1 --libvirt-version 9.0
files=("$tmp/blocked90-src.out" "$tmp/blocked90-src.err")
[ "$mig_rc" -eq 1 ] && lacks "$tmp/blocked90-src.err" "blocker (libvirt)" &&
    has "$tmp/blocked90-src.err" "blocker (qemu): ua-acc0 \[vfio-no-dirty-tracking\]"
result "blocked domain on libvirt 9.0: only QEMU's blocker (exit $mig_rc)"
has "$tmp/blocked-src.err" "no connection was made" && has "$tmp/blocked-src.err" "What to do"
result "blocked domain: says nothing was sent and what to do"
sleep 0.3
kill -0 "$inc_pid" && lacks "$tmp/blocked-dst.out" "connection from"
result "blocked domain: incoming was never contacted and still listens"
kill "$inc_pid" 2>/dev/null
wait "$inc_pid" 2>/dev/null

# --- bad peers ----------------------------------------------------------
# garbage to incoming
start_incoming garbage-dst --listen 127.0.0.1:0
python3 -c "
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
s.sendall(b'GARBAGE! this is no migration\n' * 4)
s.shutdown(socket.SHUT_WR)
s.recv(100)
" "$port" 2>/dev/null
wait_incoming
files=("$tmp/garbage-dst.out" "$tmp/garbage-dst.err")
check "garbage: incoming exits 1 (got $inc_rc)" [ "$inc_rc" -eq 1 ]
check "garbage: incoming says it is no virt-dmaguard peer and shows the bytes" \
    has "$tmp/garbage-dst.err" 'not a virt-dmaguard migration peer: it sent "GARBAGE'

# a prepare message whose XML is hostile: refused with the parser's error
start_incoming xxe-dst --listen 127.0.0.1:0
python3 - "$port" >"$tmp/xxe-peer.out" 2>&1 <<'PY'
import socket, struct, sys
xml = (b'<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<domain type="kvm"><name>&x;</name><memory>1</memory></domain>')
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"DMGPREP1" + struct.pack("<II", 1, 16 + len(xml)) + struct.pack("<IIQ", 0, 2, 256 << 20) + xml)
answer = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    answer += b
magic, kind, length = answer[:8], *struct.unpack("<II", answer[8:16])
print(magic, kind, answer[16:16 + length].decode())
PY
wait_incoming
files=("$tmp/xxe-dst.err" "$tmp/xxe-peer.out")
check "hostile XML: incoming exits 1 (got $inc_rc)" [ "$inc_rc" -eq 1 ]
check "hostile XML: the parser's error, on the destination" has "$tmp/xxe-dst.err" "DOCTYPE"
check "hostile XML: a REFUSE with that error goes back to the source" \
    has "$tmp/xxe-peer.out" "^b'DMGPREP1' 3 .*DOCTYPE"
check "hostile XML: /etc/passwd was not read" lacks "$tmp/xxe-dst.err" "root:"

# a destination that takes the domain and goes away mid-stream
fake_peer gone-peer "
import socket, struct
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
print(l.getsockname()[1], flush=True)
c, _ = l.accept()
def read(n):
    b = b''
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x: raise SystemExit('source closed')
        b += x
    return b
hdr = read(16)
read(struct.unpack('<I', hdr[12:16])[0])
c.sendall(b'DMGPREP1' + struct.pack('<II', 2, 0))
read(2 << 20)
c.close()
"
migrate gone-src --xml "$dom" --to "127.0.0.1:$port" "${vmargs[@]}"
files=("$tmp/gone-src.out" "$tmp/gone-src.err" "$tmp/gone-peer.err")
check "destination gone mid-stream: migrate exits 1 (got $mig_rc)" [ "$mig_rc" -eq 1 ]
check "destination gone mid-stream: the guest keeps running on the source, checked" \
    has "$tmp/gone-src.err" "the guest keeps running on the source: [0-9]* passes, no mismatched read, RAM checksum intact"
wait "$fake_pid" 2>/dev/null

# a peer that is not virt-dmaguard
fake_peer http-peer "
import socket
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
print(l.getsockname()[1], flush=True)
c, _ = l.accept()
c.recv(65536)
c.sendall(b'HTTP/1.1 400 Bad Request\r\n\r\n')
c.close()
"
migrate http-src --xml "$dom" --to "127.0.0.1:$port" "${vmargs[@]}"
files=("$tmp/http-src.err")
check "HTTP server as destination: migrate exits 1 (got $mig_rc)" [ "$mig_rc" -eq 1 ]
check "HTTP server as destination: says it is no virt-dmaguard peer" \
    has "$tmp/http-src.err" 'not a virt-dmaguard migration peer: it sent "HTTP/1.1'
wait "$fake_pid" 2>/dev/null

# a destination that refuses the domain: the source says why and goes on
fake_peer refuse-peer "
import socket, struct
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
print(l.getsockname()[1], flush=True)
c, _ = l.accept()
hdr = c.recv(16)
why = b'no room for \\x1b[31mthis guest\\x07 here'
c.sendall(b'DMGPREP1' + struct.pack('<II', 3, len(why)) + why)
c.close()
"
migrate refuse-src --xml "$dom" --to "127.0.0.1:$port" "${vmargs[@]}"
files=("$tmp/refuse-src.err")
check "destination refuses: migrate exits 1 (got $mig_rc)" [ "$mig_rc" -eq 1 ]
check "destination refuses: its reason is shown, control characters defused" \
    has "$tmp/refuse-src.err" "127.0.0.1:$port refused the domain: no room for  \[31mthis guest  here"
check "destination refuses: the guest keeps running on the source" has "$tmp/refuse-src.err" "keeps running on the source"
wait "$fake_pid" 2>/dev/null

# a real destination that cannot create the VM refuses too
if [ "$accel" = kvm ]; then
    start_incoming nokvm-dst --listen 127.0.0.1:0 --kvm-device "$tmp/no-kvm"
    migrate nokvm-src --xml "$dom" --to "127.0.0.1:$port" "${vmargs[@]}"
    wait_incoming
    files=("$tmp/nokvm-src.err" "$tmp/nokvm-dst.err")
    { [ "$mig_rc" -eq 1 ] && [ "$inc_rc" -eq 1 ]; }
    result "destination without KVM: both exit 1 ($mig_rc, $inc_rc)"
    { has "$tmp/nokvm-src.err" "refused the domain: cannot create the VM here: .*no-kvm" &&
        has "$tmp/nokvm-dst.err" "refused the domain from 127.0.0.1:"; }
    result "destination without KVM: both sides give the reason"
else
    ok "destination without KVM # SKIP no usable /dev/kvm"
fi

# a closed port
closed=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
migrate closed-src --xml "$dom" --to "127.0.0.1:$closed" "${vmargs[@]}"
files=("$tmp/closed-src.err")
check "closed port: migrate exits 1 (got $mig_rc)" [ "$mig_rc" -eq 1 ]
check "closed port: the message names the address" has "$tmp/closed-src.err" "127.0.0.1:$closed: Connection refused"
check "closed port: the guest keeps running on the source" has "$tmp/closed-src.err" "keeps running on the source"

# SIGTERM on the source mid-migration cancels it; KVM only, where live
# rounds go on.  The source takes a signal when a round ends, and a signal
# taken before the last live round ends cancels.  Waiting for a progress
# line and then signalling raced with convergence: on a busy machine the
# starved guest dirtied nothing, and the round the signal came after was
# already the stop-and-copy one.  So the test holds the source where it
# wants it: the destination is stopped (SIGSTOP) before the source
# connects, the source then waits for the answer to its PREPARE, past its
# start-up wait (a signal there cancels before anything is sent) and
# before round 0; SIGTERM is sent then, and round 0's end takes it.
if [ "$accel" = kvm ]; then
    start_incoming cancel-dst --listen 127.0.0.1:0
    kill -STOP "$inc_pid"
    "${tool[@]}" migrate --xml "$dom" --to "127.0.0.1:$port" "${vmargs[@]}" --max-rounds 10000 \
        --downtime-limit 4K >"$tmp/cancel-src.out" 2>"$tmp/cancel-src.err" &
    mig_pid=$!
    pids+=("$mig_pid")
    # connected: the kernel completes the handshake for a stopped listener
    for _ in $(seq 2400); do
        ss -Htnp state established "( dport = :$port )" 2>/dev/null | grep -q "pid=$mig_pid," && break
        kill -0 "$mig_pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -TERM "$mig_pid"
    kill -CONT "$inc_pid"
    wait "$mig_pid"
    mig_rc=$?
    wait_incoming
    files=("$tmp/cancel-src.out" "$tmp/cancel-src.err" "$tmp/cancel-dst.err")
    check "cancel: migrate exits 1 (got $mig_rc)" [ "$mig_rc" -eq 1 ]
    check "cancel: incoming exits 1 (got $inc_rc)" [ "$inc_rc" -eq 1 ]
    has "$tmp/cancel-src.err" "cancelled by" && has "$tmp/cancel-src.err" "keeps running on the source"
    result "cancel: the source says it was cancelled and keeps running"
    check "cancel: the destination says the source cancelled" \
        has "$tmp/cancel-dst.err" "the source cancelled the migration"
else
    ok "cancel # SKIP no usable /dev/kvm: the software accelerator has no live rounds"
fi

# --- bad input: exit 2, nothing on standard output ------------------------
# refused DESCRIPTION NEEDLE COMMAND ARGS...
refused() {
    local desc=$1 needle=$2
    shift 2
    "${tool[@]}" "$@" >"$tmp/bad.out" 2>"$tmp/bad.err"
    local rc=$?
    files=("$tmp/bad.out" "$tmp/bad.err")
    check "$desc: exit 2 (got $rc)" [ "$rc" -eq 2 ]
    check "$desc: nothing on standard output" [ ! -s "$tmp/bad.out" ]
    check "$desc: the message names '$needle'" has "$tmp/bad.err" "$needle"
}
refused "migrate without --to" "--to ADDRESS is missing" migrate --xml "$dom"
refused "migrate to a bad address" "invalid migration address 'nowhere'" migrate --xml "$dom" --to nowhere
refused "migrate to port 0" "invalid migration address" migrate --xml "$dom" --to 127.0.0.1:0
refused "migrate --tls with a missing directory" "$tmp/no-certs" migrate --xml "$dom" --to 127.0.0.1:4444 --tls --tls-x509-dir "$tmp/no-certs"
refused "migrate --tls to a UNIX socket without a host name" "--tls-hostname" migrate --xml "$dom" --to "unix:$sock" --tls --tls-x509-dir "$certs/good"
refused "migrate --downtime-limit without a unit" "no unit" migrate --xml "$dom" --to 127.0.0.1:4444 --downtime-limit 300
refused "migrate without a domain" "exactly one" migrate --to 127.0.0.1:4444
refused "migrate with a bad accelerator" "accelerator" migrate --xml "$dom" --to 127.0.0.1:4444 --accel xen
refused "incoming without --listen" "--listen ADDRESS is missing" incoming
refused "incoming on a bad address" "invalid listen address" incoming --listen "127.0.0.1:http"
refused "incoming on an address of another host" "cannot listen" incoming --listen 192.0.2.1:0
refused "incoming --tls without the server certificate" "server-cert.pem" incoming --listen 0 --tls --tls-x509-dir "$certs/caonly"
refused "incoming --tls with a missing directory" "$tmp/no-certs" incoming --listen 0 --tls --tls-x509-dir "$tmp/no-certs"
refused "incoming with a domain argument" "unexpected argument" incoming --listen 0 guest

echo "1..$n"
echo "# $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

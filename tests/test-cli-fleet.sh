#!/bin/bash
# test-cli-fleet.sh: check with several --connect, a fleet scan.
#   - each host in its own section, in the order given, judged with its own
#     facts (node devices, libvirt version), in text and in JSON;
#   - an unreachable host is an error of that host only: exit status 4 or'ed
#     into 0/1, the others reported as usual;
#   - hosts are talked to at the same time with --jobs 2, one at a time with
#     --jobs 1 (tests/fleet-peer.py shows which, whatever the speed);
#   - the progress line goes to standard error on a terminal only;
#   - usage: --connect twice elsewhere, the same URI twice, --jobs bounds.
# Usage: test-cli-fleet.sh BUILD_ROOT SOURCE_ROOT
set -u
build=${1:?build root}
src=${2:?source root}
read -r -a wrap <<<"${DMAGUARD_WRAP:-}"
tool=("${wrap[@]}" "$build/tools/virt-dmaguard")
tmp=$(mktemp -d)
peer_pid=
cleanup() {
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
n=0 failed=0
export XDG_CACHE_HOME=$tmp/xdg

# shellcheck source=cli-tap.sh
. "$src/tests/cli-tap.sh"

example="test://$(realpath "$src/examples/dmaguard-node.xml")"
disagree="test://$(realpath "$src/tests/nodedev/disagree.xml")"
gone="qemu+unix:///system?socket=$tmp/no-daemon"

# --- three hosts, one unreachable ----------------------------------------
expect 5 "a fleet of two nodes and an unreachable host: 1 (a domain has errors) + 4 (a host not checked)" -- \
    check --connect "$example" --connect "$gone" --connect "$disagree" --all --json --qemu-version 9.1
if python3 - "$tmp/out" "$example" "$gone" "$disagree" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
example, gone, disagree = sys.argv[2:]
assert doc["version"] == 1 and "domains" not in doc, doc.keys()
hosts = doc["hosts"]
assert [h["uri"] for h in hosts] == [example, gone, disagree], [h["uri"] for h in hosts]
ex, g, dis = hosts
# Each host is judged with its own node devices and its own libvirt.
for h in (ex, dis):
    assert h["checked"] is True and h["error"] is None, h
    p = h["profile"]
    assert p["host_devices"] == "nodedev" and p["nodedev_uri"] == h["uri"], p
    assert p["libvirt_version_source"] == "connection", p
    assert p["qemu_version"] == "9.1" and p["qemu_version_source"] == "chosen", p
assert g["checked"] is False and "cannot connect" in g["error"] and g["uri"] in g["error"], g
assert "profile" not in g and "domains" not in g, g
ex_doms = {d["name"]: d for d in ex["domains"]}
dis_doms = {d["name"]: d for d in dis["domains"]}
assert sorted(ex_doms) == ["gpu-passthrough", "misconfigured", "vgpu-mdev", "viommu-vfs", "virtio-mem"], sorted(ex_doms)
assert "gpu-pair" in dis_doms and "gpu-passthrough" not in dis_doms, sorted(dis_doms)
# The example node keeps its GPU functions in one group; the other host
# has them apart (groups 1 and 7).
inh = ex_doms["gpu-passthrough"]["balloon"]["inhibitors"]
assert [(i["group"], sorted(i["devices"])) for i in inh] == [(1, ["hostdev0", "hostdev1"])], inh
inh = dis_doms["gpu-pair"]["balloon"]["inhibitors"]
assert sorted((i["group"], i["devices"]) for i in inh) == [(1, ["hostdev0"]), (7, ["hostdev1"])], inh
assert ex_doms["misconfigured"]["errors"], "misconfigured has no errors"
PY
then ok "JSON: one section per host, in order, each with its own facts and verdicts"; else not_ok "JSON sections"; fi
if grep -q "1 of 3 hosts could not be checked" "$tmp/err"; then ok "stderr sums up the hosts not checked"; else not_ok "no summary on stderr"; fi
if ! grep -q "hosts checked" "$tmp/err"; then ok "no progress line when stderr is not a terminal"; else not_ok "a progress line on a pipe"; fi

expect 5 "the same fleet as text" -- check --connect "$example" --connect "$gone" --connect "$disagree" --all --qemu-version 9.1
if grep -n "^== Host " "$tmp/out" | sed 's/^[0-9]*://' >"$tmp/headers" &&
   diff <(printf '== Host %s ==\n' "$example" "$gone" "$disagree") "$tmp/headers" >/dev/null; then
    ok "text: a header per host, in the order given"; else not_ok "text headers"; fi
if awk -v h="== Host $gone ==" '$0 == h { getline; print; exit }' "$tmp/out" | grep -q "^Not checked: cannot connect to libvirt at '$gone'"; then
    ok "text: the unreachable host's section says why it was not checked"; else not_ok "text: no reason for the unreachable host"; fi
if [ "$(grep -c '^Judging for libvirt .* (connection) and QEMU 9.1 (chosen).*; host facts from the libvirt node devices of ' "$tmp/out")" = 2 ]; then
    ok "text: each checked host has its facts line"; else not_ok "text: facts lines"; fi

expect 4 "a fleet whose reachable hosts have no configuration errors: 4" -- \
    check --connect test:///default --connect "$gone" --all
expect 1 "a fleet whose hosts are all reachable: 1 for the misconfigured domain" -- \
    check --connect "$example" --connect "$disagree" --all --qemu-version 9.1

expect 2 "a named domain one host lacks: not analyzed there, judged on the other, no host failed" -- \
    check --connect "$example" --connect "$disagree" gpu-passthrough --json --qemu-version 9.1
if python3 - "$tmp/out" <<'PY'
import json, sys
ex, dis = json.load(open(sys.argv[1]))["hosts"]
assert ex["checked"] and dis["checked"], (ex["error"], dis["error"])
assert [d["name"] for d in ex["domains"]] == ["gpu-passthrough"] and ex["not_analyzed"] == [], ex
assert dis["domains"] == [] and [x["name"] for x in dis["not_analyzed"]] == ["gpu-passthrough"], dis
PY
then ok "... listed in that host's not_analyzed"; else not_ok "a domain one host lacks"; fi

# --- progress on a terminal ----------------------------------------------
# script(1) gives the tool a pseudo-terminal; its output is the terminal's.
if command -v script >/dev/null; then
    script -qec "$(printf '%q ' "$build/tools/virt-dmaguard" check --connect "$example" --connect "$disagree" --all --qemu-version 9.1) >/dev/null" "$tmp/tty" >/dev/null 2>&1
    if grep -q "2 of 2 hosts checked" "$tmp/tty"; then ok "on a terminal, a progress line reaches 2 of 2"; else not_ok "no progress line on a terminal"; fi
else
    ok "# SKIP script(1) is not installed"
fi

# --- hosts at the same time, or one at a time ----------------------------
# fleet-peer.py holds each connection until both peers have one.
# run_peers JOBS: a scan of the two peers with --jobs JOBS.
run_peers() {
    rm -f "$tmp/a" "$tmp/b" "$tmp/peer.log"
    python3 "$src/tests/fleet-peer.py" "$tmp/peer.log" "$tmp/a" "$tmp/b" >"$tmp/peer.out" &
    peer_pid=$!
    for _ in $(seq 200); do grep -q ready "$tmp/peer.out" 2>/dev/null && break; sleep 0.05; done
    expect 4 "--jobs $1: both peers fail" -- check --jobs "$1" --all --json \
        --connect "qemu+unix:///system?socket=$tmp/a" --connect "qemu+unix:///system?socket=$tmp/b"
    wait "$peer_pid"
    peer_pid=
}
run_peers 2
if python3 - "$tmp/out" "$tmp/peer.log" <<'PY'
import json, sys
hosts = json.load(open(sys.argv[1]))["hosts"]
log = open(sys.argv[2]).read().split()[::2]
# Both connections were open before either closed ...
assert log == ["open", "open", "close", "close"], log
# ... so neither host waited for its deadline: the peers closed them.
for h in hosts:
    assert "no answer" not in h["error"], h["error"]
PY
then ok "--jobs 2: both hosts were open at once"; else not_ok "--jobs 2 did not open the hosts together"; fi
run_peers 1
if python3 - "$tmp/out" "$tmp/peer.log" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1]))["hosts"]
# The first host waited for a second connection that one job never makes.
assert "no answer within 30 s" in a["error"], a["error"]
assert "no answer" not in b["error"], b["error"]
PY
then ok "--jobs 1: one host at a time (the first ran into its open deadline)"; else not_ok "--jobs 1 opened the hosts together"; fi

# --- usage -----------------------------------------------------------------
expect 2 "argv takes one --connect" -- argv gpu-passthrough --connect "$example" --connect "$disagree"
if grep -q "only check reads several hosts" "$tmp/err"; then ok "... and says so"; else not_ok "argv: no reason"; fi
expect 2 "the same URI twice" -- check --all --connect "$example" --connect "$example"
expect 2 "--jobs 0" -- check --all --jobs 0 --connect "$example" --connect "$disagree"
expect 2 "--jobs 65" -- check --all --jobs 65 --connect "$example" --connect "$disagree"
expect 2 "an empty --connect" -- check --all --connect ""
expect 2 "a bad option is a usage error once, not an error of each host" -- \
    check --all --connect "$example" --connect "$disagree" --qemu-version seven
if [ "$(grep -c . "$tmp/err")" = 1 ] && [ ! -s "$tmp/out" ]; then ok "... one line, nothing printed"; else not_ok "bad option in a fleet"; fi

echo "1..$n"
[ "$failed" -eq 0 ]

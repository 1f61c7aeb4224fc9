#!/bin/bash
# check-run-agree.sh BUILD: `check` predicts, `run --balloon` does it.  For
# every example domain, the predicted balloon verdict must match what the
# embedded VMM measured: memory returned to the host exactly when check
# says the balloon is effective, the same inhibitor codes, and no stale
# DMA page either way.  The guest runs with 512 MiB (verdicts do not
# depend on the size), on KVM when /dev/kvm is usable.
set -u
build=$1
tool="$build/tools/virt-dmaguard"
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel=kvm; else accel=soft; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0

"$tool" check --all --json >"$tmp/check.json"
[ $? -le 1 ] || { echo "not ok 1 - check --all failed"; exit 1; }
mapfile -t domains < <(python3 -c "import json,sys; [print(d['name']) for d in json.load(open(sys.argv[1]))['domains']]" "$tmp/check.json")

for d in "${domains[@]}"; do
    n=$((n + 1))
    "$tool" run "$d" --balloon 256M --memory 512M --seconds 0.3 --accel "$accel" --json \
        >"$tmp/run.json" 2>"$tmp/run.err"
    rc=$?
    if python3 - "$tmp/check.json" "$tmp/run.json" "$d" "$rc" "$tmp/run.err" <<'PY'
import json, sys
check = next(x for x in json.load(open(sys.argv[1]))["domains"] if x["name"] == sys.argv[3])
rc = int(sys.argv[4])
balloon = check["balloon"]
if balloon["device"] is None:
    # No balloon to set: run must say so (bad input) and check must not
    # call it effective.
    assert rc == 2 and "memballoon" in open(sys.argv[5]).read(), (rc,)
    assert not balloon["effective"]
    sys.exit(0)
assert rc in (0, 1), rc
text = open(sys.argv[2]).read()
run = json.loads(text[text.index('{\n  "target_bytes"'):])
returned = run["discarded_pages"] > 0 and run["returned_bytes"] > 64 << 20
assert returned == balloon["effective"], ("predicted", balloon["effective"], "ran", run)
assert sorted(run["inhibitors"]) == sorted(i["code"] for i in balloon["inhibitors"]), run
assert run["stale_pages"] == 0, run
PY
    then echo "ok $n - $d: check and run agree"; else failed=$((failed + 1)); echo "not ok $n - $d: check and run disagree"; sed 's/^/# /' "$tmp/run.json" "$tmp/run.err" | head -30; fi
done
echo "1..$n"
[ "$failed" -eq 0 ] && [ "$n" -ge 5 ]

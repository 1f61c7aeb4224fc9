# cli-tap.sh: TAP helpers of the virt-dmaguard CLI tests, sourced by
# test-cli.sh and test-cli-fleet.sh.  They need $tool (an array: the tool,
# maybe under valgrind), $tmp, and n=0 failed=0 set by the caller.

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$tmp/out" "$tmp/err" | head -20; }

# expect STATUS DESCRIPTION -- ARGS...: run the tool, check its status
expect() {
    local want=$1 desc=$2
    shift 3
    "${tool[@]}" "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then ok "$desc (exit $got)"; else not_ok "$desc: exit $got, expected $want"; fi
}

# Bad input: exit 2, nothing on stdout, one clear line on stderr.
expect_refused() {
    local desc=$1 needle=$2
    shift 2
    expect 2 "$desc" -- "$@"
    if [ -s "$tmp/out" ]; then not_ok "$desc: printed a result"; else ok "$desc: no result printed"; fi
    if grep -q -- "$needle" "$tmp/err"; then ok "$desc: message names '$needle'"; else not_ok "$desc: message lacks '$needle'"; fi
}

#!/bin/bash
# run-valgrind.sh BUILD SRC: `virt-dmaguard run` under valgrind: no
# definite leak, no memory error, no file descriptor of its own left open
# at exit, and no thread left (run checks /proc/self/task itself and
# fails otherwise).  Skips (77) without valgrind.
set -u
build=$1 src=$2
command -v valgrind >/dev/null || { echo "1..0 # SKIP valgrind is not installed"; exit 77; }
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then accel=kvm; else accel=soft; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
valgrind --log-file="$log" --track-fds=yes --error-exitcode=3 --leak-check=full \
    --errors-for-leak-kinds=definite \
    "$build/tools/virt-dmaguard" run --xml "$src/tests/domains/no-hostdev.xml" \
    --seconds 1 --accel "$accel" >/dev/null
rc=$?
n=0 failed=0
check() {
    n=$((n + 1))
    if [ "$1" = 0 ]; then echo "ok $n - $2"; else failed=$((failed + 1)); echo "not ok $n - $2"; sed 's/^/# /' "$log" | tail -30; fi
}
check "$rc" "run on $accel under valgrind exits 0 (no memory error, no leak, no thread left)"
# Each fd listed at exit must be one the process inherited.
own=$(awk '/Open (file descriptor|AF_)/ {getline nxt; if (nxt !~ /inherited from parent/) print}' "$log" | wc -l)
check "$((own != 0))" "no file descriptor of its own is open at exit"
grep -q "FILE DESCRIPTORS" "$log"
check $? "valgrind tracked the file descriptors"
echo "1..$n"
[ "$failed" -eq 0 ]

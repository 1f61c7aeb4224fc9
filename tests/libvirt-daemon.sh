#!/bin/bash
# libvirt-daemon.sh BUILD SRC: dmaguard against a real libvirtd.
#
# The daemon is private: it runs in its own mount namespace in which
# /etc/libvirt (configuration and hooks), /run/libvirt, /var/lib/libvirt,
# /var/log/libvirt and /var/cache/libvirt are temporary directories, and
# its socket is in a temporary directory.  The system daemon, if any, is
# never touched.  dmaguard's hook is installed in that daemon's
# hooks/qemu.d, and the daemon is driven with virsh:
#   - a start refused by the hook, with dmaguard's message in virsh's error;
#   - a start allowed (TCG), with the hook's verdict in its log;
#   - check --write-metadata, then virsh metadata shows the verdict, and a
#     later check of the dumped XML finds it unchanged;
#   - the migrate hook, invoked exactly as libvirt invokes it (a second
#     daemon to migrate to is not set up; docs/libvirt.rst says so).
# The daemon and every QEMU it started are stopped at the end, even when
# the test fails.  Exit 77 (skip) without root, libvirtd or unshare.
set -u
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
hook="$build/tools/dmaguard-qemu-hook"
tool="$build/tools/virt-dmaguard"

skip() { echo "1..0 # SKIP $1"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to run a system-mode libvirtd"
command -v libvirtd >/dev/null || skip "libvirtd is not installed"
command -v unshare >/dev/null || skip "unshare is not installed"
getent passwd libvirt-qemu >/dev/null || skip "the libvirt-qemu user does not exist (tools/install-deps.sh creates it)"
[ -x "$hook" ] || { echo "not ok 1 - $hook is not built"; exit 1; }

T=$(mktemp -d /tmp/dmaguard-libvirtd.XXXXXX)
# Only what this test started is stopped, by PID: no name patterns, which
# would also hit other QEMUs and daemons of the machine.
# stop_pid PID: SIGTERM, up to 5 s to go, then SIGKILL.
stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
}
# pid_of FILE: the PID in a pidfile, if it holds one.
pid_of() {
    local pid
    pid=$(head -c 32 "$1" 2>/dev/null | tr -d '[:space:]')
    [[ $pid =~ ^[1-9][0-9]*$ ]] && echo "$pid"
}
# has_arg PID REGEX: an argument of PID's command line matches REGEX
# whole, so a PID the kernel gave to another process since is left alone.
has_arg() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | grep -qx -- "$2"; }
# virt-dmaguard's emulator probe cache: this test's own.
export XDG_CACHE_HOME=$T/xdg
cleanup() {
    local f pid dom
    # Each QEMU the daemon started, from the pidfile libvirt keeps for it
    # in its state directory, /run/libvirt/qemu/DOMAIN.pid, which is
    # $T/run/qemu here (libvirt removes it when the domain stops): stopped
    # while that PID still runs that domain (-name guest=DOMAIN,...); the
    # driver's own driver.pid there names the daemon and matches no QEMU.
    for f in "$T"/run/qemu/*.pid; do
        [ -f "$f" ] || continue
        dom=$(basename "$f" .pid)
        pid=$(pid_of "$f") || continue
        has_arg "$pid" "guest=$dom\(,.*\)\?" && stop_pid "$pid"
    done
    # A QEMU the daemon was probing for its capabilities when it stopped,
    # from the pidfile it gave that QEMU (-pidfile .../qmp-XXXXXX/qmp.pid).
    for f in "$T"/lib/qemu/qmp-*/qmp.pid; do
        [ -f "$f" ] || continue
        pid=$(pid_of "$f") || continue
        has_arg "$pid" ".*/$(basename "$(dirname "$f")")/qmp\.pid" && stop_pid "$pid"
    done
    # The daemon: inner.sh wrote its PID ($!), and the daemon its pidfile.
    for f in "$T/daemon.pid" "$T/libvirtd.pid"; do
        pid=$(pid_of "$f") || continue
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ] && stop_pid "$pid"
    done
    rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T"/{etc/hooks/qemu.d,run,lib,log,cache,sock} /var/lib/libvirt /var/log/libvirt \
    /var/cache/libvirt /run/libvirt
cat >"$T/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$T/sock"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
EOF
cat >"$T/etc/qemu.conf" <<EOF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
stdio_handler = "file"
EOF
cat >"$T/dmaguard.conf" <<EOF
[hook]
log=$T/hook.log
[profile]
sysfs=$src/tests/sysfs/host1
qemu-cache=$T/qemu-cache
EOF
# libvirt runs hooks with a clean environment: a wrapper points the real
# hook at this test's policy.
cat >"$T/etc/hooks/qemu.d/dmaguard" <<EOF
#!/bin/sh
DMAGUARD_CONF=$T/dmaguard.conf exec $hook "\$@"
EOF
chmod +x "$T/etc/hooks/qemu.d/dmaguard"

cat >"$T/refused.xml" <<'EOF'
<domain type='qemu'>
  <name>dmgtest-refused</name>
  <metadata>
    <dmaguard:domain xmlns:dmaguard="http://dmaguard.org/xmlns/domain/1.0">
      <dmaguard:hostdev alias="ua-gpu0" balloon-allowed="yes"/>
    </dmaguard:domain>
  </metadata>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>
      <alias name='ua-gpu0'/>
    </hostdev>
    <memballoon model='virtio'/>
  </devices>
</domain>
EOF
cat >"$T/tiny.xml" <<'EOF'
<domain type='qemu'>
  <name>dmgtest-tiny</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <memballoon model='virtio'/>
  </devices>
</domain>
EOF

cat >"$T/inner.sh" <<EOF
set -u
mount --bind "$T/etc" /etc/libvirt
mount --bind "$T/run" /run/libvirt
mount --bind "$T/lib" /var/lib/libvirt
mount --bind "$T/log" /var/log/libvirt
mount --bind "$T/cache" /var/cache/libvirt
libvirtd --config "$T/etc/libvirtd.conf" --pid-file "$T/libvirtd.pid" >"$T/daemon.log" 2>&1 &
echo \$! >"$T/daemon.pid"
for i in \$(seq 100); do [ -S "$T/sock/libvirt-sock" ] && break; sleep 0.1; done
exec bash "$T/scenarios.sh"
EOF

cat >"$T/scenarios.sh" <<EOF
set -u
uri="qemu:///system?socket=$T/sock/libvirt-sock"
n=0 failed=0
ok() { n=\$((n + 1)); echo "ok \$n - \$1"; }
not_ok() { n=\$((n + 1)); failed=\$((failed + 1)); echo "not ok \$n - \$1"; }
virsh() { command virsh -q -c "\$uri" "\$@"; }
check() { if eval "\$1"; then ok "\$2"; else not_ok "\$2"; sed 's/^/# /' "$T/out" 2>/dev/null | head -20; fi; }

check 'virsh list --all >"$T/out" 2>&1' "a private libvirtd answers on its own socket"

virsh define "$T/refused.xml" >"$T/out" 2>&1
check '! virsh start dmgtest-refused >"$T/out" 2>&1' "virsh start of a domain with x-balloon-allowed on a PCI hostdev fails"
check 'grep -q "dmaguard" "$T/out" && grep -q "balloon-optin-not-mdev" "$T/out"' "virsh's error carries dmaguard's message"
check '! virsh domstate dmgtest-refused 2>/dev/null | grep -q running' "the refused domain is not running"

virsh define "$T/tiny.xml" >"$T/out" 2>&1
check 'virsh start dmgtest-tiny >"$T/out" 2>&1' "virsh start of a domain without host devices succeeds (TCG)"
check 'grep -q "dmgtest-tiny" "$T/hook.log" && grep "dmgtest-tiny" "$T/hook.log" | grep -q "start"' "the hook logged its verdict for the started domain"

check '"$tool" check --connect "\$uri" dmgtest-tiny --write-metadata >"$T/out" 2>&1' "check --write-metadata on the running domain"
check 'virsh metadata dmgtest-tiny --uri http://dmaguard.org/xmlns/domain/1.0 >"$T/out" 2>&1 && grep -q "verdict" "$T/out" && grep -q "balloon=\"effective\"" "$T/out"' "virsh metadata shows the stored verdict (live)"
check 'virsh metadata dmgtest-tiny --uri http://dmaguard.org/xmlns/domain/1.0 --config >"$T/out" 2>&1 && grep -q "digest=" "$T/out"' "the verdict is in the persistent configuration too"
check 'virsh dumpxml dmgtest-tiny >"$T/dump.xml" && "$tool" check --xml "$T/dump.xml" --sysfs "$src/tests/sysfs/host1" >"$T/out" 2>&1 && ! grep -q verdict-changed "$T/out"' "a later check of the same domain finds the stored verdict unchanged"
sed '/<memballoon/,/<\/memballoon>/d' "$T/dump.xml" >"$T/changed.xml"
check '"$tool" check --xml "$T/changed.xml" --sysfs "$src/tests/sysfs/host1" >"$T/out" 2>&1; grep -q verdict-changed "$T/out"' "a changed domain shows that the stored verdict differs"

virsh dumpxml dmgtest-refused >"$T/refused-dump.xml" 2>/dev/null
check '! DMAGUARD_CONF="$T/dmaguard.conf" "$hook" dmgtest-refused migrate begin - <"$T/refused-dump.xml" >"$T/out" 2>&1 && grep -q "cannot migrate" "$T/out"' "the migrate hook, invoked as libvirt does, refuses a domain with a PCI hostdev"
check 'DMAGUARD_CONF="$T/dmaguard.conf" "$hook" dmgtest-tiny migrate begin - <"$T/dump.xml" >"$T/out" 2>"$T/err" && [ ! -s "$T/out" ]' "the migrate hook lets a plain domain through with empty stdout (XML unchanged)"

virsh destroy dmgtest-tiny >/dev/null 2>&1
check '! virsh domstate dmgtest-tiny | grep -q running' "the test's domain is stopped"
echo "1..\$n"
[ "\$failed" -eq 0 ]
EOF

unshare -m --propagation private bash "$T/inner.sh"
rc=$?
if [ $rc -ne 0 ]; then
    echo "# daemon log:"; sed 's/^/#   /' "$T/daemon.log" 2>/dev/null | tail -15
    echo "# hook log:"; sed 's/^/#   /' "$T/hook.log" 2>/dev/null | tail -10
fi
exit $rc

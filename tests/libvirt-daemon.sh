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
#   - check --live over a qemu+unix:// URI, as a remote host is reached:
#     the running QEMU's own query-migrate answer, confirmed for a plain
#     domain, different (live-blockers-differ) for an ivshmem peer, which
#     QEMU 7.2 blocks and dmaguard does not model, and what virsh migrate
#     refuses with; an inactive domain is not asked; a stopped (SIGSTOP)
#     QEMU is "not checked" within --live-timeout; a stopped (SIGSTOP)
#     daemon fails the check within the open deadline;
#   - libvirt's own start check of PCI hostdevs
#     (qemuHostdevPreparePCIDevicesCheckSupport): on a host whose domain
#     capabilities list no PCI passthrough backend (no IOMMU, no
#     /dev/vfio/vfio), check --domain-capabilities reports
#     libvirt-host-no-vfio with libvirt's words, a read-only check cannot
#     know it (nor calls the verdict --write-metadata stored with it
#     changed), and virsh start fails with exactly those words once the
#     hook (which has no domain capabilities) let the domain through; a
#     legacy <driver name='kvm'/> is refused by the hook first
#     (libvirt-hostdev-backend-kvm), and by libvirt with its own words
#     when the policy only warns about that code;
#   - the migrate hook, invoked exactly as libvirt invokes it (a second
#     daemon to migrate to is not set up; docs/libvirt.rst says so).
# The daemon and every QEMU it started are stopped at the end, even when
# the test fails.  Exit 77 (skip) without root, libvirtd, virsh, unshare or
# the libvirt-qemu user.  The daemon's setup and teardown are
# tests/libvirtd-private.sh's, shared with tests/libvirt-truth.sh.
set -u
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
hook="$build/tools/dmaguard-qemu-hook"
tool="$build/tools/virt-dmaguard"

# shellcheck source=libvirtd-private.sh
. "$src/tests/libvirtd-private.sh"
lvp_require
[ -x "$hook" ] || { echo "not ok 1 - $hook is not built"; exit 1; }

lvp_init dmaguard-libvirtd
T=$LVP_DIR
# /dev/shm is the host's: the ivshmem file gets a name of this run's own.
shm=dmgtest-shm-${T##*.}
# virt-dmaguard's emulator probe cache: this test's own.
export XDG_CACHE_HOME=$T/xdg
cleanup() {
    # The ivshmem domain's shared memory file, named after this run.
    rm -f "/dev/shm/$shm"
    # Every QEMU the daemon started, the daemon, and $T.
    lvp_cleanup
}
trap cleanup EXIT

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

# An ivshmem-plain peer: QEMU 7.2's ivshmem_common_realize() adds a
# migration blocker for it (hw/misc/ivshmem.c), which dmaguard does not
# model.
cat >"$T/ivshmem.xml" <<EOF
<domain type='qemu'>
  <name>dmgtest-ivshmem</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <shmem name='$shm' role='peer'>
      <model type='ivshmem-plain'/>
      <size unit='M'>4</size>
    </shmem>
    <memballoon model='virtio'/>
  </devices>
</domain>
EOF
# PCI hostdevs and libvirt's start check of them: the default backend
# (started, when the host cannot pass it through), an <interface
# type='hostdev'> and <driver name='vfio'/> (checked only), and the
# legacy kvm backend.
cat >"$T/hostdev.xml" <<'EOF'
<domain type='qemu'>
  <name>dmgtest-hostdev</name>
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
cat >"$T/hostdevs.xml" <<'EOF'
<domain type='qemu'>
  <name>dmgtest-hostdevs</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <interface type='hostdev' managed='yes'>
      <source><address type='pci' domain='0x0000' bus='0x3b' slot='0x00' function='0x1'/></source>
      <alias name='ua-net0'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <driver name='vfio'/>
      <source><address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/></source>
      <alias name='ua-gpu1'/>
    </hostdev>
  </devices>
</domain>
EOF
sed -e 's/dmgtest-hostdev</dmgtest-kvm</' \
    -e "s|<source><address domain|<driver name='kvm'/><source><address domain|" \
    "$T/hostdev.xml" >"$T/kvm.xml"
# hostdev.py FILE CASE [VIRSH_OUT]: assertions on check --json of the
# hostdev domains, and on what virsh start printed.
cat >"$T/hostdev.py" <<'EOF'
import json, re, sys
DEFAULT = "host doesn't support passthrough of host PCI devices"
VFIO = "host doesn't support VFIO PCI passthrough"
doms = {d["name"]: d for d in json.load(open(sys.argv[1]))["domains"]}
case = sys.argv[2]
def errors(name, code):
    return [e for e in doms[name]["errors"] if e["code"] == code]
def words(e):
    # The libvirt error dmaguard predicts, as virsh prints it after "error: ".
    m = re.search(r'\("(unsupported configuration: [^"]*)"\)', e["message"])
    assert m, e["message"]
    return m.group(1)
if case == "novfio":
    d = doms["dmgtest-hostdev"]
    assert d["host_pci_passthrough"] is False, d["host_pci_passthrough"]
    e = errors("dmgtest-hostdev", "libvirt-host-no-vfio")
    assert [x["device"] for x in e] == ["ua-gpu0"], d["errors"]
    assert words(e[0]) == "unsupported configuration: " + DEFAULT, e[0]
    for k in ("intel_iommu=on", "amd_iommu=on", "/dev/vfio/vfio", "vfio-pci"):
        assert k in e[0]["message"], (k, e[0]["message"])
    d = doms["dmgtest-hostdevs"]
    assert d["host_pci_passthrough"] is False, d
    e = errors("dmgtest-hostdevs", "libvirt-host-no-vfio")
    assert [(x["device"], words(x)) for x in e] == [
        ("ua-net0", "unsupported configuration: " + DEFAULT),
        ("ua-gpu1", "unsupported configuration: " + VFIO)], d["errors"]
elif case == "vfio":
    for name in ("dmgtest-hostdev", "dmgtest-hostdevs"):
        assert doms[name]["host_pci_passthrough"] is True, doms[name]
        assert not errors(name, "libvirt-host-no-vfio"), doms[name]["errors"]
elif case == "unknown":
    for name in ("dmgtest-hostdev", "dmgtest-hostdevs"):
        assert doms[name]["host_pci_passthrough"] is None, doms[name]
        assert not errors(name, "libvirt-host-no-vfio"), doms[name]["errors"]
elif case == "virsh":
    # virsh start's last line is exactly the error dmaguard predicted.
    e = errors("dmgtest-hostdev", "libvirt-host-no-vfio")[0]
    last = open(sys.argv[3]).read().strip().splitlines()[-1]
    assert last == "error: " + words(e), (last, words(e))
else:
    sys.exit("unknown case " + case)
EOF
# live.py FILE CASE: assertions on the output of check --live --json.
cat >"$T/live.py" <<'EOF'
import json, sys
IVSHMEM = "Migration is disabled when using feature 'peer mode' in device 'ivshmem'"
doms = {d["name"]: d for d in json.load(open(sys.argv[1]))["domains"]}
case = sys.argv[2]
def live(name):
    return doms[name]["migration"]["live"]
def differ(name):
    return [w for w in doms[name]["warnings"] if w["code"] == "live-blockers-differ"]
if case == "ivshmem":
    l = live("dmgtest-ivshmem")
    assert l["checked"] and l["qemu_version"].startswith("7.2."), l
    assert l["blocked_reasons"] == [IVSHMEM] and l["confirmed"] is False and l["error"] is None, l
    assert doms["dmgtest-ivshmem"]["migration"]["blockers"] == [], doms["dmgtest-ivshmem"]["migration"]
    w = differ("dmgtest-ivshmem")
    assert len(w) == 1 and IVSHMEM in w[0]["message"] and "predicted none" in w[0]["message"], w
elif case == "tiny":
    l = live("dmgtest-tiny")
    assert l["checked"] and l["blocked_reasons"] == [] and l["confirmed"] is True and l["error"] is None, l
    assert not differ("dmgtest-tiny"), doms["dmgtest-tiny"]["warnings"]
elif case == "inactive":
    l = live("dmgtest-refused")
    assert not l["checked"] and l["error"] is None and l["blocked_reasons"] is None, l
elif case == "readonly":
    l = live("dmgtest-tiny")
    assert not l["checked"] and "read only access prevents virDomainQemuMonitorCommand" in l["error"], l
elif case == "stopped":
    l = live("dmgtest-tiny")
    assert not l["checked"] and "did not answer within 2 s" in l["error"], l
else:
    sys.exit("unknown case " + case)
EOF

# fleet.py FILE DAEMON_URI NODE_URI: a fleet scan of the private daemon
# and the example node, each judged with its own facts.
cat >"$T/fleet.py" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
daemon, node = sys.argv[2:]
d, n = doc["hosts"]
assert (d["uri"], n["uri"]) == (daemon, node), (d["uri"], n["uri"])
assert d["checked"] and n["checked"], (d["error"], n["error"])
# The daemon's host: its libvirt, its node devices, its QEMU (a local
# connection: each domain's own <emulator>, probed).
p = d["profile"]
assert p["libvirt_version"] == "9.0.0" and p["libvirt_version_source"] == "connection", p
assert p["host_devices"] == "nodedev" and p["nodedev_uri"] == daemon, p
assert p["qemu_version"] == "7.2" and p["qemu_version_source"] == "probed", p
names = sorted(x["name"] for x in d["domains"])
assert {"dmgtest-tiny", "dmgtest-ivshmem", "dmgtest-refused"} <= set(names), names
# The example node: its own node devices and domains.
p = n["profile"]
assert p["host_devices"] == "nodedev" and p["nodedev_uri"] == node, p
assert sorted(x["name"] for x in n["domains"]) == ["gpu-passthrough", "misconfigured", "vgpu-mdev", "viommu-vfs", "virtio-mem"]
EOF

cat >"$T/scenarios.sh" <<EOF
set -u
uri="qemu:///system?socket=$T/sock/libvirt-sock"
# The same daemon through the remote driver, as another host reaches it.
ruri="qemu+unix:///system?socket=$T/sock/libvirt-sock"
n=0 failed=0
ok() { n=\$((n + 1)); echo "ok \$n - \$1"; }
not_ok() { n=\$((n + 1)); failed=\$((failed + 1)); echo "not ok \$n - \$1"; }
virsh() { command virsh -q -c "\$uri" "\$@"; }
check() { if eval "\$1"; then ok "\$2"; else not_ok "\$2"; sed 's/^/# /' "$T/out" 2>/dev/null | head -20; fi; }
# running DOMAIN: poll, for 30 s at most, until the domain runs.
running() {
    local i
    for i in \$(seq 300); do
        [ "\$(virsh domstate "\$1" 2>/dev/null)" = running ] && return 0
        sleep 0.1
    done
    return 1
}
live() { "$tool" check --connect "\$ruri" --live "\$@"; }

check 'virsh list --all >"$T/out" 2>&1' "a private libvirtd answers on its own socket"

virsh define "$T/refused.xml" >"$T/out" 2>&1
check '! virsh start dmgtest-refused >"$T/out" 2>&1' "virsh start of a domain with x-balloon-allowed on a PCI hostdev fails"
check 'grep -q "dmaguard" "$T/out" && grep -q "balloon-optin-not-mdev" "$T/out"' "virsh's error carries dmaguard's message"
check '! virsh domstate dmgtest-refused 2>/dev/null | grep -q running' "the refused domain is not running"

# libvirt's default balloon (qemuDomainDefAddDefaultDevices()): a domain
# without <memballoon> gets one at define, as check --xml predicts.
sed -e 's/dmgtest-tiny/dmgtest-noballoon/' -e '/<memballoon/d' "$T/tiny.xml" >"$T/noballoon.xml"
check '"$tool" check --xml "$T/noballoon.xml" --sysfs "$src/tests/sysfs/host1" --json >"$T/out" 2>&1 && python3 -c "import json,sys; b=json.load(open(sys.argv[1]))[\"domains\"][0][\"balloon\"]; assert b[\"device\"] == \"balloon0\" and b[\"implicit\"] and b[\"effective\"], b" "$T/out"' "check --xml predicts libvirt's default balloon for a domain without <memballoon>"
check 'virsh define "$T/noballoon.xml" >"$T/out" 2>&1 && virsh dumpxml dmgtest-noballoon >"$T/out" 2>&1 && grep -q "<memballoon model=.virtio.>" "$T/out"' "libvirt adds that very balloon at define"
virsh undefine dmgtest-noballoon >/dev/null 2>&1
# libvirt accepts a domain whose size overflows once rounded for QEMU,
# and refuses its start (qemuDomainAlignMemorySizes()), as check says.
sed -e 's/dmgtest-tiny/dmgtest-huge/' -e "s|<memory unit='MiB'>64</memory>|<memory unit='KiB'>9007199254740991</memory>|" "$T/tiny.xml" >"$T/huge.xml"
check '"$tool" check --xml "$T/huge.xml" --sysfs "$src/tests/sysfs/host1" >"$T/out" 2>&1; grep -q "libvirt-memory-size" "$T/out" && grep -q "initial memory size overflowed after alignment" "$T/out"' "check --xml: libvirt will refuse a size that overflows after alignment"
check 'virsh define "$T/huge.xml" >"$T/out" 2>&1 && ! virsh start dmgtest-huge >"$T/out" 2>&1 && grep -q "initial memory size overflowed after alignment" "$T/out"' "libvirt defines it and refuses its start with those words"
virsh undefine dmgtest-huge >/dev/null 2>&1
# libvirt refuses more vCPUs than QEMU 7.2's q35 allows (query-machines
# cpu-max 288; qemuValidateDomainVCpuTopology()), as check predicts.
sed -e 's/dmgtest-tiny/dmgtest-vcpus/' -e "s|<vcpu>1</vcpu>|<vcpu>289</vcpu>|" -e "s|machine='pc'|machine='q35'|" "$T/tiny.xml" >"$T/vcpus.xml"
check '"$tool" check --xml "$T/vcpus.xml" --sysfs "$src/tests/sysfs/host1" >"$T/out" 2>&1; grep -q "libvirt-vcpus-machine-limit" "$T/out" && grep -q "Maximum CPUs greater than specified machine type limit 288" "$T/out"' "check --xml: 289 vCPUs exceed QEMU 7.2's q35 limit"
check '{ virsh define "$T/vcpus.xml" && virsh start dmgtest-vcpus; } >"$T/out" 2>&1; grep -q "Maximum CPUs greater than specified machine type limit 288" "$T/out"' "libvirt refuses it with those words"
virsh undefine dmgtest-vcpus >/dev/null 2>&1
# libvirt's validation at define (memory devices, the IOMMU, vCPUs;
# libvirt_validate.c): each golden case check refuses, the real libvirtd
# refuses too, with the words the golden file starts with.
for c in virtio-mem-no-numa virtio-mem-node-1 virtio-mem-requested-odd virtio-mem-block-3m virtio-mem-no-maxmemory virtio-mem-maxmem-small virtio-iommu-no-acpi mdev-display-no-graphics \
         intel-iommu-i440fx intel-iommu-intremap-no-split vcpus-pc-256 vcpus-q35-256-no-eim machine-q35-8.0; do
    want=\$(head -1 "$src/tests/qemuxml2argv/\$c.x86_64-7.2.err" | sed 's/; .*//')
    check '! virsh define "$src/tests/qemuxml2argv/'\$c'.xml" >"$T/out" 2>&1 && grep -qF -- "\$want" "$T/out"' "libvirt refuses \$c with the words check gives: \$want"
    virsh undefine "\$c" >/dev/null 2>&1
done
virsh define "$T/tiny.xml" >"$T/out" 2>&1
check 'virsh start dmgtest-tiny >"$T/out" 2>&1' "virsh start of a domain without host devices succeeds (TCG)"
check 'grep -q "dmgtest-tiny" "$T/hook.log" && grep "dmgtest-tiny" "$T/hook.log" | grep -q "start"' "the hook logged its verdict for the started domain"

check '"$tool" check --connect "\$uri" dmgtest-tiny --write-metadata >"$T/out" 2>&1' "check --write-metadata on the running domain"
check 'virsh metadata dmgtest-tiny --uri http://dmaguard.org/xmlns/domain/1.0 >"$T/out" 2>&1 && grep -q "verdict" "$T/out" && grep -q "balloon=\"effective\"" "$T/out"' "virsh metadata shows the stored verdict (live)"
check 'virsh metadata dmgtest-tiny --uri http://dmaguard.org/xmlns/domain/1.0 --config >"$T/out" 2>&1 && grep -q "digest=" "$T/out"' "the verdict is in the persistent configuration too"
check 'virsh dumpxml dmgtest-tiny >"$T/dump.xml" && "$tool" check --xml "$T/dump.xml" --sysfs "$src/tests/sysfs/host1" >"$T/out" 2>&1 && ! grep -q verdict-changed "$T/out"' "a later check of the same domain finds the stored verdict unchanged"
# model='none': only that removes the balloon (without <memballoon>,
# libvirt adds its default one back).
sed -e '/<memballoon/,/<\/memballoon>/d' -e "s|</devices>|<memballoon model='none'/></devices>|" "$T/dump.xml" >"$T/changed.xml"
check '"$tool" check --xml "$T/changed.xml" --sysfs "$src/tests/sysfs/host1" >"$T/out" 2>&1; grep -q verdict-changed "$T/out"' "a changed domain shows that the stored verdict differs"

# QEMU's live answer (check --live), through the remote driver.
virsh define "$T/ivshmem.xml" >"$T/out" 2>&1
check 'virsh start dmgtest-ivshmem >"$T/out" 2>&1 && running dmgtest-ivshmem' "an ivshmem-plain peer domain runs (TCG)"
check 'running dmgtest-tiny' "the plain domain still runs"
live --all --json >"$T/live.json" 2>"$T/out"; rc=\$?
check '[ \$rc = 1 ]' "check --live --all exits 1 for dmgtest-refused's configuration errors, as without --live"
check 'python3 "$T/live.py" "$T/live.json" ivshmem >"$T/out" 2>&1' "QEMU lists the ivshmem peer blocker dmaguard does not predict: live-blockers-differ with both lists"
check 'python3 "$T/live.py" "$T/live.json" tiny >"$T/out" 2>&1' "QEMU lists no blocker for the plain domain: confirmed"
check 'python3 "$T/live.py" "$T/live.json" inactive >"$T/out" 2>&1' "an inactive domain is not asked"
# libvirt logs its keepalive probes at level info (rpc.keepalive).
LIBVIRT_LOG_FILTERS="2:rpc.keepalive" LIBVIRT_LOG_OUTPUTS="2:file:$T/keepalive.log" "$tool" check --connect "\$ruri" dmgtest-tiny >"$T/out" 2>&1
check 'grep -q "RPC_KEEPALIVE_START.*interval=5 count=3" "$T/keepalive.log"' "check turns libvirt's keepalive on for the remote connection (5 s, 3 missed)"
check 'live dmgtest-tiny >"$T/out" 2>&1 && grep -q "asked live (query-migrate): no blockers, as predicted" "$T/out"' "the text report shows QEMU's confirmation"
check 'live dmgtest-ivshmem >"$T/out" 2>&1 && grep -q "lists OTHER blockers: Migration is disabled when using feature .peer mode. in device .ivshmem." "$T/out" && grep -q "live-blockers-differ" "$T/out"' "the text report shows QEMU's other blocker and the warning"
check '! virsh migrate --live dmgtest-ivshmem "\$ruri" >"$T/out" 2>&1 && grep -q "cannot migrate domain: Migration is disabled when using feature .peer mode. in device .ivshmem." "$T/out"' "virsh migrate refuses with the reason QEMU gave check --live"
check 'running dmgtest-ivshmem' "the refused migration left the domain running"
check 'virsh dominfo dmgtest-tiny >"$T/out" 2>&1 && grep -q "custom monitor control commands issued" "$T/out"' "libvirt marks a domain check --live asked as tainted (custom-monitor)"
# A fleet: the daemon over qemu+unix://, as a remote host is reached, and
# the example node of libvirt's test driver, checked side by side.
node="test://$src/examples/dmaguard-node.xml"
"$tool" check --connect "\$ruri" --connect "\$node" --all --json >"$T/fleet.json" 2>"$T/out"; rc=\$?
check '[ \$rc = 1 ] && python3 "$T/fleet.py" "$T/fleet.json" "\$ruri" "\$node" >"$T/out" 2>&1' "a fleet scan of the daemon and the example node: one section each, with its own facts"
# The daemon's read-only socket: libvirt refuses the monitor command.
"$tool" check --connect "qemu+unix:///system?socket=$T/sock/libvirt-sock-ro" --live --json dmgtest-tiny >"$T/live.json" 2>"$T/out"; rc=\$?
check '[ \$rc = 0 ] && python3 "$T/live.py" "$T/live.json" readonly >"$T/out" 2>&1' "without write access the domain is not checked, with libvirt's reason, and the check succeeds"
# A QEMU that does not answer: stopped, so libvirt waits on its monitor.
qpid=\$(head -c 32 "$T/run/qemu/dmgtest-tiny.pid" 2>/dev/null | tr -d '[:space:]')
if [[ \$qpid =~ ^[1-9][0-9]*$ ]] && tr '\\0' '\\n' </proc/\$qpid/cmdline | grep -qx 'guest=dmgtest-tiny\(,.*\)\?'; then
    kill -STOP \$qpid
    t0=\$SECONDS
    # timeout(1): a hang fails this test instead of running into meson's.
    timeout -k 5 60 "$tool" check --connect "\$ruri" --live --live-timeout 2 --json dmgtest-tiny >"$T/live.json" 2>"$T/out"; rc=\$?
    t1=\$SECONDS
    kill -CONT \$qpid
    check '[ \$rc = 0 ] && python3 "$T/live.py" "$T/live.json" stopped >"$T/out" 2>&1' "a stopped QEMU is not checked, with the reason, and the check succeeds"
    check '[ \$((t1 - t0)) -lt 60 ]' "the stopped QEMU cost the --live-timeout, not a hang (\$((t1 - t0)) s)"
    for i in \$(seq 6); do
        live --live-timeout 5 --json dmgtest-tiny >"$T/live.json" 2>"$T/out" &&
            python3 "$T/live.py" "$T/live.json" tiny >/dev/null 2>&1 && break
        sleep 1
    done
    check 'python3 "$T/live.py" "$T/live.json" tiny >"$T/out" 2>&1' "the continued QEMU answers again"
else
    not_ok "the pidfile of dmgtest-tiny names its QEMU"
fi
# A daemon that accepts connections and does not answer: stopped.
dpid=\$(head -c 32 "$T/daemon.pid" 2>/dev/null | tr -d '[:space:]')
if [[ \$dpid =~ ^[1-9][0-9]*$ ]] && [ "\$(cat /proc/\$dpid/comm 2>/dev/null)" = libvirtd ]; then
    kill -STOP \$dpid
    t0=\$SECONDS
    timeout -k 5 120 "$tool" check --connect "\$ruri" dmgtest-tiny >"$T/out" 2>&1; rc=\$?
    t1=\$SECONDS
    kill -CONT \$dpid
    check '[ \$rc = 2 ] && grep -q "no answer within 30 s" "$T/out"' "a stopped daemon: check fails with 'no answer within 30 s', not a hang"
    check '[ \$((t1 - t0)) -lt 90 ]' "the stopped daemon cost the open deadline (\$((t1 - t0)) s)"
    for i in \$(seq 30); do virsh list >/dev/null 2>&1 && break; sleep 1; done
    check 'virsh list >"$T/out" 2>&1' "the continued daemon answers again"
else
    not_ok "daemon.pid names the daemon"
fi

# libvirt's start check of PCI hostdevs (qemuHostdevPreparePCIDevicesCheckSupport),
# and the domain capabilities that show the host's half of it.
virsh define "$T/hostdev.xml" >"$T/out" 2>&1
virsh define "$T/hostdevs.xml" >>"$T/out" 2>&1
check 'virsh define "$T/kvm.xml" >>"$T/out" 2>&1' "libvirt defines domains with PCI hostdevs, and one with <driver name='kvm'/>"
check 'virsh domcapabilities --virttype qemu --arch x86_64 --machine pc >"$T/domcaps.xml" 2>"$T/out" && grep -q "<enum name=.pciBackend." "$T/domcaps.xml"' "virsh domcapabilities lists the pciBackend enum"
if grep -q "<enum name='pciBackend'/>" "$T/domcaps.xml"; then host=novfio; else host=vfio; fi
"$tool" check --connect "\$ruri" --domain-capabilities --json dmgtest-hostdev dmgtest-hostdevs >"$T/hostdev.json" 2>"$T/out"; rc=\$?
if [ \$host = novfio ]; then
    check '[ \$rc = 1 ] && python3 "$T/hostdev.py" "$T/hostdev.json" novfio >"$T/out" 2>&1' "no PCI passthrough backend: check --domain-capabilities reports libvirt-host-no-vfio with libvirt's words per backend, and host_pci_passthrough false"
else
    check 'python3 "$T/hostdev.py" "$T/hostdev.json" vfio >"$T/out" 2>&1' "this host lists the vfio backend: host_pci_passthrough true, no libvirt-host-no-vfio"
fi
"$tool" check --connect "\$ruri" --json dmgtest-hostdev dmgtest-hostdevs >"$T/hostdev-ro.json" 2>"$T/out"; rc=\$?
check '[ \$rc = 0 ] && python3 "$T/hostdev.py" "$T/hostdev-ro.json" unknown >"$T/out" 2>&1' "a read-only check cannot ask for domain capabilities: host_pci_passthrough null, no libvirt-host-no-vfio, exit 0"
if [ \$host = novfio ]; then
    check '"$tool" check --connect "\$ruri" --domain-capabilities dmgtest-hostdev >"$T/out" 2>&1; grep -q "host PCI passthrough: NO" "$T/out" && grep -q "\[libvirt-host-no-vfio\]" "$T/out"' "the text report says the host cannot pass PCI devices through"
    # --write-metadata is read-write, so it knows; a later read-only check
    # does not, and must not call that a change (the digest leaves
    # libvirt-host-no-vfio out).
    "$tool" check --connect "\$uri" --write-metadata dmgtest-hostdev >"$T/out" 2>&1
    check 'virsh metadata dmgtest-hostdev --uri http://dmaguard.org/xmlns/domain/1.0 --config >"$T/out" 2>&1 && grep -q "errors=.1." "$T/out"' "check --write-metadata stored the verdict with libvirt-host-no-vfio among its errors"
    check '"$tool" check --connect "\$uri" dmgtest-hostdev >"$T/out" 2>&1; ! grep -q verdict-changed "$T/out" && ! grep -q libvirt-host-no-vfio "$T/out"' "a later read-only check, which cannot know it, does not call the stored verdict changed"
    check '! virsh start dmgtest-hostdev >"$T/start.out" 2>&1 && python3 "$T/hostdev.py" "$T/hostdev.json" virsh "$T/start.out" >"$T/out" 2>&1' "virsh start fails with exactly the error dmaguard predicted"
    check 'cp "$T/start.out" "$T/out" && grep -qxF "error: unsupported configuration: host doesn'"'"'t support passthrough of host PCI devices" "$T/start.out"' "... which is libvirt's: host doesn't support passthrough of host PCI devices"
    check 'grep -q "domain dmgtest-hostdev prepare/begin: .*: allowed\$" "$T/hook.log"' "the hook, without domain capabilities, let that domain through: libvirt refused it"
    check '! virsh domstate dmgtest-hostdev 2>/dev/null | grep -q running' "the refused hostdev domain is not running"
else
    ok "# SKIP virsh start of a PCI hostdev domain: this host could pass 0000:01:00.0 through for real"
fi
# The legacy kvm backend is refused whatever the host, so the hook refuses
# it first; libvirt's own words show once the policy only warns.
check '! virsh start dmgtest-kvm >"$T/out" 2>&1 && grep -q "Hook script execution failed" "$T/out" && grep -q "libvirt-hostdev-backend-kvm" "$T/out" && grep -q "host doesn.t support legacy PCI passthrough" "$T/out"' "virsh start of <driver name='kvm'/>: the hook refuses it with libvirt-hostdev-backend-kvm and libvirt's words"
cp "$T/dmaguard.conf" "$T/dmaguard.conf.orig"
printf '[warn-only]\ncodes=libvirt-hostdev-backend-kvm\n' >>"$T/dmaguard.conf"
check '! virsh start dmgtest-kvm >"$T/out" 2>&1 && [ "\$(tail -n 1 "$T/out")" = "error: unsupported configuration: host doesn'"'"'t support legacy PCI passthrough" ] && grep -q "domain dmgtest-kvm prepare/begin: .*not refused by the policy.*libvirt-hostdev-backend-kvm" "$T/hook.log"' "with that code warn-only, the hook lets it through and libvirt refuses it: host doesn't support legacy PCI passthrough"
mv "$T/dmaguard.conf.orig" "$T/dmaguard.conf"
check '! virsh domstate dmgtest-kvm 2>/dev/null | grep -q running' "the kvm backend domain is not running"

virsh dumpxml dmgtest-refused >"$T/refused-dump.xml" 2>/dev/null
check '! DMAGUARD_CONF="$T/dmaguard.conf" "$hook" dmgtest-refused migrate begin - <"$T/refused-dump.xml" >"$T/out" 2>&1 && grep -q "cannot migrate" "$T/out"' "the migrate hook, invoked as libvirt does, refuses a domain with a PCI hostdev"
check 'DMAGUARD_CONF="$T/dmaguard.conf" "$hook" dmgtest-tiny migrate begin - <"$T/dump.xml" >"$T/out" 2>"$T/err" && [ ! -s "$T/out" ]' "the migrate hook lets a plain domain through with empty stdout (XML unchanged)"

virsh destroy dmgtest-tiny >/dev/null 2>&1
virsh destroy dmgtest-ivshmem >/dev/null 2>&1
check '! virsh domstate dmgtest-tiny | grep -q running && ! virsh domstate dmgtest-ivshmem | grep -q running' "the test's domains are stopped"
echo "1..\$n"
[ "\$failed" -eq 0 ]
EOF

lvp_run bash "$T/scenarios.sh"
rc=$?
if [ $rc -ne 0 ]; then
    echo "# daemon log:"; sed 's/^/#   /' "$T/daemon.log" 2>/dev/null | tail -15
    echo "# hook log:"; sed 's/^/#   /' "$T/hook.log" 2>/dev/null | tail -10
fi
exit $rc

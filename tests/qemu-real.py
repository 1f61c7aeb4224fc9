#!/usr/bin/env python3
"""qemu-real.py: prove the generated QEMU 7.2 command lines against the
real QEMU that the test setup installs (Debian 12: qemu-system-x86,
qemu-system-misc for s390x and qemu-system-arm for aarch64, all 7.2).

  qemu-real.py props DIR   every property the NAME.ARCH-7.2.args files use
                           exists on its device type, per `-device T,help`
                           of qemu-system-ARCH
  qemu-real.py start DIR   QEMU accepts the arguments of every case without
                           a host device: -S ... -qmp stdio, then quit

Exit 0 pass, 1 fail, 77 skip (no qemu-system-x86_64).  TAP on stdout.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

QEMU = shutil.which("qemu-system-x86_64")
VERSION = "7.2"
GENERIC = {"driver", "id", "bus", "addr", "qom-type"}


def cases(d):
    """(name, argv) of every 7.2 golden command line whose QEMU is here."""
    for f in sorted(os.listdir(d)):
        m = re.fullmatch(r"(.+)\.([a-z0-9_]+)-%s\.args" % re.escape(VERSION), f)
        if not m:
            continue
        name, arch = m.groups()
        # A case with NAME.features is for a downstream QEMU carrying those
        # features; upstream QEMU cannot prove it.
        if os.path.exists(os.path.join(d, name + ".features")):
            continue
        if not shutil.which("qemu-system-" + arch):
            print("# SKIP %s: qemu-system-%s is not installed" % (name, arch))
            continue
        # libvirt's .args style: one argument per line, " \\" continues
        text = open(os.path.join(d, f)).read().replace(" \\\n", " ")
        argv = shlex.split(text)
        argv[0] = shutil.which("qemu-system-" + arch)
        yield "%s (%s)" % (name, arch), argv


def options(argv):
    """(option, value) pairs after the binary."""
    it = iter(argv[1:])
    return list(zip(it, it))


_help = {}


def qemu_props(qemu, kind, typ):
    """Property names of a -device/-object type, from that QEMU."""
    key = (qemu, kind, typ)
    if key not in _help:
        out = subprocess.run([qemu, kind, typ + ",help"], capture_output=True, text=True).stdout
        _help[key] = {m.group(1) for m in re.finditer(r"^\s+([\w.-]+)=", out, re.M)}
    return _help[key]


def unknown_props(qemu, opt, val):
    """Properties in one option that QEMU does not know, and the type."""
    if opt in ("-device", "-object"):
        obj = json.loads(val)
        typ = obj.get("driver") or obj.get("qom-type")
        keys = set(obj) - GENERIC
    else:
        # -machine and -m options are not device types; QEMU's acceptance
        # of them is what the start test proves.
        return None, set()
    known = qemu_props(qemu, opt, typ)
    return typ, {k for k in keys if k not in known and k.replace("-", "_") not in known}


def test_props(d):
    n = failed = 0
    # The checker must be able to fail: a property QEMU lacks is caught.
    typ, bad = unknown_props(QEMU, "-device", '{"driver":"vfio-pci","x-no-such-property":true}')
    n += 1
    if bad != {"x-no-such-property"}:
        failed += 1
        print("not ok %d - the checker misses an unknown property" % n)
    else:
        print("ok %d - the checker catches an unknown vfio-pci property" % n)
    for name, argv in cases(d):
        for opt, val in options(argv):
            typ, bad = unknown_props(argv[0], opt, val)
            if typ is None:
                continue
            n += 1
            if bad:
                failed += 1
                print("not ok %d - %s: %s %s has no %s in QEMU %s" % (n, name, opt, typ, ", ".join(sorted(bad)), VERSION))
            else:
                print("ok %d - %s: %s %s" % (n, name, opt, typ))
    print("1..%d" % n)
    return failed == 0


def run_qemu(cmd):
    qmp = '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n'
    try:
        r = subprocess.run(cmd, input=qmp, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False, "timed out"
    return r.returncode == 0 and '"return"' in r.stdout, r.stderr.strip()


def test_start(d):
    n = failed = 0
    hugedir = tempfile.mkdtemp(prefix="dmaguard-hugepages-")
    try:
        for name, argv in cases(d):
            if any("vfio-" in a for a in argv):
                continue
            args = [a.replace("/dev/hugepages/libvirt/qemu", hugedir) for a in argv[1:]]
            cmd = [argv[0]] + args + ["-S", "-nodefaults", "-accel", "tcg", "-display", "none", "-qmp", "stdio"]
            n += 1
            ok, why = run_qemu(cmd)
            accel = "tcg"
            # Some settings exist only with KVM (eim=on needs KVM's split
            # irqchip); QEMU says so, and then KVM must accept them.
            if not ok and "accel=kvm" in why and os.access("/dev/kvm", os.R_OK | os.W_OK):
                ok, why = run_qemu([c if c != "tcg" else "kvm" for c in cmd])
                accel = "kvm, as TCG lacks it"
            if ok:
                print("ok %d - QEMU %s accepts %s (%s)" % (n, VERSION, name, accel))
            else:
                failed += 1
                print("not ok %d - QEMU %s refuses %s: %s" % (n, VERSION, name, why))
                print("# " + " ".join(shlex.quote(c) for c in cmd))
    finally:
        shutil.rmtree(hugedir, ignore_errors=True)
    print("1..%d" % n)
    return failed == 0


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("props", "start"):
        print(__doc__, file=sys.stderr)
        return 2
    if not QEMU:
        print("1..0 # SKIP qemu-system-x86_64 is not installed")
        return 77
    ver = subprocess.run([QEMU, "--version"], capture_output=True, text=True).stdout
    if "version %s." % VERSION not in ver:
        print("1..0 # SKIP the golden files are proven against QEMU %s; this is %s" % (VERSION, ver.split("\n")[0]))
        return 77
    test = test_props if sys.argv[1] == "props" else test_start
    return 0 if test(sys.argv[2]) else 1


if __name__ == "__main__":
    sys.exit(main())

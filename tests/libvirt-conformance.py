#!/usr/bin/env python3
"""libvirt-conformance.py TOOL DATADIR [--baseline FILE] [--write-baseline FILE]

dmaguard against libvirt's own test data: DATADIR is libvirt's
tests/qemuxml2argvdata of the libvirt source package that matches the
installed libvirt (tools/fetch-libvirt-testdata.sh fetches it; it is read at
test time, never committed).

For every input that has a <hostdev>, <memballoon>, <iommu> or memory
device, and whose outcome libvirt records (NAME.err: libvirt refuses it;
NAME.x86_64-latest.args or NAME.args: libvirt's command line), it runs
`virt-dmaguard check --json` and `virt-dmaguard argv` and compares:

  accepted   libvirt accepts it, and check reports no configuration error
             of libvirt's (check refusing what libvirt accepts is the worst
             failure).  An error of QEMU's (a code whose docs/codes.rst
             :Source: is QEMU) is no disagreement: libvirt's test only
             builds the command line, which QEMU then refuses; those are
             listed as "qemu-refuses";
  refused    libvirt refuses it (.err), and check reports an error;
             refused_modelled counts only the refusals whose words are
             about what dmaguard models (hostdevs, IOMMU, memory devices,
             the balloon, vCPUs);
  balloon    libvirt's command line has a virtio balloon exactly when
             check's verdict has one;
  -m         argv's -m equals libvirt's (size in KiB, slots, maxmem);
  devices    each balloon and memory device (-device virtio-balloon-*,
             pc-dimm, virtio-mem-pci) of libvirt's command line has its
             twin in argv's, with the same driver and the same properties;
             addresses libvirt assigned itself (bus/addr, devno, a dimm's
             slot and addr where the XML gives none) are left out, as argv
             emits only the addresses the XML gives (docs/virt-dmaguard.rst).
  memlock    for every DO_TEST(NAME, LIMIT) of libvirt's
             tests/qemumemlocktest.c (beside DATADIR, with the domains in
             tests/qemumemlockdata/qemumemlock-NAME.xml), check's
             memlock_bytes equals LIMIT, libvirt's
             qemuDomainGetMemLockLimitBytes(): 0 is no limit set,
             VIR_DOMAIN_MEMORY_PARAM_UNLIMITED is null.  The test's setup
             before each DO_TEST (qemuTestSetHostArch(), the capabilities
             it sets) is read too: dmaguard judges every domain with a real
             QEMU's capabilities and this machine as the host, so a domain
             that names no architecture is judged for this machine's, and
             one the test judges on another host architecture cannot
             agree (it counts as a disagreement, with that reason).

It prints a table of agreement figures.  With --baseline, it fails when a
figure drops below the baseline's (a JSON file of the same figures).
Exit 0 pass, 1 agreement dropped, 2 usage, 77 skip (no data).
"""
import glob
import json
import xml.etree.ElementTree as ET
import os
import re
import subprocess
import sys

MODELLED = re.compile(r"<hostdev|<memballoon|<iommu|<memory\s+model=|<interface\s+type=.hostdev")
# A refusal about what dmaguard models, by libvirt's words in NAME.err.
# Refusals whose words match ABOUT_MODELLED but that are about what
# dmaguard does not model: host NUMA nodes (numatune, here libvirt's
# test mock), cputune, PCI controllers' NUMA nodes (pci-expander-bus,
# pseries PHBs), shmem, an interface's tap path.
NOT_MODELLED = re.compile(r"vcpusched|Mock: no numa node|pci-expander-bus|"
                          r"shared memory device|tap device path|PCI controller with index")
ABOUT_MODELLED = re.compile(r"[Hh]ostdev|mdev|VFIO|vfio|IOMMU|iommu|balloon|vCPU|vcpu|CPUs|"
                            r"memory device|hotplug|NUMA node|numa node|slots|zPCI|CCW|aw_bits|eim|"
                            r"interrupt remapping|memory size|integrated device", re.I)
# Cases whose XML needs files of libvirt's test tree (a relative <emulator>
# or firmware path) are judged like the rest; dmaguard never opens them.
QEMU = "8.0"          # the newest QEMU of libvirt 9.0's -latest test data
LIBVIRT = "9.0"


def outcome(d, name):
    """('err', path) | ('args', path) | None: what libvirt recorded.  The
    outcome with the newest QEMU's capabilities (-latest) wins over one
    with a test's hand-picked or empty capabilities: dmaguard judges for
    a real QEMU.  Without one, a command line wins over a refusal: a test
    that has both refuses with fewer capabilities than it builds with."""
    for kind, pattern in (("err", ".*-latest.err"), ("args", ".*-latest.args"),
                          ("args", ".args"), ("err", ".err")):
        found = sorted(glob.glob(os.path.join(d, glob.escape(name) + pattern)))
        # NAME.ARCH-latest.*, not NAME-other-test.ARCH-latest.*
        found = [p for p in found if os.path.basename(p)[len(name)] == "."]
        if found:
            return kind, found[0]
    return None


def libvirt_m(args):
    """libvirt's -m as (KiB, slots, maxmem KiB), or None."""
    m = re.search(r"^-m (\S+)", args, re.M)
    if not m:
        return None
    v = m.group(1)
    if "=" not in v:                       # old style: -m MiB
        return (int(v) * 1024, None, None)
    opts = dict(kv.split("=", 1) for kv in v.split(","))
    size = opts.get("size")
    if size is None:
        return None

    def kib(s):
        if s.endswith("k"):
            return int(s[:-1])
        if s.endswith("M"):
            return int(s[:-1]) * 1024
        return int(s) // 1024
    return (kib(size), opts.get("slots") and int(opts["slots"]),
            opts.get("maxmem") and kib(opts["maxmem"]))


MODELLED_DEVICES = re.compile(r"^(virtio-balloon-|pc-dimm$|virtio-mem-pci$)")


def device_props(args):
    """{id: props} of the modelled -device lines of a command line, JSON or
    the older key=value syntax."""
    out = {}
    for m in re.finditer(r"^-device (.*?)(?: \\)?$", args, re.M):
        v = m.group(1).strip()
        if v.startswith("'") and v.endswith("'"):
            v = v[1:-1]
        if v.startswith("{"):
            try:
                props = json.loads(v)
            except ValueError:
                continue
        else:
            parts = v.split(",")
            props = {"driver": parts[0]}
            for kv in parts[1:]:
                if "=" in kv:
                    k, val = kv.split("=", 1)
                    props[k] = val
        if not MODELLED_DEVICES.match(str(props.get("driver", ""))):
            continue
        norm = {}
        for k, val in props.items():
            if isinstance(val, bool):
                val = "on" if val else "off"
            norm[k] = str(val)
        out[norm.get("id")] = norm
    return out


def xml_addresses(xml):
    """The <address> type the XML gives the balloon, and each memory
    device in document order (None: no address)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None, []

    def addr(el):
        a = el.find("address")
        return a.get("type") if a is not None else None
    devices = root.find("devices")
    if devices is None:
        return None, []
    bal = devices.find("memballoon")
    return (addr(bal) if bal is not None else None,
            [addr(m) for m in devices.findall("memory")])


# What libvirt assigns when the XML gives no address (argv emits only the
# addresses the XML gives): per address type, its properties.
ASSIGNED = {"pci": {"bus", "addr"}, "ccw": {"devno"}, "dimm": {"slot", "addr"}}


def compare_devices(xml, want, got):
    """Disagreements between libvirt's and argv's modelled devices."""
    bal_addr, mem_addrs = xml_addresses(xml)
    mem_ids = [i for i, w in want.items() if not w.get("driver", "").startswith("virtio-balloon")]
    wrong = []
    for dev_id, w in want.items():
        g = got.get(dev_id)
        if g is None:
            wrong.append("%s missing" % dev_id)
            continue
        if w.get("driver", "").startswith("virtio-balloon"):
            given = bal_addr
        else:
            k = mem_ids.index(dev_id)
            given = mem_addrs[k] if k < len(mem_addrs) else None
        drop = set()
        for t, props in ASSIGNED.items():
            if given != t:
                drop |= props
        # A dimm address given without a base gets none; with memory
        # hotplug libvirt assigns the slot itself, which argv models.
        if given is None and w.get("driver") in ("pc-dimm", "nvdimm"):
            drop -= {"slot"}
        w2 = {k: v for k, v in w.items() if k not in drop}
        g2 = {k: v for k, v in g.items() if k not in drop}
        if w2 != g2:
            wrong.append("%s: libvirt %s, dmaguard %s" % (dev_id, w2, g2))
    for dev_id in got:
        if dev_id not in want:
            wrong.append("%s extra" % dev_id)
    return wrong


def qemu_codes():
    """The finding codes docs/codes.rst attributes to QEMU (its :Source:)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "codes.rst")
    with open(path) as fh:
        parts = re.split(r"\n``([a-z0-9-]+)``\n-+\n", fh.read())
    codes = set()
    for code, body in zip(parts[1::2], parts[2::2]):
        m = re.search(r":Source:\s*(\S+)", body)
        if m and m.group(1).startswith("QEMU"):
            codes.add(code)
    return codes

MEMLOCK_UNLIMITED = "VIR_DOMAIN_MEMORY_PARAM_UNLIMITED"
# libvirt's virArch names of the architectures dmaguard may be built for.
VIR_ARCH = {"x86_64": "VIR_ARCH_X86_64", "aarch64": "VIR_ARCH_AARCH64",
            "ppc64le": "VIR_ARCH_PPC64LE", "s390x": "VIR_ARCH_S390X"}


def memlock_cases(testc):
    """[(name, limit or MEMLOCK_UNLIMITED, host arch, caps)] of the DO_TESTs
    of qemumemlocktest.c, each with the host architecture and the QEMU
    capabilities its setup left in force."""
    cases = []
    arch, caps = None, []
    with open(testc) as fh:
        for line in fh:
            m = re.search(r"qemuTestSetHostArch\(&driver,\s*(VIR_ARCH_\w+)\)", line)
            if m:
                arch = m.group(1)
            m = re.search(r"virQEMUCapsSet\(qemuCaps,\s*(QEMU_CAPS_\w+)\)", line)
            if m:
                caps.append(m.group(1))
            m = re.search(r'^\s*DO_TEST\("([^"]+)",\s*(\w+)\)', line)
            if m:
                v = m.group(2)
                cases.append((m.group(1), v if v == MEMLOCK_UNLIMITED else int(v),
                              arch, list(caps)))
    return cases


def run(tool, *args):
    p = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tool, d = argv[1], argv[2]
    baseline = write = None
    rest = argv[3:]
    while rest:
        if rest[0] == "--baseline" and len(rest) > 1:
            baseline, rest = rest[1], rest[2:]
        elif rest[0] == "--write-baseline" and len(rest) > 1:
            write, rest = rest[1], rest[2:]
        else:
            print("unknown argument: %s" % rest[0], file=sys.stderr)
            return 2
    if not os.path.isdir(d):
        print("1..0 # SKIP no libvirt test data at %s" % d)
        return 77
    fig = {k: [0, 0] for k in ("accepted", "refused", "refused_modelled", "balloon", "m",
                               "devices", "memlock")}
    wrong = {k: [] for k in fig}
    qemu_layer = qemu_codes()
    qemu_refuses = []
    for f in sorted(os.listdir(d)):
        if not f.endswith(".xml"):
            continue
        name = f[:-4]
        path = os.path.join(d, f)
        with open(path, errors="replace") as fh:
            xml = fh.read()
        if not MODELLED.search(xml):
            continue
        out = outcome(d, name)
        if not out:
            continue
        kind, ref = out
        common = ["--xml", path, "--qemu-version", QEMU, "--libvirt-version", LIBVIRT,
                  "--sysfs", "/nonexistent-sysfs"]
        rc, so, se = run(tool, "check", "--json", *common)
        try:
            dom = json.loads(so)["domains"][0] if so.strip() else None
        except (ValueError, IndexError, KeyError):
            dom = None
        refused = rc == 2 or bool(dom and dom["errors"])
        libvirt_refuses = rc == 2 or bool(dom and [e for e in dom["errors"]
                                                   if e["code"] not in qemu_layer])
        if kind == "args":
            fig["accepted"][1] += 1
            if refused and not libvirt_refuses:
                qemu_refuses.append("%s: %s" % (name, "; ".join(e["code"] for e in dom["errors"])))
                fig["accepted"][0] += 1
            elif refused:
                why = se.strip() or "; ".join(e["code"] for e in dom["errors"])
                wrong["accepted"].append("%s: %s" % (name, why[:160]))
            else:
                fig["accepted"][0] += 1
        else:
            with open(ref, errors="replace") as fh:
                text = fh.read()
                about = bool(ABOUT_MODELLED.search(text)) and not NOT_MODELLED.search(text)
            for k in ("refused", "refused_modelled") if about else ("refused",):
                fig[k][1] += 1
                if refused:
                    fig[k][0] += 1
                else:
                    wrong[k].append(name)
        if kind != "args" or not dom:
            continue
        with open(ref, errors="replace") as fh:
            args = fh.read()
        fig["balloon"][1] += 1
        lv_balloon = "virtio-balloon" in args
        if lv_balloon == (dom["balloon"]["device"] is not None):
            fig["balloon"][0] += 1
        else:
            wrong["balloon"].append("%s: libvirt %s" % (name, lv_balloon))
        if refused:
            # argv prints no command line QEMU would refuse: nothing to
            # compare (qemu-refuses above).
            continue
        rc, so, se = run(tool, "argv", *common)
        flat = so.replace(" \\\n", "\n") if rc == 0 else ""
        want_dev = device_props(args)
        if want_dev:
            fig["devices"][1] += 1
            bad = compare_devices(xml, want_dev, device_props(flat)) if rc == 0 else ["argv failed"]
            if bad:
                wrong["devices"].append("%s: %s" % (name, "; ".join(bad)[:300]))
            else:
                fig["devices"][0] += 1
        want = libvirt_m(args)
        if want is None:
            continue
        got = libvirt_m(flat) if rc == 0 else None
        fig["m"][1] += 1
        if got == want:
            fig["m"][0] += 1
        else:
            wrong["m"].append("%s: libvirt %s, dmaguard %s" % (name, want, got))
    tests = os.path.dirname(os.path.abspath(d))
    testc = os.path.join(tests, "qemumemlocktest.c")
    memdir = os.path.join(tests, "qemumemlockdata")
    skipped = {}
    if os.path.isfile(testc) and os.path.isdir(memdir):
        this_arch = VIR_ARCH.get(os.uname().machine)
        for name, limit, arch, caps in memlock_cases(testc):
            path = os.path.join(memdir, "qemumemlock-%s.xml" % name)
            with open(path, errors="replace") as fh:
                has_arch = re.search(r"<type[^>]*\barch=", fh.read())
            rc, so, se = run(tool, "check", "--json", "--xml", path, "--qemu-version", QEMU,
                             "--libvirt-version", LIBVIRT, "--sysfs", "/nonexistent-sysfs")
            try:
                got = json.loads(so)["domains"][0]["memlock_bytes"]
            except (ValueError, IndexError, KeyError):
                got = "exit %d: %s" % (rc, se.strip()[:120])
            want = None if limit == MEMLOCK_UNLIMITED else limit
            fig["memlock"][1] += 1
            if got == want:
                fig["memlock"][0] += 1
            else:
                why = "" if has_arch or arch == this_arch else \
                    " (no arch in the XML: libvirt judges it for host %s, dmaguard for this machine's)" % arch
                wrong["memlock"].append("%s: libvirt %s, dmaguard %s [host %s; %s]%s" % (
                    name, limit, got, arch, ", ".join(caps) or "no caps", why))
    else:
        skipped["memlock"] = "no %s or %s (tools/fetch-libvirt-testdata.sh fetches them)" % (
            testc, memdir)
    n = 0
    failed = 0
    base = json.load(open(baseline)) if baseline else {}
    print("# libvirt %s test data, judged for QEMU %s" % (LIBVIRT, QEMU))
    print("# %-16s %6s %6s %7s" % ("", "agree", "of", "%"))
    for k, (a, t) in fig.items():
        pct = 100.0 * a / t if t else 100.0
        if k in skipped:
            print("# %-16s %6s %6s %7s" % (k, "-", "-", "skipped"))
        else:
            print("# %-16s %6d %6d %6.1f%%" % (k, a, t, pct))
    for k, (a, t) in fig.items():
        n += 1
        pct = 100.0 * a / t if t else 100.0
        floor = base.get(k)
        if k in skipped:
            print("ok %d - %s agreement # SKIP %s" % (n, k, skipped[k]))
            continue
        if floor is not None and round(pct, 1) < floor:
            failed += 1
            print("not ok %d - %s agreement %.1f%% dropped below the baseline %.1f%%" % (n, k, pct, floor))
            for w in wrong[k][:15]:
                print("#   %s" % w)
        else:
            print("ok %d - %s agreement %.1f%% (%d of %d)%s" % (
                n, k, pct, a, t, "" if floor is None else ", baseline %.1f%%" % floor))
    for w in qemu_refuses:
        print("# qemu-refuses: %s" % w)
    for k in fig:
        for w in wrong[k][:80]:
            print("# %s: %s" % (k, w))
    if write:
        with open(write, "w") as fh:
            json.dump({k: round(100.0 * a / t, 1) if t else 100.0 for k, (a, t) in fig.items()
                       if k not in skipped},
                      fh, indent=1, sort_keys=True)
            fh.write("\n")
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

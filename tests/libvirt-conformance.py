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
             (check refusing what libvirt accepts is the worst failure);
  refused    libvirt refuses it (.err), and check reports an error;
             refused_modelled counts only the refusals whose words are
             about what dmaguard models (hostdevs, IOMMU, memory devices,
             the balloon, vCPUs);
  balloon    libvirt's command line has a virtio balloon exactly when
             check's verdict has one;
  -m         argv's -m equals libvirt's (size in KiB, slots, maxmem);
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
import json
import os
import re
import subprocess
import sys

MODELLED = re.compile(r"<hostdev|<memballoon|<iommu|<memory\s+model=|<interface\s+type=.hostdev")
# A refusal about what dmaguard models, by libvirt's words in NAME.err.
ABOUT_MODELLED = re.compile(r"[Hh]ostdev|mdev|VFIO|vfio|IOMMU|iommu|balloon|vCPU|vcpu|CPUs|"
                            r"memory device|hotplug|NUMA node|numa node|slots|zPCI|CCW|aw_bits|eim|"
                            r"interrupt remapping|memory size", re.I)
# Cases whose XML needs files of libvirt's test tree (a relative <emulator>
# or firmware path) are judged like the rest; dmaguard never opens them.
QEMU = "8.0"          # the newest QEMU of libvirt 9.0's -latest test data
LIBVIRT = "9.0"


def outcome(d, name):
    """('err', path) | ('args', path) | None: what libvirt recorded."""
    for suffix in (".x86_64-latest.err", ".err"):
        p = os.path.join(d, name + suffix)
        if os.path.exists(p):
            return "err", p
    for suffix in (".x86_64-latest.args", ".args"):
        p = os.path.join(d, name + suffix)
        if os.path.exists(p):
            return "args", p
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
                               "memlock")}
    wrong = {k: [] for k in fig}
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
        if kind == "args":
            fig["accepted"][1] += 1
            if refused:
                why = se.strip() or "; ".join(e["code"] for e in dom["errors"])
                wrong["accepted"].append("%s: %s" % (name, why[:160]))
            else:
                fig["accepted"][0] += 1
        else:
            with open(ref, errors="replace") as fh:
                about = bool(ABOUT_MODELLED.search(fh.read()))
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
        want = libvirt_m(args)
        if want is None:
            continue
        rc, so, se = run(tool, "argv", *common)
        got = libvirt_m(so.replace(" \\\n", "\n")) if rc == 0 else None
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
    for k in fig:
        for w in wrong[k][:40]:
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

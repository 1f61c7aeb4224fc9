#!/usr/bin/env python3
"""libvirt-truth.py --tool TOOL --src SRC --data DATADIR --uri URI --work DIR
                   [--baseline FILE] [--write-baseline FILE] [--jobs N]
                   [--only REGEX] [--results FILE]

The truth test: `virt-dmaguard check` against what the real libvirt 9.0
and QEMU 7.2 do.  tests/libvirt-truth.sh runs it inside the namespace of a
private libvirtd (tests/libvirtd-private.sh) WITHOUT dmaguard's hook, so
that every refusal is libvirt's or QEMU's own; URI is that daemon's.

Inputs:
  - every domain of libvirt's test data (DATADIR, libvirt 9.0's
    tests/qemuxml2argvdata) with no <hostdev> and no <interface
    type='hostdev'>;
  - tests/domains/*.xml and the domains of examples/*.xml (the example
    node's <domain> elements), with every <hostdev> and <interface
    type='hostdev'> removed (ElementTree, not text);
and of those only what this machine can run at all: <domain type='kvm'>
or 'qemu', with arch x86_64 or i686 (or none: libvirt's default, the
host's x86_64).

Each is rewritten, to take out what would make a start fail for reasons
outside what dmaguard models (a file, port or device of some other host):
  - a unique name (t-FILE for libvirt's test data, d-FILE for
    tests/domains, x-NAME for the examples); no <uuid>, and no uuid entry
    in <sysinfo> (libvirt takes the domain's UUID from there, and two
    test files share one);
  - <emulator> /usr/bin/qemu-system-x86_64;
  - removed devices: <disk>, <filesystem>, <interface> (every type: a
    network, a bridge, a tap, a vhost-user socket or a vDPA device of the
    host), <serial>, <console>, <channel>, <parallel> (host paths, host
    ports that two domains would share, or a display), <graphics>,
    <video>, <audio>, <sound> (host audio), <smartcard>, <redirdev>,
    <redirfilter>, <tpm>, <shmem> (/dev/shm names shared by domains),
    <vsock> (a host CID), <lease>, <input type='passthrough'|'evdev'>,
    and <rng> unless its backend is a random device file this host has;
  - removed from <os>: <loader>, <nvram>, <kernel>, <initrd>, <dtb>,
    <cmdline>, <acpi> (table files), firmware= and <firmware> (firmware
    descriptors: this host has no OVMF);
  - <sysinfo type='fwcfg'> entries that name a host file;
  - <memoryBacking><allocation mode='immediate'/> (preallocation: it
    only costs time and host memory, 14 GiB written for fd-memory-*);
  - removed: <seclabel> (the daemon has no security driver), <cputune>,
    <blkiotune> (host CPUs and block devices), <vcpu cpuset=...> (host
    CPUs; the count stays), <qemu:commandline> (arbitrary QEMU arguments)
    and <qemu:capabilities> (a test switch of libvirt's capabilities);
  - the <source><path> of nvdimm and virtio-pmem memory devices moved
    into this test's work directory, as a sparse file of the device's
    size rounded up to 2 MiB as libvirt rounds it for QEMU (libvirt
    requires the file to exist, QEMU requires it to be that large).
Everything dmaguard models is kept: <memory>, <currentMemory>,
<maxMemory>, <vcpu>/<vcpus>, <cpu> (model, NUMA cells, topology),
<numatune>, <memoryBacking>, <memtune>, <memballoon>, <iommu>, memory
devices, <features>, <os><type machine=...>, controllers, <launchSecurity>,
<qemu:override>.  Memory sizes are never changed.  What fails on THIS
host for a host reason (no hugetlbfs mount, one host NUMA node, no numad,
no CAP_SYS_RESOURCE for RLIMIT_MEMLOCK, the host CPU's features, no SEV or
SGX) is kept too, and classified as such (tests/libvirt_refusals.py).

Each rewritten file is started with `virsh create --paused` and destroyed
if it started, and judged with `virt-dmaguard check --json --qemu-version
7.2 --libvirt-version 9.0` (exit 2, bad input, counts as an error).
Domains that allocate their memory at start (<locked/>, hugepages) run
alone after the others, so that no start competes with another for host
memory; the others run JOBS at a time (each start is independent: its own
name, no UUID, no shared host file or port).  A started domain is
destroyed by a pool of its own, since libvirt's destroy mostly waits for
the QEMU to be reaped.  A start the daemon gave up on (a timeout, no
answer) is tried once more, alone; a virsh call that takes 300 s is a
hang.  Either, twice, fails the test ("the private daemon gave a verdict
on every domain").

Agreement matrix: rows = real outcome (started, refused-modelled,
refused-other), columns = check (error, no error).  Disagreements:
  started_check_error       check reports an error, the domain started;
  modelled_no_check_error   libvirt/QEMU refused it about what dmaguard
                            models, check reports none;
  different_cause           both refuse, for different causes: the cause
                            of libvirt's/QEMU's words (classify()) is not
                            among the causes of check's errors
                            (check_causes(): by code, or by the words of
                            a code it does not list; bad input, exit 2,
                            by its words).  A host refusal matches no
                            check error.
With --baseline, a category fails when it has a domain the baseline does
not list (agreement dropped); known disagreements are listed and pass.
Exit 0 pass, 1 fail, 2 usage.
"""
import argparse
import copy
import glob
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

# No __pycache__ in the source tree.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libvirt_refusals as R  # noqa: E402

QNS = "http://libvirt.org/schemas/domain/qemu/1.0"
ET.register_namespace("qemu", QNS)
ET.register_namespace("dmaguard", "http://dmaguard.org/xmlns/domain/1.0")
EMULATOR = "/usr/bin/qemu-system-x86_64"
QEMU, LIBVIRT = "7.2", "9.0"
# A start or destroy that takes this long is a hang, not a verdict.
VIRSH_DEADLINE = 300

DROP_TOP = {"uuid", "seclabel", "cputune", "blkiotune",
            "{%s}commandline" % QNS, "{%s}capabilities" % QNS}
DROP_OS = {"loader", "nvram", "kernel", "initrd", "dtb", "cmdline", "acpi", "firmware"}
DROP_DEVICES = {"disk", "filesystem", "interface", "serial", "console", "channel",
                "parallel", "graphics", "video", "audio", "sound", "smartcard",
                "redirdev", "redirfilter", "tpm", "shmem", "vsock", "lease", "hostdev"}
UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1 << 20,
         "mib": 1 << 20, "mb": 1000 ** 2, "g": 1 << 30, "gib": 1 << 30, "gb": 1000 ** 3,
         "t": 1 << 40, "tib": 1 << 40, "tb": 1000 ** 4}


def runnable(root):
    if root.tag != "domain" or root.get("type") not in ("kvm", "qemu"):
        return False
    t = root.find("os/type")
    return (t.get("arch") if t is not None else None) in (None, "x86_64", "i686")


def has_hostdev(root):
    return (root.find("devices/hostdev") is not None or
            root.find("devices/interface[@type='hostdev']") is not None)


def inputs(src, data):
    """[(name, origin, root)], and the counts of what was left out."""
    out, left = [], {}

    def skip(why):
        left[why] = left.get(why, 0) + 1
    for f in sorted(glob.glob(os.path.join(data, "*.xml"))):
        try:
            root = ET.parse(f).getroot()
        except ET.ParseError:
            skip("libvirt test data: not well-formed")
            continue
        if root.tag != "domain":
            skip("libvirt test data: not a <domain>")
        elif has_hostdev(root):
            skip("libvirt test data: has a hostdev")
        elif not runnable(root):
            skip("libvirt test data: not x86 kvm/qemu")
        else:
            out.append(("t-" + os.path.basename(f)[:-4], "libvirt", root))
    for f in sorted(glob.glob(os.path.join(src, "tests", "domains", "*.xml"))):
        root = ET.parse(f).getroot()
        if runnable(root):
            out.append(("d-" + os.path.basename(f)[:-4], "tests/domains", root))
        else:
            skip("tests/domains: not x86 kvm/qemu")
    for f in sorted(glob.glob(os.path.join(src, "examples", "*.xml"))):
        root = ET.parse(f).getroot()
        for d in [root] if root.tag == "domain" else root.findall("domain"):
            if runnable(d):
                out.append(("x-" + (d.findtext("name") or "unnamed"), "examples", d))
            else:
                skip("examples: not x86 kvm/qemu")
    # Names libvirt and lvp_cleanup's pidfile match take as they are.
    seen, named = set(), []
    for name, origin, root in out:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        while name in seen:
            name += "_"
        seen.add(name)
        named.append((name, origin, root))
    return named, left


def size_bytes(el):
    unit = (el.get("unit") or "KiB").lower()
    return int(el.text.strip()) * UNITS.get(unit, 1024)


def rewrite(root, name, work):
    """The domain as started: see the module's docstring.  Returns
    (root, files): the sparse files of (path, size) to create first."""
    root = copy.deepcopy(root)
    root.find("name").text = name
    for ch in list(root):
        if ch.tag in DROP_TOP:
            root.remove(ch)
    for system in root.findall("sysinfo/system"):
        for e in system.findall("entry[@name='uuid']"):
            system.remove(e)
    for si in root.findall("sysinfo[@type='fwcfg']"):
        for e in si.findall("entry[@file]"):
            si.remove(e)
    osn = root.find("os")
    if osn is not None:
        osn.attrib.pop("firmware", None)
        for ch in list(osn):
            if ch.tag in DROP_OS:
                osn.remove(ch)
    # Preallocation (libvirt's prealloc=on) only costs time and host
    # memory or disk: 14 GiB written to the memory backing directory for
    # each fd-memory-* domain.  dmaguard does not model it.
    for mb in root.findall("memoryBacking"):
        for e in mb.findall("allocation[@mode='immediate']"):
            mb.remove(e)
    v = root.find("vcpu")
    if v is not None:
        v.attrib.pop("cpuset", None)
    devs = root.find("devices")
    if devs is None:
        devs = ET.SubElement(root, "devices")
    for ch in list(devs):
        if ch.tag in DROP_DEVICES:
            devs.remove(ch)
        elif ch.tag == "input" and ch.get("type") in ("passthrough", "evdev"):
            devs.remove(ch)
        elif ch.tag == "rng":
            b = ch.find("backend")
            path = ((b.text or "").strip() or "/dev/urandom") if b is not None else ""
            if b is None or b.get("model") != "random" or not os.path.exists(path):
                devs.remove(ch)
    em = devs.find("emulator")
    if em is None:
        em = ET.Element("emulator")
        devs.insert(0, em)
    em.text = EMULATOR
    files = []
    for i, m in enumerate(devs.findall("memory")):
        p = m.find("source/path")
        size = m.find("target/size")
        if p is not None:
            p.text = os.path.join(work, "mem", "%s-%d" % (name, i))
            # libvirt gives QEMU the size rounded up to 2 MiB on x86
            # (qemu_domain.c qemuDomainAlignMemorySizes(),
            # qemuDomainGetMemoryModuleSizeAlignment()), and QEMU refuses a
            # smaller backing file ("backing store size ... does not
            # match 'size' option").
            b = size_bytes(size) if size is not None else 0
            files.append((p.text, -(-b // (2 << 20)) * (2 << 20)))
    return root, files


def exclusive(root):
    """Does the domain allocate its memory at start?"""
    mb = root.find("memoryBacking")
    return mb is not None and (mb.find("locked") is not None or
                               mb.find("hugepages") is not None)


def virsh(uri, *args):
    try:
        p = subprocess.run(["virsh", "-q", "-c", uri, *args], capture_output=True,
                           text=True, timeout=VIRSH_DEADLINE)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, "", "timed out after %d s" % VIRSH_DEADLINE


def run_check(tool, path):
    """(errors, causes, text): check's configuration errors (exit 2, bad
    input, is one error of code 'input'), their causes, and their words."""
    try:
        p = subprocess.run([tool, "check", "--json", "--xml", path, "--qemu-version", QEMU,
                            "--libvirt-version", LIBVIRT], capture_output=True, text=True,
                           timeout=120)
    except subprocess.TimeoutExpired:
        return [{"code": "timeout", "message": "check did not finish in 120 s"}], {"timeout"}, ""
    if p.returncode not in (0, 1, 2):
        # A crash, or a sanitizer's report (the ASan pass of run-tests.sh).
        msg = "exit status %d: %s" % (p.returncode, p.stderr.strip()[-300:])
        return [{"code": "crash", "message": msg}], {"crash"}, msg
    if p.returncode == 2:
        msg = re.sub(r"^virt-dmaguard check: [^:]*:(\d+:)? ?", "", p.stderr.strip())
        return ([{"code": "input", "message": msg}],
                {R.classify(msg)[1]} | {"input"}, msg)
    try:
        errors = json.loads(p.stdout)["domains"][0]["errors"]
    except (ValueError, KeyError, IndexError):
        return ([{"code": "no-json", "message": p.stderr.strip()}], {"no-json"},
                p.stderr.strip())
    return errors, R.check_causes(errors), "; ".join(
        "%s: %s" % (e["code"], e["message"]) for e in errors)


def main():
    ap = argparse.ArgumentParser()
    for a in ("tool", "src", "data", "uri", "work"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--write-baseline")
    ap.add_argument("--jobs", type=int, default=3)
    # For working on the rules: only the domains whose name matches, and
    # every domain's outcome as JSON.
    ap.add_argument("--only")
    ap.add_argument("--results")
    args = ap.parse_args()
    t0 = time.time()
    doms, left = inputs(args.src, args.data)
    if args.only:
        doms = [d for d in doms if re.search(args.only, d[0])]
    os.makedirs(os.path.join(args.work, "dom"), exist_ok=True)
    os.makedirs(os.path.join(args.work, "mem"), exist_ok=True)
    todo = []
    for name, origin, root in doms:
        new, files = rewrite(root, name, args.work)
        for path, size in files:
            with open(path, "wb") as fh:
                fh.truncate(size)
        path = os.path.join(args.work, "dom", name + ".xml")
        ET.ElementTree(new).write(path, encoding="unicode")
        todo.append((name, origin, path, exclusive(new)))

    # check, on exactly the files virsh starts.
    with ThreadPoolExecutor(args.jobs) as ex:
        checks = dict(zip([t[0] for t in todo],
                          ex.map(lambda t: run_check(args.tool, t[2]), todo)))
    t_check = time.time() - t0

    # The real stack.  A started domain is destroyed by a pool of its own:
    # libvirt's destroy waits until the QEMU is reaped, which is mostly
    # waiting (virProcessKillPainfullyDelay() polls every 200 ms).
    real, destroyed, took = {}, {}, {}
    destroyer = ThreadPoolExecutor(8)

    def destroy(name):
        rc, _, err = virsh(args.uri, "destroy", name)
        destroyed[name] = (rc == 0, err.strip())

    def start(t):
        name, _, path, _ = t
        t1 = time.time()
        rc, _, err = virsh(args.uri, "create", "--paused", path)
        took[name] = time.time() - t1
        if rc == 0:
            real[name] = ("started", None, None, "")
            return destroyer.submit(destroy, name)
        text = R.refusal_text(err) if rc is not None else err
        kind, cause = R.classify(text) if rc is not None else ("infrastructure", "timeout")
        real[name] = ("refused", kind, cause, text)
        return None

    with ThreadPoolExecutor(args.jobs) as ex:
        pending = [f for f in ex.map(start, [t for t in todo if not t[3]]) if f]
    for f in pending:
        f.result()
    # Alone: the domains that allocate their memory, and a second try for
    # a start the daemon gave up on (a timeout under load is no verdict).
    for t in todo:
        if t[3] or real[t[0]][1] == "infrastructure":
            f = start(t)
            if f:
                f.result()
    destroyer.shutdown(wait=True)
    t_real = time.time() - t0 - t_check
    rc, still, _ = virsh(args.uri, "list", "--all", "--name")
    still = [n for n in still.split() if n] if rc == 0 else ["(virsh list failed)"]

    # Matrix and disagreements.
    rows = ("started", "refused-modelled", "refused-other")
    matrix = {r: {"error": 0, "no error": 0} for r in rows}
    other_by_cause = {}
    dis = {"started_check_error": [], "modelled_no_check_error": [], "different_cause": []}
    infra = []
    word_match = [0, 0]
    for name, origin, path, _ in todo:
        state, kind, cause, text = real[name]
        errors, causes, ctext = checks[name]
        col = "error" if errors else "no error"
        if kind == "infrastructure":
            infra.append("%s: %s" % (name, text[:200]))
            continue
        row = ("started" if state == "started" else
               "refused-modelled" if kind == "modelled" else "refused-other")
        matrix[row][col] += 1
        if row == "refused-other":
            k = "%s:%s" % (kind, cause)
            other_by_cause[k] = other_by_cause.get(k, 0) + 1
        codes = ",".join(e["code"] for e in errors) or "none"
        entry = {"domain": name, "check": codes, "check_message": ctext[:200],
                 "real": "started" if state == "started" else text[:200],
                 "real_cause": "%s:%s" % (kind, cause) if kind else "started"}
        if row == "started" and errors:
            dis["started_check_error"].append(entry)
        elif row == "refused-modelled" and not errors:
            dis["modelled_no_check_error"].append(entry)
        elif row != "started" and errors:
            if cause in causes:
                word_match[1] += 1
                # Do check's words carry libvirt's/QEMU's (after "error: ")?
                if text.split("; ")[0].rstrip(".") in ctext:
                    word_match[0] += 1
            else:
                dis["different_cause"].append(entry)

    print("# %d domains: %d of libvirt %s's test data, %d of tests/domains, %d of examples"
          % (len(todo), sum(t[1] == "libvirt" for t in todo), LIBVIRT,
             sum(t[1] == "tests/domains" for t in todo), sum(t[1] == "examples" for t in todo)))
    for why, n in sorted(left.items()):
        print("# left out: %s: %d" % (why, n))
    print("# check took %.0f s, the real starts %.0f s (%d at a time; %d alone)"
          % (t_check, t_real, args.jobs, sum(t[3] for t in todo)))
    print("# slowest starts: " + ", ".join(
        "%s %.1f s" % (k, v) for k, v in sorted(took.items(), key=lambda x: -x[1])[:5]))
    print("#")
    print("# %-22s %8s %9s %6s" % ("real \\ check", "error", "no error", "total"))
    for r in rows:
        m = matrix[r]
        print("# %-22s %8d %9d %6d" % (r, m["error"], m["no error"], m["error"] + m["no error"]))
    print("#")
    print("# refused-other by cause: " + ", ".join(
        "%s %d" % (k, n) for k, n in sorted(other_by_cause.items(), key=lambda x: (-x[1], x[0]))))
    for k in sorted(other_by_cause):
        print("#   %s: %s" % (k, " ".join(sorted(
            t[0] for t in todo if real[t[0]][0] == "refused" and
            "%s:%s" % real[t[0]][1:3] == k))))
    print("# both refuse for the same cause: %d, of which check carries libvirt's/QEMU's "
          "first sentence word for word: %d" % (word_match[1], word_match[0]))

    base = {}
    if args.baseline:
        with open(args.baseline) as fh:
            base = json.load(fh).get("disagreements", {})
    n = failed = 0

    def tap(ok, text):
        nonlocal n, failed
        n += 1
        failed += not ok
        print("%s %d - %s" % ("ok" if ok else "not ok", n, text))

    tap(not infra, "the private daemon gave a verdict on every domain (%d without)" % len(infra))
    for line in infra:
        print("#   " + line)
    crashed = sorted(t[0] for t in todo if checks[t[0]][0] and
                     checks[t[0]][0][0]["code"] in ("crash", "timeout", "no-json"))
    tap(not crashed, "check gave a verdict on every domain (%d without)" % len(crashed))
    for x in crashed:
        print("#   %s: %s" % (x, checks[x][0][0]["message"][:300]))
    what = {
        "started_check_error": "started: check reports no configuration error",
        "modelled_no_check_error": "refused about what dmaguard models: check reports an error",
        "different_cause": "both refuse: for the same cause",
    }
    totals = {
        "started_check_error": sum(matrix["started"].values()),
        "modelled_no_check_error": sum(matrix["refused-modelled"].values()),
        "different_cause": matrix["refused-modelled"]["error"] + matrix["refused-other"]["error"],
    }
    for k, label in what.items():
        names = [e["domain"] for e in dis[k]]
        known = set(base.get(k, []))
        new = [x for x in names if args.baseline and x not in known]
        fixed = sorted(known & set(t[0] for t in todo) - set(names))
        tap(not new, "%s: %d of %d agree; %d known disagreement(s)%s" % (
            label, totals[k] - len(names), totals[k], len(names) - len(new),
            ", %d NEW" % len(new) if new else ""))
        for e in dis[k]:
            print("#   %s%s [check: %s] [real: %s]" % (
                "NEW " if e["domain"] in new else "", e["domain"], e["check"], e["real_cause"]))
            if e["check_message"]:
                print("#     check: %s" % e["check_message"])
            print("#     real:  %s" % e["real"])
        if fixed:
            print("#   agree now (run --write-baseline): %s" % ", ".join(fixed))
    bad = sorted(x for x, (ok, _) in destroyed.items() if not ok)
    tap(not bad, "every started domain was destroyed (%d of %d)" % (len(destroyed) - len(bad),
                                                                     len(destroyed)))
    for x in bad:
        print("#   %s: %s" % (x, destroyed[x][1][:200]))
    tap(not still, "no domain is left on the daemon%s" % (": " + " ".join(still) if still else ""))

    if args.results:
        with open(args.results, "w") as fh:
            json.dump({t[0]: {"origin": t[1], "real": real[t[0]][0],
                              "real_cause": "%s:%s" % real[t[0]][1:3] if real[t[0]][1] else None,
                              "real_message": real[t[0]][3],
                              "check": [e["code"] for e in checks[t[0]][0]],
                              "check_causes": sorted(checks[t[0]][1]),
                              "check_message": checks[t[0]][2]} for t in todo},
                      fh, indent=1, sort_keys=True)
    if args.write_baseline:
        with open(args.write_baseline, "w") as fh:
            json.dump({"matrix": matrix,
                       "disagreements": {k: sorted(e["domain"] for e in v)
                                         for k, v in dis.items()}},
                      fh, indent=1, sort_keys=True)
            fh.write("\n")
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

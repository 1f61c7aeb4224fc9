#!/usr/bin/env python3
"""gen-domains.py: write N realistic libvirt domain XMLs for benchmarking.

Each file looks like `virsh dumpxml` of a real q35 VM (4-8 KiB): disks and a
CD-ROM, PCIe root ports and other controllers, network interfaces, serial
console, guest-agent and SPICE channels, inputs, graphics, video, sound,
USB redirection, an RNG, and the parts dmaguard cares about:

  - 0-4 VFIO host devices from the test fixture (tests/sysfs/host1), the
    mlx5 VFs sometimes as <interface type='hostdev'>:
      0000:01:00.0 / 0000:01:00.1  GPU + HDMI audio, IOMMU group 1
      0000:3b:00.1 / 0000:3b:00.2  mlx5 VFs (mlx5_vfio_pci)
      4b20d080-1b54-4048-85b3-a6a62d165c01  mdev vGPU
  - sometimes an <iommu model='intel'> (caching_mode on, intremap with
    <ioapic driver='qemu'/>),
  - sometimes virtio-mem with <maxMemory> and a NUMA topology,
  - a virtio memballoon (or model='none'),
  - sometimes dmaguard <metadata> opting devices in.

Every file validates against libvirt's domain.rng.  Output is deterministic
for a given --seed.  Python 3 standard library only.

Usage: gen-domains.py [-n COUNT] [--seed SEED] OUTDIR
"""

import argparse
import os
import random
import sys
import uuid

PCI_DEVS = [
    # (domain, bus, slot, function, alias prefix)
    ((0x0000, 0x01, 0x00, 0x0), "gpu"),
    ((0x0000, 0x01, 0x00, 0x1), "gpuaudio"),
    ((0x0000, 0x3b, 0x00, 0x1), "vf"),
    ((0x0000, 0x3b, 0x00, 0x2), "vf"),
]
MDEV_UUID = "4b20d080-1b54-4048-85b3-a6a62d165c01"

OS_IDS = [
    "http://rhel.redhat.com/9.2", "http://rhel.redhat.com/8.8",
    "http://fedoraproject.org/fedora/38", "http://ubuntu.com/ubuntu/22.04",
    "http://debian.org/debian/12", "http://microsoft.com/win/11",
    "http://microsoft.com/win/2k22",
]
MACHINES = ["pc-q35-7.2", "pc-q35-8.0", "pc-q35-8.2", "pc-q35-9.0", "q35"]
DISK_CACHES = ["none", "writeback", "directsync"]


class Doc:
    """A tiny indenting writer; faster and more predictable than ElementTree
    for what is mostly fixed text."""

    def __init__(self):
        self.lines = []
        self.depth = 0

    def line(self, text):
        self.lines.append("  " * self.depth + text)

    def open(self, text):
        self.line(text)
        self.depth += 1

    def close(self, text):
        self.depth -= 1
        self.line(text)

    def text(self):
        return "\n".join(self.lines) + "\n"


class PciSlots:
    """Guest-side PCIe topology: each endpoint sits alone on its own
    pcie-root-port, as virt-install lays out a q35 guest."""

    def __init__(self):
        self.next_bus = 1
        self.ports = []

    def take(self):
        bus = self.next_bus
        self.next_bus += 1
        self.ports.append(bus)
        return ("<address type='pci' domain='0x0000' bus='0x%02x' "
                "slot='0x00' function='0x0'/>" % bus)


def mac(rng):
    return "52:54:00:%02x:%02x:%02x" % (rng.randrange(256), rng.randrange(256),
                                        rng.randrange(256))


def gen_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def gen_domain(rng, idx):
    name = "vm-%05d" % idx
    d = Doc()
    slots = PciSlots()

    # --- choose the interesting parts first --------------------------------
    nhost = rng.choices([0, 1, 2, 3, 4], weights=[30, 30, 20, 12, 8])[0]
    pool = [("pci", dev, prefix) for dev, prefix in PCI_DEVS] + [("mdev", MDEV_UUID, "vgpu")]
    hostdevs = rng.sample(pool, nhost)
    # keep fixture order so the GPU comes before its audio function
    hostdevs.sort(key=lambda h: pool.index(h))
    viommu = rng.random() < 0.25
    intremap = viommu and rng.random() < 0.7
    virtio_mem = rng.random() < 0.2
    balloon = rng.random() < 0.85 and not (virtio_mem and rng.random() < 0.5)
    hugepages = rng.random() < 0.1
    vcpus = rng.choice([2, 4, 4, 8, 8, 16, 32])
    mem_gib = rng.choice([2, 4, 8, 8, 16, 16, 32, 64])
    cur_gib = mem_gib if rng.random() < 0.7 else max(1, mem_gib // 2)

    # about a third of the mlx5 VFs are <interface type='hostdev'>
    as_iface = [prefix == "vf" and rng.random() < 0.35 for _k, _s, prefix in hostdevs]
    aliases = []
    counters = {}
    for kind, _src, prefix in hostdevs:
        n = counters.get(prefix, 0)
        counters[prefix] = n + 1
        # about half of the domains name their devices (ua-*); the rest
        # rely on libvirt's hostdevN
        aliases.append("ua-%s%d" % (prefix, n) if rng.random() < 0.6 else None)
    metadata_hostdevs = []
    for (kind, _src, _p), alias in zip(hostdevs, aliases):
        if alias is None:
            continue
        if kind == "mdev" and rng.random() < 0.6:
            metadata_hostdevs.append("<dmaguard:hostdev alias=\"%s\" balloon-allowed=\"yes\"/>" % alias)
        elif viommu and rng.random() < 0.3:
            metadata_hostdevs.append("<dmaguard:hostdev alias=\"%s\" migration-iommu-pt=\"yes\"/>" % alias)

    # --- header -------------------------------------------------------------
    d.open("<domain type='kvm'>")
    d.line("<name>%s</name>" % name)
    d.line("<uuid>%s</uuid>" % gen_uuid(rng))
    if rng.random() < 0.5:
        d.line("<title>%s</title>" % rng.choice([
            "Build worker", "Database replica", "VDI desktop", "GPU inference node",
            "Network function", "CI runner", "Web frontend"]))
    d.open("<metadata>")
    d.open("<libosinfo:libosinfo xmlns:libosinfo=\"http://libosinfo.org/xmlns/libvirt/domain/1.0\">")
    d.line("<libosinfo:os id=\"%s\"/>" % rng.choice(OS_IDS))
    d.close("</libosinfo:libosinfo>")
    if metadata_hostdevs:
        d.open("<dmaguard:domain xmlns:dmaguard=\"http://dmaguard.org/xmlns/domain/1.0\">")
        for m in metadata_hostdevs:
            d.line(m)
        d.close("</dmaguard:domain>")
    d.close("</metadata>")

    vm_size_gib = 0
    if virtio_mem:
        vm_size_gib = rng.choice([8, 16, 32])
        d.line("<maxMemory slots='16' unit='KiB'>%d</maxMemory>"
               % ((mem_gib + vm_size_gib + 64) * 1024 * 1024))
        total_gib = mem_gib + vm_size_gib
        d.line("<memory unit='KiB'>%d</memory>" % (total_gib * 1024 * 1024))
        d.line("<currentMemory unit='KiB'>%d</currentMemory>" % (cur_gib * 1024 * 1024))
    else:
        d.line("<memory unit='KiB'>%d</memory>" % (mem_gib * 1024 * 1024))
        d.line("<currentMemory unit='KiB'>%d</currentMemory>" % (cur_gib * 1024 * 1024))
    if hugepages:
        d.open("<memoryBacking>")
        d.open("<hugepages>")
        d.line("<page size='%d' unit='KiB'/>" % rng.choice([2048, 1048576]))
        d.close("</hugepages>")
        if rng.random() < 0.5:
            d.line("<locked/>")
        d.close("</memoryBacking>")
    d.line("<vcpu placement='static'>%d</vcpu>" % vcpus)
    d.open("<resource>")
    d.line("<partition>/machine</partition>")
    d.close("</resource>")
    d.open("<os>")
    d.line("<type arch='x86_64' machine='%s'>hvm</type>" % rng.choice(MACHINES))
    if rng.random() < 0.3:
        d.line("<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>")
        d.line("<nvram>/var/lib/libvirt/qemu/nvram/%s_VARS.fd</nvram>" % name)
    d.line("<boot dev='hd'/>")
    d.close("</os>")
    d.open("<features>")
    d.line("<acpi/>")
    d.line("<apic/>")
    d.line("<vmport state='off'/>")
    if intremap:
        d.line("<ioapic driver='qemu'/>")
    d.close("</features>")
    if virtio_mem:
        d.open("<cpu mode='host-passthrough' check='none' migratable='on'>")
        d.open("<numa>")
        d.line("<cell id='0' cpus='0-%d' memory='%d' unit='KiB'/>"
               % (vcpus - 1, mem_gib * 1024 * 1024))
        d.close("</numa>")
        d.close("</cpu>")
    else:
        d.line("<cpu mode='host-passthrough' check='none' migratable='on'/>")
    d.open("<clock offset='utc'>")
    d.line("<timer name='rtc' tickpolicy='catchup'/>")
    d.line("<timer name='pit' tickpolicy='delay'/>")
    d.line("<timer name='hpet' present='no'/>")
    d.close("</clock>")
    d.line("<on_poweroff>destroy</on_poweroff>")
    d.line("<on_reboot>restart</on_reboot>")
    d.line("<on_crash>destroy</on_crash>")
    d.open("<pm>")
    d.line("<suspend-to-mem enabled='no'/>")
    d.line("<suspend-to-disk enabled='no'/>")
    d.close("</pm>")

    # --- devices ------------------------------------------------------------
    d.open("<devices>")
    d.line("<emulator>/usr/bin/qemu-system-x86_64</emulator>")
    ndisks = rng.choice([1, 1, 1, 2, 3])
    for i in range(ndisks):
        d.open("<disk type='file' device='disk'>")
        d.line("<driver name='qemu' type='qcow2' cache='%s' discard='unmap'/>"
               % rng.choice(DISK_CACHES))
        d.line("<source file='/var/lib/libvirt/images/%s-%d.qcow2'/>" % (name, i))
        d.line("<target dev='vd%s' bus='virtio'/>" % "abcdefgh"[i])
        d.line(slots.take())
        d.close("</disk>")
    d.open("<disk type='file' device='cdrom'>")
    d.line("<driver name='qemu' type='raw'/>")
    d.line("<target dev='sda' bus='sata'/>")
    d.line("<readonly/>")
    d.line("<address type='drive' controller='0' bus='0' target='0' unit='0'/>")
    d.close("</disk>")

    # endpoints that need root ports, allocated before the ports are written
    usb_addr = slots.take()
    serial_addr = slots.take()
    nifs = rng.choice([1, 1, 2])
    if_addrs = [slots.take() for _ in range(nifs)]
    sound = rng.random() < 0.4
    balloon_addr = slots.take() if balloon else None
    rng_addr = slots.take()
    vm_addr = slots.take() if virtio_mem else None
    hd_addrs = [slots.take() for _ in hostdevs]
    spare = rng.randint(1, 2)
    for _ in range(spare):
        slots.take()

    d.open("<controller type='usb' index='0' model='qemu-xhci' ports='15'>")
    d.line(usb_addr)
    d.close("</controller>")
    d.open("<controller type='sata' index='0'>")
    d.line("<address type='pci' domain='0x0000' bus='0x00' slot='0x1f' function='0x2'/>")
    d.close("</controller>")
    d.line("<controller type='pci' index='0' model='pcie-root'/>")
    for n, bus in enumerate(slots.ports):
        d.open("<controller type='pci' index='%d' model='pcie-root-port'>" % bus)
        d.line("<model name='pcie-root-port'/>")
        d.line("<target chassis='%d' port='0x%x'/>" % (bus, 0x10 + n))
        d.line("<address type='pci' domain='0x0000' bus='0x00' slot='0x%02x' "
               "function='0x%x'%s/>" % (2 + n // 8, n % 8,
                                         " multifunction='on'" if n % 8 == 0 else ""))
        d.close("</controller>")
    d.open("<controller type='virtio-serial' index='0'>")
    d.line(serial_addr)
    d.close("</controller>")

    for i in range(nifs):
        kind = rng.choice(["network", "bridge"])
        d.open("<interface type='%s'>" % kind)
        d.line("<mac address='%s'/>" % mac(rng))
        if kind == "network":
            d.line("<source network='default'/>")
        else:
            d.line("<source bridge='br%d'/>" % i)
        d.line("<model type='virtio'/>")
        if viommu and rng.random() < 0.5:
            d.line("<driver iommu='on' ats='on'/>")
        d.line(if_addrs[i])
        d.close("</interface>")
    # SR-IOV VFs handed to the guest as network interfaces (libvirt lists
    # them with the interfaces, and they are VFIO hostdevs all the same)
    for (kind, src, _p), alias, addr, iface in zip(hostdevs, aliases, hd_addrs, as_iface):
        if not iface:
            continue
        d.open("<interface type='hostdev' managed='yes'>")
        d.line("<mac address='%s'/>" % mac(rng))
        d.open("<source>")
        d.line("<address type='pci' domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'/>" % src)
        d.close("</source>")
        if alias:
            d.line("<alias name='%s'/>" % alias)
        d.line(addr)
        d.close("</interface>")

    d.open("<serial type='pty'>")
    d.open("<target type='isa-serial' port='0'>")
    d.line("<model name='isa-serial'/>")
    d.close("</target>")
    d.close("</serial>")
    d.open("<console type='pty'>")
    d.line("<target type='serial' port='0'/>")
    d.close("</console>")
    d.open("<channel type='unix'>")
    d.line("<target type='virtio' name='org.qemu.guest_agent.0'/>")
    d.line("<address type='virtio-serial' controller='0' bus='0' port='1'/>")
    d.close("</channel>")
    spice = rng.random() < 0.6
    if spice:
        d.open("<channel type='spicevmc'>")
        d.line("<target type='virtio' name='com.redhat.spice.0'/>")
        d.line("<address type='virtio-serial' controller='0' bus='0' port='2'/>")
        d.close("</channel>")
    d.open("<input type='tablet' bus='usb'>")
    d.line("<address type='usb' bus='0' port='1'/>")
    d.close("</input>")
    d.line("<input type='mouse' bus='ps2'/>")
    d.line("<input type='keyboard' bus='ps2'/>")
    if spice:
        d.open("<graphics type='spice' autoport='yes'>")
        d.line("<listen type='address'/>")
        d.line("<image compression='off'/>")
        d.close("</graphics>")
    else:
        d.open("<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>")
        d.line("<listen type='address' address='127.0.0.1'/>")
        d.close("</graphics>")
    if sound:
        d.open("<sound model='ich9'>")
        d.line("<address type='pci' domain='0x0000' bus='0x00' slot='0x1b' function='0x0'/>")
        d.close("</sound>")
    d.line("<audio id='1' type='%s'/>" % ("spice" if spice else "none"))
    gpu = any(src == PCI_DEVS[0][0] for _k, src, _p in hostdevs)
    d.open("<video>")
    if gpu:
        d.line("<model type='none'/>")
    else:
        d.line("<model type='virtio' heads='1' primary='yes'/>")
        d.line("<address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>")
    d.close("</video>")
    if spice:
        for port in (2, 3):
            d.open("<redirdev bus='usb' type='spicevmc'>")
            d.line("<address type='usb' bus='0' port='%d'/>" % port)
            d.close("</redirdev>")

    for (kind, src, _p), alias, addr, iface in zip(hostdevs, aliases, hd_addrs, as_iface):
        if iface:
            continue
        if kind == "pci":
            d.open("<hostdev mode='subsystem' type='pci' managed='yes'>")
            d.line("<driver name='vfio'/>")
            d.open("<source>")
            d.line("<address domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'/>" % src)
            d.close("</source>")
        else:
            d.open("<hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci' display='off'>")
            d.open("<source>")
            d.line("<address uuid='%s'/>" % src)
            d.close("</source>")
        if alias:
            d.line("<alias name='%s'/>" % alias)
        d.line(addr)
        d.close("</hostdev>")

    if balloon:
        fpr = " freePageReporting='on'" if rng.random() < 0.4 else ""
        d.open("<memballoon model='virtio'%s>" % fpr)
        d.line("<stats period='%d'/>" % rng.choice([5, 10, 30]))
        d.line(balloon_addr)
        d.close("</memballoon>")
    else:
        d.line("<memballoon model='none'/>")
    d.open("<rng model='virtio'>")
    d.line("<backend model='random'>/dev/urandom</backend>")
    d.line(rng_addr)
    d.close("</rng>")
    if viommu:
        d.open("<iommu model='intel'>")
        attrs = "caching_mode='on'"
        if intremap:
            attrs = "intremap='on' " + attrs
            if vcpus > 8:
                attrs += " eim='on'"
        d.line("<driver %s/>" % attrs)
        d.close("</iommu>")
    if virtio_mem:
        d.open("<memory model='virtio-mem'>")
        d.open("<target>")
        d.line("<size unit='KiB'>%d</size>" % (vm_size_gib * 1024 * 1024))
        d.line("<node>0</node>")
        d.line("<block unit='KiB'>2048</block>")
        d.line("<requested unit='KiB'>%d</requested>"
               % (rng.choice([0, 25, 50, 100]) * vm_size_gib * 1024 * 1024 // 100))
        d.close("</target>")
        d.line(vm_addr)
        d.close("</memory>")
    d.close("</devices>")
    d.line("<seclabel type='dynamic' model='%s' relabel='yes'/>"
           % rng.choice(["apparmor", "dac"]))
    d.close("</domain>")
    return d.text()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--count", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=20240501)
    ap.add_argument("outdir")
    args = ap.parse_args()

    os.makedirs(args.outdir, exist_ok=True)
    rng = random.Random(args.seed)
    total = 0
    for i in range(args.count):
        text = gen_domain(rng, i)
        total += len(text)
        with open(os.path.join(args.outdir, "domain-%05d.xml" % i), "w",
                  encoding="utf-8") as f:
            f.write(text)
    if args.count:
        print("wrote %d domains to %s (mean %.1f KiB)"
              % (args.count, args.outdir, total / args.count / 1024), file=sys.stderr)


if __name__ == "__main__":
    main()

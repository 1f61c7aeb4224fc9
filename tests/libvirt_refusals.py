"""libvirt_refusals.py: what a libvirt or QEMU refusal is about.

Shared by the tests that compare dmaguard's `check` with a real refusal
(tests/libvirt-truth.py; tests/libvirt-conformance.py has its own
ABOUT_MODELLED regex and could use classify() instead).

classify(message) -> (kind, cause) for the words libvirt or QEMU refused a
domain with (virsh's error, or a .err file of libvirt's test data):

  kind 'modelled'  about what dmaguard models, cause one of CAUSES;
  kind 'host'      this host lacks a resource, a permission or a binary
                   feature (a real refusal dmaguard cannot predict from the
                   XML: hugetlbfs, host NUMA nodes, numad, RLIMIT_MEMLOCK,
                   host CPU features, KVM features, SEV/SGX);
  kind 'other'     about something dmaguard does not model (PCI and USB
                   addressing, SMBIOS, TSEG, CPU model and cache, ...).

The rules are tried in order and the first that matches wins, so a host
refusal whose words name a modelled thing ("NUMA node 3 is unavailable":
the host has no node 3) is 'host', and a rule about a guest NUMA node
("hugepages: node 1 not found") is 'modelled'.  Each rule cites where
libvirt 9.0 or QEMU 7.2 says it.

check_causes(errors) -> the causes of `virt-dmaguard check --json`
errors, by code (CODE_CAUSES), or by classify() of the message for a code
CODE_CAUSES does not list.  A check error and a real refusal agree on the
cause when the refusal's cause is among them.
"""
import re

# The causes of a refusal about what dmaguard models.
CAUSES = ("memory-size", "memory-device", "hugepages", "numa", "vcpus", "machine",
          "virt-type", "balloon", "iommu", "hostdev", "memlock")

_RULES = [
    # --- this host, not the XML ---
    # qemu_command.c qemuBuildMemoryGetDefaultPagesize(), qemu_conf.c
    # qemuGetDomainHupageMemPath(): no hugetlbfs mount on this host.
    (r"hugetlbfs filesystem is not mounted", "host", "hugetlbfs"),
    # util/virnuma.c virNumaNodesetIsAvailable(): a <numatune> nodeset
    # names a host NUMA node this host does not have.
    (r"NUMA node \d+ is unavailable", "host", "host-numa-node"),
    # util/virnuma.c virNumaGetAutoPlacementAdvice(): placement='auto'
    # runs numad, which is not installed.
    (r"numad", "host", "numad"),
    # util/virprocess.c virProcessSetMaxMemLock(): raising RLIMIT_MEMLOCK
    # needs CAP_SYS_RESOURCE.
    (r"cannot limit locked memory", "host", "memlock-rlimit"),
    # cpu/cpu_x86.c, cpu/cpu.c, qemu_process.c, qemu_validate.c, and QEMU's
    # target/i386/kvm/kvm.c: the host CPU, KVM or TCG lacks what the guest
    # CPU asks for.
    (r"incompatible with host CPU|guest CPU doesn't match specification|"
     r"is not supported by hypervisor|TSC frequency|"
     r"host doesn't support paravirtual spinlocks|kernel doesn't allow setting HyperV|"
     r"kvm_buf_set_msrs|failed to set MSR", "host", "host-cpu"),
    # qemu_validate.c qemuValidateDomainDef() and
    # qemuValidateDomainDeviceDefMemory(): SEV and SGX need host support
    # that QEMU reports (query-sev-capabilities, query-sgx-capabilities).
    (r"SEV launch security is not supported|sgx epc isn't supported", "host", "host-sev-sgx"),
    # qemu_process.c qemuProcessStartValidate() and conf/capabilities.c
    # virCapabilitiesDomainDataLookupInternal(): no usable /dev/kvm.
    (r"Domain requires KVM|could not find capabilities for domaintype=kvm", "host", "no-kvm"),
    # QEMU: mmap of guest RAM beyond the host's RAM (overcommit heuristic).
    (r"Cannot allocate memory", "host", "host-ram"),
    # The private daemon did not answer, or gave up waiting (for its job
    # lock): not a verdict at all.
    (r"failed to connect to the hypervisor|End of file while reading data|"
     r"Cannot recv data|timed out|Timed out during operation|"
     r"cannot acquire state change lock", "infrastructure", "daemon"),

    # --- modelled, where the words could also match a rule below ---
    # QEMU hw/i386/pc.c pc_memory_init(): the device memory region
    # (<maxMemory>) ends above what the CPU's phys-bits address.
    (r"Address space limit .* phys-bits too low", "modelled", "memory-size"),
    # qemu_domain.c qemuDomainControllerDefPostParse(): a pxb on a guest
    # NUMA node the domain does not have.
    (r"NUMA node \(\d+\) not present in the domain's <cpu><numa>", "modelled", "numa"),
    # QEMU hw/virtio/virtio-pci.c virtio_pci_device_plugged(): a virtio
    # device that keeps the legacy interface cannot have iommu_platform,
    # which <driver iommu='on'/> sets (check's virtio-legacy-iommu-platform
    # for the balloon).
    (r"VIRTIO_F_IOMMU_PLATFORM", "modelled", "iommu"),

    # qemu_validate.c qemuValidateDomainDeviceDefIOMMU(), and
    # conf/domain_addr.c virDomainPCIAddressFlagsCompatible(): only the
    # virtio IOMMU is VIR_PCI_CONNECT_INTEGRATED
    # (qemu_domain_address.c qemuDomainDeviceCalculatePCIConnectFlags()).
    (r"IOMMU device|needs to be an integrated device", "modelled", "iommu"),

    # --- not modelled ---
    (r"(?i)PCI controller|PCI address|PCI slot|pci-root|pcie-root|expander-bus|"
     r"single function device|dmi-to-pci|pci-bridge|'pci' controllers", "other", "pci"),
    (r"USB|usb|xhci|<address> 'port'", "other", "usb"),
    # libvirt's "element 'controller'", dmaguard's "element <controller>".
    (r"element 'controller'|element <controller>", "other", "controller"),
    (r"SMBIOS|BIOS|smbios|fw_cfg|sysinfo", "other", "smbios"),
    (r"TSEG|SMM", "other", "smm"),
    (r"boot menu", "other", "boot"),
    (r"CPU cache|cache level|physical address|CPU mode|CPU model|CPU feature", "other", "cpu-model"),
    (r"feature is not supported for architecture", "other", "features"),
    (r"is not a valid device model name", "other", "binary-device"),
    (r"transitional models are not supported", "other", "virtio-model"),

    # --- modelled ---
    # conf/domain_postparse.c virDomainDefPostParseMemory(),
    # qemu_domain.c qemuDomainAlignMemorySizes().
    (r"memory size|overflowed after alignment|Memory size must be specified|"
     r"maximum memory|initial memory", "modelled", "memory-size"),
    # qemu_domain.c qemuDomainDefValidateMemoryHotplug*(),
    # conf/domain_validate.c virDomainMemoryDefValidate().
    (r"memory device|memory module|memory backend|hotplug|nvdimm|virtio-mem|"
     r"virtio-pmem|dimm|sgx|slots", "modelled", "memory-device"),
    (r"hugepage|memoryBacking|memory backing|memfd", "modelled", "hugepages"),
    (r"locked memory|memlock", "modelled", "memlock"),
    (r"NUMA|numa|memnode|nodeset|memAccess|'cell'", "modelled", "numa"),
    (r"vCPU|vcpu|CPUs|topology|maxcpus|sockets|cores|threads", "modelled", "vcpus"),
    (r"machine type", "modelled", "machine"),
    (r"virt type", "modelled", "virt-type"),
    (r"balloon", "modelled", "balloon"),
    (r"IOMMU|iommu|aw.bits|eim\b|intremap|interrupt remapping|caching.mode", "modelled", "iommu"),
    (r"[Hh]ostdev|mdev|VFIO|vfio", "modelled", "hostdev"),
]
_RULES = [(re.compile(p), k, c) for p, k, c in _RULES]

# virt-dmaguard's error codes (docs/codes.rst) by the causes above.
CODE_CAUSES = {
    "libvirt-memory-hotplug": {"memory-device"},
    "libvirt-memory-numa": {"memory-device", "numa"},
    "libvirt-memory-device": {"memory-device"},
    "libvirt-memory-size": {"memory-size"},
    "libvirt-virt-type-unsupported": {"virt-type"},
    "libvirt-machine-unsupported": {"machine"},
    "libvirt-vcpus-machine-limit": {"vcpus"},
    "libvirt-vcpus-need-q35": {"vcpus"},
    "libvirt-vcpus-need-eim": {"vcpus", "iommu"},
    "iommu-virtio-needs-acpi": {"iommu"},
    "iommu-intremap-needs-split-ioapic": {"iommu"},
    "iommu-eim-needs-intremap": {"iommu"},
    "iommu-eim-needs-kvm": {"iommu"},
    "iommu-aw-bits-unsupported": {"iommu"},
    "iommu-intel-needs-q35": {"iommu"},
    "iommu-model-needs-machine": {"iommu"},
    "iommu-caching-mode-required": {"iommu", "hostdev"},
    "qemu-setting-unsupported": {"iommu"},
    "libvirt-mdev-display": {"hostdev"},
    "libvirt-hostdev-duplicate": {"hostdev"},
    "libvirt-host-no-vfio": {"hostdev"},
    "libvirt-hostdev-backend-kvm": {"hostdev"},
    "balloon-optin-not-mdev": {"hostdev", "balloon"},
    "balloon-optin-inconsistent-group": {"hostdev", "balloon"},
    "discard-busy": {"hostdev", "balloon"},
    "group-address-space-conflict": {"hostdev"},
    "vfio-backend": {"hostdev"},
    "realize-failed": {"hostdev"},
}


def refusal_text(virsh_stderr):
    """The words of a refusal as virsh printed it: without virsh's
    "Failed to create domain from FILE" line, "error: " prefixes,
    libvirt's "qemu unexpectedly closed the monitor" (or "process exited
    while connecting to monitor"), QEMU's timestamps and QEMU's warnings
    (a "host doesn't support requested feature" warning is not why it
    stopped)."""
    out = []
    for line in virsh_stderr.splitlines():
        line = line.strip()
        if not line or line.startswith("error: Failed to create domain from"):
            continue
        line = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z ", "", line)
        if re.search(r"qemu-system-\w+: warning:", line):
            continue
        if line.startswith("error: "):
            line = line[len("error: "):]
        # Which of these libvirt says depends on when QEMU exited.
        line = re.sub(r"^internal error: (qemu unexpectedly closed the monitor|"
                      r"process exited while connecting to monitor): ", "", line)
        out.append(line)
    return " ".join(out)


def classify(message):
    """(kind, cause) of a refusal's words; ('other', 'unclassified') when no
    rule matches.  QEMU's "-device {JSON}: " before its words is left out,
    since the JSON names properties of any kind."""
    message = re.sub(r"-\w+ (\{.*?\}|\S+): ", "", message)
    for rx, kind, cause in _RULES:
        if rx.search(message):
            return kind, cause
    return "other", "unclassified"


def check_causes(errors):
    """The causes check's errors stand for: by CODE_CAUSES, or for a code
    it does not list (a newer one) by classify() of the error's message,
    which carries libvirt's or QEMU's words."""
    causes = set()
    for e in errors:
        causes |= CODE_CAUSES.get(e["code"]) or {classify(e.get("message") or "")[1]}
    return causes

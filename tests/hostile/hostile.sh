#!/bin/bash
# hostile.sh BUILD SRC: one case per class of hostile input found in
# issue 14, each with its expected exit status and message, each run
# under a deadline and (outside sanitizer builds) a memory cap, so that a
# regression to unbounded time or memory fails here instead of hanging.
# Classes covered elsewhere in depth (the hook's deadlines, incoming's)
# have their own tests; this file is the catalogue for check/argv.
set -u
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
tool=$build/tools/virt-dmaguard
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
DEADLINE=${DMG_HOSTILE_DEADLINE:-120}
# 2 GiB of address space: the issue saw /dev/zero grow check to 4.1 GB.
# AddressSanitizer reserves terabytes of address space: no cap there.
if ldd "$tool" | grep -q libasan; then cap=unlimited; else cap=$((2 * 1024 * 1024)); fi

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$tmp/err" | head -5; }

# case NAME WANT_STATUS NEEDLE ARGS...: run the tool on ARGS under the
# deadline and the cap; the status, and NEEDLE in stderr+stdout (empty:
# not checked).  A message must never carry SECRET (file contents).
case_() {
    local name=$1 want=$2 needle=$3 got
    shift 3
    ( ulimit -v "$cap"; exec timeout "$DEADLINE" "$tool" "$@" ) >"$tmp/out" 2>"$tmp/err"
    got=$?
    cat "$tmp/out" >>"$tmp/err"
    if [ "$got" -eq 124 ]; then not_ok "$name: still running after ${DEADLINE}s"; return; fi
    if [ "$got" -ne "$want" ]; then not_ok "$name: exit $got, expected $want"; return; fi
    if [ -n "$needle" ] && ! grep -q -- "$needle" "$tmp/err"; then not_ok "$name: no '$needle'"; return; fi
    if grep -q SECRET "$tmp/err"; then not_ok "$name: a message quotes the file"; return; fi
    ok "$name (exit $got)"
}

gen_hostdevs() {   # N: distinct hostdevs, none on this host
    python3 - "$1" <<'PY'
import sys
n = int(sys.argv[1])
print("<domain type='kvm'><name>h</name><memory unit='GiB'>4</memory><vcpu>2</vcpu>"
      "<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>")
for i in range(n):
    print(f"<hostdev mode='subsystem' type='pci'><source><address domain='{i >> 16}' "
          f"bus='{(i >> 8) & 255}' slot='{(i >> 3) & 31}' function='{i & 7}'/></source></hostdev>")
print("</devices></domain>")
PY
}

common=(--qemu-version 7.2 --sysfs /nonexistent)

# 1. Quadratic analysis: 100k hostdevs (the issue: 40k took 35 s).
gen_hostdevs 100000 >"$tmp/100k.xml"
case_ "100k hostdevs" 0 "hostdev99999" check --xml "$tmp/100k.xml" "${common[@]}"
# 2. libxml2's quadratic paths: 100k attributes, 200k xmlns on one element.
python3 -c 'print("<domain type=\"kvm\"><name>a</name><memory>1</memory><devices><memballoon model=\"none\" " + " ".join("a%d=\"1\"" % i for i in range(100000)) + "/></devices></domain>")' >"$tmp/attrs.xml"
case_ "100k attributes on one element" 2 "more than 256 attributes" check --xml "$tmp/attrs.xml" "${common[@]}"
python3 -c 'print("<domain type=\"kvm\" " + " ".join("xmlns:n%d=\"urn:%d\"" % (i, i) for i in range(200000)) + "><name>a</name><memory>1</memory></domain>")' >"$tmp/ns.xml"
case_ "200k xmlns declarations" 2 "more than 256 attributes" check --xml "$tmp/ns.xml" "${common[@]}"
# 3. Unbounded reads and FIFOs.
case_ "--xml /dev/zero" 2 "not a regular file" check --xml /dev/zero "${common[@]}"
mkfifo "$tmp/fifo"
case_ "--xml FIFO" 2 "not a regular file" check --xml "$tmp/fifo" "${common[@]}"
head -c $((16 * 1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$tmp/big.xml"
case_ "--xml over 16 MiB" 2 "larger than 16 MiB" check --xml "$tmp/big.xml" "${common[@]}"
rm -f "$tmp/big.xml"
# 4. A sysfs dma_entry_limit that is a link to /dev/zero, a FIFO, or
#    holds a secret: a warning naming the file, the default kept.
for kind in zero fifo secret; do
    root=$tmp/sysfs-$kind
    p=$root/module/vfio_iommu_type1/parameters
    mkdir -p "$p"
    case $kind in
    zero) ln -s /dev/zero "$p/dma_entry_limit" ;;
    fifo) mkfifo "$p/dma_entry_limit" ;;
    secret) echo "SECRET-TOKEN" >"$p/dma_entry_limit" ;;
    esac
    case_ "dma_entry_limit: $kind" 0 "dma_entry_limit" check --xml "$src/tests/domains/no-hostdev.xml" --qemu-version 7.2 --sysfs "$root"
done
# 5. A host profile that is /dev/zero, or quotes a secret value.
case_ "--host-profile /dev/zero" 2 "not a regular file" check --xml "$src/tests/domains/no-hostdev.xml" "${common[@]}" --host-profile /dev/zero
printf '[host]\ndma-entry-limit=SECRET\n' >"$tmp/secret.conf"
case_ "--host-profile with a bad value" 2 "dma-entry-limit" check --xml "$src/tests/domains/no-hostdev.xml" "${common[@]}" --host-profile "$tmp/secret.conf"
printf '[host\nSECRET line\n' >"$tmp/syntax.conf"
case_ "--host-profile that is not a key file" 2 "not a valid key file" check --xml "$src/tests/domains/no-hostdev.xml" "${common[@]}" --host-profile "$tmp/syntax.conf"
# 6. Arithmetic: memlock past 64 bits, memory past libvirt's maximum.
cat >"$tmp/wrap.xml" <<'XML'
<domain type='kvm'><name>wrap</name><memory unit='b'>9223372036854774784</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os><features><acpi/><ioapic driver='qemu'/></features>
<devices><hostdev mode='subsystem' type='pci'><source><address bus='1'/></source></hostdev>
<hostdev mode='subsystem' type='pci'><source><address bus='2'/></source></hostdev>
<iommu model='intel'><driver intremap='on' caching_mode='on'/></iommu></devices></domain>
XML
case_ "memlock past 64 bits" 1 "MORE THAN 8 EiB" check --xml "$tmp/wrap.xml" "${common[@]}"
# 7. A report line forged by an alias.
cat >"$tmp/forge.xml" <<'XML'
<domain type='kvm'><name>forge</name><memory unit='GiB'>2</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>
<hostdev mode='subsystem' type='pci'><source><address bus='1'/></source>
<alias name='ua-x&#10;  migration: allowed'/></hostdev></devices></domain>
XML
case_ "an alias holding a newline" 0 'ua-x\\n  migration: allowed' check --xml "$tmp/forge.xml" "${common[@]}"
if grep -q '^  migration: allowed' "$tmp/out"; then not_ok "the alias forged a line"; else ok "no forged line"; fi
# 8. Duplicates libvirt refuses.
cat >"$tmp/dup.xml" <<'XML'
<domain type='kvm'><name>dup</name><memory unit='GiB'>2</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os><devices>
<hostdev mode='subsystem' type='pci'><source><address bus='1'/></source><alias name='ua-a'/></hostdev>
<hostdev mode='subsystem' type='pci'><source><address bus='1'/></source><alias name='ua-a'/></hostdev>
</devices></domain>
XML
case_ "duplicate hostdev and alias" 1 "libvirt-hostdev-duplicate" check --xml "$tmp/dup.xml" "${common[@]}"
grep -q "libvirt-alias-duplicate" "$tmp/out" && ok "the duplicate alias is named" || not_ok "duplicate alias"

echo "1..$n"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# validate-xml.sh [SRCROOT]
#
# Schema checks of dmaguard's XML data:
#   - every <domain> of examples/*.xml (a test-driver <node> file is split
#     into its domains) against libvirt's domain.rng, and every <device>
#     (the node's host devices) against libvirt's nodedev.rng;
#   - tests/domains/*.xml against libvirt's domain.rng;
#   - tests/domains-newer/*.xml against schemas/domain-newer-libvirt.rng,
#   - tests/qemuxml2argv/*.xml against domain.rng (NAME-newer.xml: the overlay),
#     and each of them must FAIL the stock domain.rng (else it does not
#     exercise the overlay);
#   - every dmaguard metadata block of all of the above against
#     schemas/dmaguard-metadata.rng;
#   - tests/domains-bad-metadata/*.xml: libvirt's schema accepts them but
#     their dmaguard metadata must FAIL, proving the metadata check can fail.
#
# SRCROOT defaults to the parent of the directory holding this script.
# Output is TAP.  Exit status: 0 all passed, 1 something failed, 77 skipped
# (xmllint or libvirt's domain.rng not installed).

set -u

script_path=${BASH_SOURCE[0]}
case $script_path in
    */*) script_dir=${script_path%/*} ;;
    *) script_dir=. ;;
esac
script_dir=$(cd "$script_dir" && pwd)
srcdir=${1:-${script_dir%/*}}

LIBVIRT_DOMAIN_RNG=/usr/share/libvirt/schemas/domain.rng
LIBVIRT_NODEDEV_RNG=/usr/share/libvirt/schemas/nodedev.rng
DMG_NS='http://dmaguard.org/xmlns/domain/1.0'
# dmaguard blocks are children of libvirt's <metadata>.  libvirt's own
# elements are in no namespace, so no namespace needs registering.
DMG_XPATH="/domain/metadata/*[namespace-uri()='$DMG_NS']"

metadata_rng=$srcdir/schemas/dmaguard-metadata.rng
newer_rng=$srcdir/schemas/domain-newer-libvirt.rng

if ! command -v xmllint >/dev/null 2>&1; then
    echo "1..0 # SKIP xmllint not found"
    exit 77
fi
if [ ! -r "$LIBVIRT_DOMAIN_RNG" ]; then
    echo "1..0 # SKIP $LIBVIRT_DOMAIN_RNG not found (libvirt schemas not installed)"
    exit 77
fi
if [ ! -d "$srcdir/schemas" ] || [ ! -d "$srcdir/tests" ]; then
    echo "Bail out! $srcdir does not look like the dmaguard source tree"
    exit 1
fi

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/dmg-validate-xml.XXXXXX") || exit 1
trap 'rm -rf "$tmpdir"' EXIT

shopt -s nullglob

ntests=0
nfailed=0
nmetadata=0

rel() {
    local p=$1
    printf '%s\n' "${p#"$srcdir"/}"
}

ok() {
    ntests=$((ntests + 1))
    echo "ok $ntests - $1"
}

not_ok() {
    ntests=$((ntests + 1))
    nfailed=$((nfailed + 1))
    echo "not ok $ntests - $1"
    if [ -n "${2:-}" ] && [ -s "$2" ]; then
        sed -e 's/^/#   /' "$2" | head -n 40
    fi
}

# validate SCHEMA FILE LOG: 0 if FILE validates.  xmllint's messages go to LOG.
validate() {
    xmllint --noout --relaxng "$1" "$2" >"$3" 2>&1
}

# expect_valid SCHEMA FILE DESCRIPTION
expect_valid() {
    local log=$tmpdir/log
    if validate "$1" "$2" "$log"; then
        ok "$3"
    else
        not_ok "$3" "$log"
    fi
}

# expect_invalid SCHEMA FILE DESCRIPTION: FILE must be well-formed but
# rejected by SCHEMA.
expect_invalid() {
    local log=$tmpdir/log
    if ! xmllint --noout "$2" >"$log" 2>&1; then
        not_ok "$3 (not well-formed)" "$log"
    elif validate "$1" "$2" "$log"; then
        not_ok "$3 (unexpectedly valid)"
    else
        ok "$3"
    fi
}

# xpath FILE EXPR: the value of an XPath expression, empty on no match.
xpath() {
    xmllint --xpath "$2" "$1" 2>/dev/null
}

# extract_metadata FILE OUTPREFIX: write each dmaguard metadata block of
# FILE to OUTPREFIX.N.xml, print N.  xmllint --xpath does not copy namespace
# declarations made on ancestors, so one is added to the block's root tag
# when it is missing.
extract_metadata() {
    local file=$1 out=$2 n i qname prefix decl tag
    n=$(xpath "$file" "count($DMG_XPATH)")
    case $n in ''|*[!0-9]*) n=0 ;; esac
    for ((i = 1; i <= n; i++)); do
        xpath "$file" "($DMG_XPATH)[$i]" >"$out.$i.xml"
        qname=$(xpath "$file" "name(($DMG_XPATH)[$i])")
        case $qname in
            *:*) prefix=${qname%%:*}; decl="xmlns:$prefix" ;;
            *) decl="xmlns" ;;
        esac
        tag=$(sed -e '/>/q' "$out.$i.xml" | tr '\n' ' ')
        tag=${tag%%>*}
        case $tag in
            *"$decl="*) ;;
            *) sed -i -e "1s|<$qname|<$qname $decl=\"$DMG_NS\"|" "$out.$i.xml" ;;
        esac
    done
    echo "$n"
}

# check_metadata FILE LABEL: validate every dmaguard block of FILE.
check_metadata() {
    local file=$1 label=$2 out n i
    out=$tmpdir/md-$(echo "$label" | tr '/ ' '__')
    n=$(extract_metadata "$file" "$out")
    if [ "$n" -gt 1 ]; then
        not_ok "$label: one dmaguard metadata block at most (found $n; libvirt's metadata API keeps one element per namespace)"
    fi
    for ((i = 1; i <= n; i++)); do
        nmetadata=$((nmetadata + 1))
        expect_valid "$metadata_rng" "$out.$i.xml" "$label: dmaguard metadata block $i"
    done
}

# A schema that does not compile makes every check against it fail with the
# same message; say so once, up front.
for rng in "$metadata_rng" "$newer_rng"; do
    log=$tmpdir/log
    if [ ! -r "$rng" ]; then
        not_ok "$(rel "$rng") exists"
        continue
    fi
    echo '<x/>' >"$tmpdir/probe.xml"
    validate "$rng" "$tmpdir/probe.xml" "$log"
    if grep -q 'failed to compile' "$log"; then
        not_ok "$(rel "$rng") compiles" "$log"
    else
        ok "$(rel "$rng") compiles"
    fi
done

# --- examples/*.xml --------------------------------------------------------
nexamples=0
for f in "$srcdir"/examples/*.xml; do
    root=$(xpath "$f" "name(/*)")
    case $root in
        node)
            n=$(xpath "$f" "count(/node/domain)")
            case $n in ''|*[!0-9]*) n=0 ;; esac
            if [ "$n" -eq 0 ]; then
                not_ok "$(rel "$f"): node file holds domains"
                continue
            fi
            for ((i = 1; i <= n; i++)); do
                name=$(xpath "$f" "string(/node/domain[$i]/name)")
                [ -n "$name" ] || name="domain$i"
                out=$tmpdir/example-$(basename "$f" .xml)-$i.xml
                xpath "$f" "/node/domain[$i]" >"$out"
                label="$(rel "$f") domain $name"
                expect_valid "$LIBVIRT_DOMAIN_RNG" "$out" "$label: domain.rng"
                check_metadata "$out" "$label"
                nexamples=$((nexamples + 1))
            done
            # The host's node devices, as libvirt formats them.
            n=$(xpath "$f" "count(/node/device)")
            case $n in ''|*[!0-9]*) n=0 ;; esac
            for ((i = 1; i <= n; i++)); do
                name=$(xpath "$f" "string(/node/device[$i]/name)")
                out=$tmpdir/example-$(basename "$f" .xml)-dev$i.xml
                xpath "$f" "/node/device[$i]" >"$out"
                expect_valid "$LIBVIRT_NODEDEV_RNG" "$out" "$(rel "$f") node device ${name:-device$i}: nodedev.rng"
            done
            ;;
        domain)
            expect_valid "$LIBVIRT_DOMAIN_RNG" "$f" "$(rel "$f"): domain.rng"
            check_metadata "$f" "$(rel "$f")"
            nexamples=$((nexamples + 1))
            ;;
        *)
            not_ok "$(rel "$f"): root element is <node> or <domain> (got '${root:-not well-formed}')"
            ;;
    esac
done
if [ "$nexamples" -gt 0 ]; then
    ok "examples hold $nexamples domains"
else
    not_ok "examples hold domains"
fi

# --- tests/domains: stock libvirt schema -----------------------------------
files=("$srcdir"/tests/domains/*.xml)
if [ "${#files[@]}" -gt 0 ]; then
    ok "tests/domains holds ${#files[@]} domains"
else
    not_ok "tests/domains holds domains"
fi
for f in "${files[@]}"; do
    expect_valid "$LIBVIRT_DOMAIN_RNG" "$f" "$(rel "$f"): domain.rng"
    check_metadata "$f" "$(rel "$f")"
done

# --- tests/domains-newer: overlay schema, and not the stock one -------------
files=("$srcdir"/tests/domains-newer/*.xml)
if [ "${#files[@]}" -gt 0 ]; then
    ok "tests/domains-newer holds ${#files[@]} domains"
else
    not_ok "tests/domains-newer holds domains"
fi
for f in "${files[@]}"; do
    expect_valid "$newer_rng" "$f" "$(rel "$f"): domain-newer-libvirt.rng"
    expect_invalid "$LIBVIRT_DOMAIN_RNG" "$f" "$(rel "$f"): rejected by stock domain.rng"
    check_metadata "$f" "$(rel "$f")"
done

# --- tests/qemuxml2argv: the golden inputs; NAME-newer.xml uses newer
# libvirt attributes and validates against the overlay instead -------------
files=("$srcdir"/tests/qemuxml2argv/*.xml)
if [ "${#files[@]}" -ge 30 ]; then
    ok "tests/qemuxml2argv holds ${#files[@]} domains"
else
    not_ok "tests/qemuxml2argv holds at least 30 domains"
fi
for f in "${files[@]}"; do
    case $f in
    *-newer.xml)
        expect_valid "$newer_rng" "$f" "$(rel "$f"): domain-newer-libvirt.rng"
        expect_invalid "$LIBVIRT_DOMAIN_RNG" "$f" "$(rel "$f"): rejected by stock domain.rng" ;;
    *)
        expect_valid "$LIBVIRT_DOMAIN_RNG" "$f" "$(rel "$f"): domain.rng" ;;
    esac
    check_metadata "$f" "$(rel "$f")"
done

if [ "$nmetadata" -gt 0 ]; then
    ok "validated $nmetadata dmaguard metadata blocks"
else
    not_ok "found dmaguard metadata blocks to validate"
fi

# --- tests/domains-bad-metadata: the metadata check must be able to fail ----
files=("$srcdir"/tests/domains-bad-metadata/*.xml)
if [ "${#files[@]}" -gt 0 ]; then
    ok "tests/domains-bad-metadata holds ${#files[@]} domains"
else
    not_ok "tests/domains-bad-metadata holds domains"
fi
for f in "${files[@]}"; do
    label=$(rel "$f")
    expect_valid "$LIBVIRT_DOMAIN_RNG" "$f" "$label: domain.rng (libvirt accepts it)"
    out=$tmpdir/bad-$(basename "$f" .xml)
    n=$(extract_metadata "$f" "$out")
    if [ "$n" -eq 0 ]; then
        not_ok "$label: has a dmaguard metadata block"
        continue
    fi
    nbad=0
    for ((i = 1; i <= n; i++)); do
        if ! validate "$metadata_rng" "$out.$i.xml" "$tmpdir/log" &&
           grep -q 'fails to validate' "$tmpdir/log"; then
            nbad=$((nbad + 1))
        fi
    done
    if [ "$nbad" -gt 0 ]; then
        ok "$label: dmaguard metadata rejected"
    else
        not_ok "$label: dmaguard metadata rejected (all $n blocks validated)"
    fi
done

echo "1..$ntests"
if [ "$nfailed" -gt 0 ]; then
    echo "# $nfailed of $ntests checks failed"
    exit 1
fi
exit 0

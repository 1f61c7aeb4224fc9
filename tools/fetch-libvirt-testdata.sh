#!/bin/bash
# fetch-libvirt-testdata.sh [CACHE]: libvirt's own test data for the
# conformance test (tests/libvirt-conformance.py), from the Debian source
# package of the installed libvirt.  Cached outside the tree, in CACHE
# (default /var/cache/dmaguard), as CACHE/libvirt-VERSION/tests/:
# qemuxml2argvdata/, and qemumemlockdata/ with qemumemlocktest.c (the
# memlock limits libvirt expects); never committed.  A cache that lacks
# some of them gets the missing ones; what is there is kept.  Run as root:
# it adds deb-src lines for the mirrors this machine already uses when
# there are none.  Prints the qemuxml2argvdata directory.
#
# Exit 0 with the data in place, 1 when it cannot be fetched.
set -euo pipefail
cache=${1:-/var/cache/dmaguard}
version=$(dpkg-query -W -f='${Version}' libvirt0)
upstream=${version%%-*}
upstream=${upstream#*:}
dest="$cache/libvirt-$upstream"
# What the conformance test reads, relative to the source tree.
paths=(tests/qemuxml2argvdata tests/qemumemlockdata tests/qemumemlocktest.c)
missing=()
for p in "${paths[@]}"; do
    [ -e "$dest/$p" ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "$dest/tests/qemuxml2argvdata"
    exit 0
fi
mkdir -p "$cache"

# deb-src for every deb mirror of /etc/apt/sources.list.d/*.sources, once.
have_src() { grep -qs '^Types:.*deb-src' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null ||
             grep -qs '^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; }
if ! have_src; then
    srcfile=/etc/apt/sources.list.d/dmaguard-deb-src.sources
    lists=(/etc/apt/sources.list.d/*.sources)
    tmp=$(mktemp)
    for f in "${lists[@]}"; do
        [ -f "$f" ] && [ "$f" != "$srcfile" ] || continue
        sed -n '/^Types:/ s/\bdeb\b/deb-src/; p' "$f"
        echo
    done >"$tmp"
    install -m 644 "$tmp" "$srcfile"
    rm -f "$tmp"
    apt-get update -q >/dev/null || { rm -f "$srcfile"; exit 1; }
fi

work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt downloads as _apt when it can write there.
chown _apt "$work" 2>/dev/null || true
(cd "$work" && apt-get source --download-only -q "libvirt=$version" >/dev/null)
orig=$(ls "$work"/libvirt_"$upstream".orig.tar.* 2>/dev/null | head -1)
[ -n "$orig" ] || { echo "fetch-libvirt-testdata: no libvirt $upstream source tarball" >&2; exit 1; }
tar -xf "$orig" -C "$work" "${missing[@]/#/libvirt-$upstream/}"
# Each one moved in whole (the same file system: a rename), so a reader
# never sees half of one.
mkdir -p "$dest/tests"
for p in "${missing[@]}"; do
    mv "$work/libvirt-$upstream/$p" "$dest/$p"
done
echo "$dest/tests/qemuxml2argvdata"

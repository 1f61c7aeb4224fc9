#!/bin/bash
# install-deps.sh: install what dmaguard needs to build and test, from
# Debian 12's own packages.  Installs only what is missing; run as root.
set -euo pipefail

packages=(
    meson ninja-build gcc pkg-config gettext
    libvirt-dev libvirt-clients libxml2-dev libxml2-utils
    libglib2.0-dev libjson-glib-dev libgnutls28-dev gnutls-bin liburing-dev
    qemu-system-x86 qemu-system-misc qemu-system-arm
    libvirt-daemon libvirt-daemon-driver-qemu
    python3 python3-docutils valgrind perl iproute2
)

# libvirt's QEMU driver resolves its default user before it reads
# qemu.conf; the daemon tests need it to exist (libvirt-daemon-system
# would create it, but would also start the system daemon).
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
    useradd --system -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

# libvirt's own test data for tests/libvirt-conformance.py, from the
# source package of the installed libvirt (cached in /var/cache/dmaguard).
fetch_testdata() {
    "$(dirname "$0")/fetch-libvirt-testdata.sh" >/dev/null ||
        { echo "install-deps: cannot fetch libvirt's test data (deb-src of Debian's mirror)" >&2; return 1; }
}

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    fetch_testdata
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
fetch_testdata

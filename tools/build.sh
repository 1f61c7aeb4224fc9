#!/bin/bash
# build.sh [DIR] [MESON OPTION...]: configure DIR (default: build) on the
# first run, reconfigure it on later runs, and build.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
else
    meson setup "$dir" "$@" >/dev/null
fi
ninja -C "$dir"

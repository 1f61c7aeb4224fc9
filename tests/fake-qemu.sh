#!/bin/sh
# fake-qemu.sh: a stand-in qemu-system for dmaguard's emulator probe
# (src/qemu_ext/qemu_probe.c).  Tests copy it and edit the settings below
# with sed; they run with an empty environment (the probe passes only
# LC_ALL and PATH), so the settings live in the file itself.  Swapping one
# digit keeps the file's size, for the tests of the cache key.
#
#   mode=qmp      answer the QMP session as QEMU does
#   mode=bad      print something that is not QMP
#   mode=hang     never answer
#   mode=flood    print without end
major=9
minor=1
mode=qmp
# Where to write its process id, when set.
pidfile=
# Properties vfio-pci has beyond the usual ones (a downstream build adds
# x-migration-iommu-pt here).
vfio_extra=

[ -n "$pidfile" ] && echo $$ >"$pidfile"
case $mode in
bad)
    echo "SECRET-OUTPUT this is not QEMU"
    exit 0 ;;
hang)
    exec sleep 600 ;;
flood)
    exec yes SECRET-OUTPUT ;;
esac

version="{\"qemu\": {\"micro\": 0, \"minor\": $minor, \"major\": $major}, \"package\": \"fake\"}"
echo "{\"QMP\": {\"version\": $version, \"capabilities\": []}}"
props=""
for p in host addr x-balloon-allowed enable-migration intremap caching-mode eim \
         device-iotlb aw-bits dma-translation pt deflate-on-oom free-page-reporting \
         memdev node block-size requested-size iommu_platform ats packed page-per-vq \
         prealloc slot; do
    props="$props{\"name\": \"$p\", \"type\": \"str\"}, "
done
while IFS= read -r line; do
    id=${line##*\"id\": \"}
    id=${id%%\"*}
    case $id in
    caps)
        echo "{\"return\": {}, \"id\": \"$id\"}" ;;
    quit)
        echo "{\"return\": {}, \"id\": \"$id\"}"
        exit 0 ;;
    version)
        echo "{\"return\": $version, \"id\": \"version\"}" ;;
    "device vfio-ccw"|"device vfio-ap")
        echo "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"no\"}, \"id\": \"$id\"}" ;;
    "device vfio-pci")
        extra=""
        for p in $vfio_extra; do extra="$extra{\"name\": \"$p\", \"type\": \"bool\"}, "; done
        echo "{\"return\": [$extra$props{\"name\": \"id\", \"type\": \"str\"}], \"id\": \"$id\"}" ;;
    device*)
        echo "{\"return\": [$props{\"name\": \"id\", \"type\": \"str\"}], \"id\": \"$id\"}" ;;
    esac
done

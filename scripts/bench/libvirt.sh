#!/usr/bin/env bash
# libvirt.sh: the libvirt incremental (issue 18). A running TCG domain whose qcow2 disk holds
# workload.sh's image.v1; a full backup through libvirt's backup API; then 1% of the allocated
# bytes rewritten by the "guest" (64 KiB writes at random offsets through QEMU's monitor) and
# three incrementals of that same change, timed:
#   snapferry.libvirt    backup --vm: reads only the extents QEMU's dirty bitmap marks
#   snapferry.fullread   backup of the disk as an image file: reads every allocated block
#                        (the block fingerprint cache skips storing the unchanged ones)
#   borg                 borg create of the same file after a borg create of the old one
# Needs root, libvirtd, QEMU and qemu-utils (scripts/libvirt/start.sh starts a private daemon and
# stop.sh ends it); without them the rows read n/a. Env: BENCH_SIZE, BENCH_OUT, SNAPFERRY.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$bench_here/workload.sh" >/dev/null
RESULTS=$WORK/results-libvirt.tsv
: >"$RESULTS"
out=$WORK/results-libvirt.txt
if ! peer_available snapferry || ! have qemu-img || ! have virsh || ! { have libvirtd || [ -x /usr/sbin/libvirtd ]; }; then
  echo "bench: libvirt: snapferry, libvirtd, virsh or qemu-img missing; libvirt incremental skipped" | tee "$out"
  exit 0
fi
run=$WORK/libvirt
rm -rf "$run"; mkdir -p "$run/src"
lvdir=$(mktemp -d /tmp/sfbench-lv.XXXXXX) # short: the socket path has a length limit
trap 'bash "$bench_root/scripts/libvirt/stop.sh" "$lvdir"; rm -rf "$lvdir"' EXIT
bash "$bench_root/scripts/libvirt/start.sh" "$lvdir" >/dev/null
uri="qemu:///system?socket=$lvdir/run/libvirt-sock"
V() { virsh -q -c "$uri" "$@"; }

disk=$run/bench.qcow2
qemu-img convert -O qcow2 "$WORK/image.v1.img" "$disk"
cat >"$run/dom.xml" <<XML
<domain type='qemu'><name>sfbench</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$disk'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>
XML
V define "$run/dom.xml" >/dev/null
V start sfbench >/dev/null
export SNAPFERRY_HOME=$run/state
"$SNAPFERRY" init "$run/repo" >/dev/null
lv_backup() { "$SNAPFERRY" backup --vm=sfbench --to="$run/repo" --libvirt-uri="$uri" --json; }
export -f lv_backup; export SNAPFERRY run uri
measure snapferry.libvirt_full lv_backup

# 1% of the allocated bytes as 64 KiB guest writes at random 64 KiB-aligned offsets.
alloc=$(qemu-img info --output=json -U "$disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["actual-size"])')
size=$(qemu-img info --output=json -U "$disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
writes=$(( alloc / 100 / 65536 + 1 ))
qdev=/machine/peripheral/virtio-disk0/virtio-backend
for i in $(seq "$writes"); do
  off=$(( (RANDOM * 32768 + RANDOM) % (size / 65536) * 65536 ))
  V qemu-monitor-command sfbench --hmp "qemu-io -d $qdev \"write -P $((i % 250 + 1)) $off 64k\"" >/dev/null
done
V qemu-monitor-command sfbench --hmp "qemu-io -d $qdev \"flush\"" >/dev/null
record guest_written_bytes $((writes * 65536))
measure snapferry.libvirt lv_backup
record snapferry.libvirt_read "$(grep -o '"bytes_read": [0-9]*' "$WORK/logs/snapferry.libvirt.log" | tail -1 | awk '{print $2}')"

# The same two states as files: before (image.v1) and after (the domain's disk now).
qemu-img convert -U -O raw "$disk" "$run/after.img"
src=$run/src/disk.img
ln -f "$WORK/image.v1.img" "$src"
"$SNAPFERRY" init "$run/img-repo" >/dev/null
"$SNAPFERRY" backup "$src" --to="$run/img-repo" >/dev/null
ln -f "$run/after.img" "$src"
img_backup() { "$SNAPFERRY" backup "$src" --to="$run/img-repo" --json; }
export -f img_backup; export src
measure snapferry.fullread img_backup
record snapferry.fullread_read "$(grep -o '"bytes_read": [0-9]*' "$WORK/logs/snapferry.fullread.log" | tail -1 | awk '{print $2}')"

if have borg; then
  export BORG_PASSPHRASE= BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_BASE_DIR=$run/borg-base
  borg init --encryption=none "$run/borg" >/dev/null
  ln -f "$WORK/image.v1.img" "$src"
  (cd "$run/src" && borg create --chunker-params fixed,4194304 --sparse "$run/borg::v1" disk.img)
  ln -f "$run/after.img" "$src"
  borg_incr() { cd "$run/src" && borg create --chunker-params fixed,4194304 --sparse "$run/borg::v2" disk.img; }
  export -f borg_incr
  measure borg.incremental borg_incr
fi
V destroy sfbench >/dev/null

{
  echo
  echo "libvirt incremental after 1% guest writes ($(get guest_written_bytes 2) bytes in 64 KiB writes)"
  echo "bytes read: dirty bitmap $(get snapferry.libvirt_read 2), full read $(get snapferry.fullread_read 2)"
  table_header
  ratio_row "libvirt incremental s (vs full-read incr.)" "$(get snapferry.libvirt 2)" "$(get snapferry.fullread 2)" "" ""
  ratio_row "libvirt incremental s (vs borg incr.)" "$(get snapferry.libvirt 2)" "$(get borg.incremental 2)" "" ""
  ratio_row "libvirt bytes read (vs full-read incr.)" "$(get snapferry.libvirt_read 2)" "$(get snapferry.fullread_read 2)" "" ""
} | tee "$out"

#!/usr/bin/env bash
# vm-sparse.sh: the memory of a hot VM backup on the ESXi simulator (issue 7): a VM whose thin
# disk is 2 TiB apparent with 2 GiB allocated (the same file sparse.sh measures), against the same
# data on a 4 GiB disk. The target: peak RSS below 100 MiB, and no growth with disk size (block
# maps stream). The VM is powered on: snapshot, read the frozen base, remove the snapshot.
# Run after sparse.sh (it builds the 2 TiB file). Env: BENCH_SIZE, BENCH_OUT, SNAPFERRY.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RESULTS=$WORK/results-vm-sparse.tsv
: >"$RESULTS"
big=$WORK/sparse.img
[ -f "$big" ] || die "$big missing: run scripts/bench/sparse.sh first"
if ! peer_available snapferry; then
  echo "bench: snapferry: not installed (run make build); VM memory measure skipped" | tee "$WORK/results-vm-sparse.txt"
  exit 0
fi
host=$WORK/vm-sparse
rm -rf "$host"
mkdir -p "$host/bin"
(cd "$bench_root" && go build -o "$host/bin/esxisim" ./cmd/esxisim)
for t in vim-cmd vmkfstools esxcli vmware; do ln -s esxisim "$host/bin/$t"; done
export PATH="$host/bin:$PATH" SNAPFERRY_VMFS_ROOT="$host/vmfs"

# one_vm NAME FLAT: a demo host whose VM disk is FLAT (copied sparse), backed up hot.
one_vm() {
  local name=$1 flat=$2
  rm -rf "$host/vmfs" "$host/repo" "$host/state"
  esxisim demo "$host/vmfs" >/dev/null
  local dir="$host/vmfs/datastore1/web [demo] 01"
  rm -f "$dir/web [demo] 01-flat.vmdk"
  cp --sparse=always "$flat" "$dir/web [demo] 01-flat.vmdk"
  sed -i "s/^RW [0-9]* VMFS/RW $(($(stat -c %s "$flat") / 512)) VMFS/" "$dir/web [demo] 01.vmdk"
  measure "snapferry.vm.$name.init" "$SNAPFERRY" init "$host/repo" --home="$host/state"
  measure "snapferry.vm.$name.backup" "$SNAPFERRY" backup --vm=all --to="$host/repo" --home="$host/state"
  if vim-cmd vmsvc/snapshot.get 1 | grep -q snapferry-; then die "a snapferry snapshot stayed on the VM"; fi
}

# The same allocated data on a small disk: the big file's extents packed together.
small=$WORK/vm-small.img
rm -f "$small"
truncate -s 4G "$small"
off=0
while read -r start len; do
  # sparse.sh writes its extents in whole MiB at MiB offsets, so block units are exact.
  dd if="$big" of="$small" bs=1M skip=$((start >> 20)) seek=$((off >> 20)) count=$((len >> 20)) conv=notrunc status=none
  off=$((off + len))
done < <(python3 - "$big" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
end, off = os.fstat(fd).st_size, 0
while off < end:
    try:
        s = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    e = os.lseek(fd, s, os.SEEK_HOLE)
    print(s, e - s)
    off = e
PY
)
[ "$(du -k "$small" | cut -f1)" -ge "$(($(du -k "$big" | cut -f1) * 95 / 100))" ] || die "$small did not get the data of $big"
one_vm small "$small"
one_vm big "$big"
rm -f "$small"
small_rss=$(get snapferry.vm.small.backup 3)
big_rss=$(get snapferry.vm.big.backup 3)
{
  echo
  echo "hot VM backup on the simulator: the same $(($(du -k "$big" | cut -f1) >> 10)) MiB of data on a 4 GiB and a $SPARSE_APPARENT thin disk"
  table_header
  ratio_row "peak RSS KiB, 2 TiB disk (vs 100 MiB)" "$big_rss" "${big_rss:+102400}" 1 ""
  # Peak RSS of one backup varies by about +-10 MiB between runs (GC timing), so "flat" allows
  # a quarter more for a disk 512 times larger; growth with size would be hundreds of MiB.
  ratio_row "peak RSS KiB, 2 TiB vs 4 GiB disk" "$big_rss" "$small_rss" 1.25 ""
  echo "backup took $(get snapferry.vm.big.backup 2) s (2 TiB disk), $(get snapferry.vm.small.backup 2) s (4 GiB disk)"
} | tee "$WORK/results-vm-sparse.txt"
rm -rf "$host"

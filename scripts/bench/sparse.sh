#!/usr/bin/env bash
# sparse.sh: large-sparse memory measure: snapferry backs up a file of 2 TiB apparent size with
# 2 GiB allocated (256 MiB at BENCH_SIZE=small) in 32 MiB extents spread evenly over the file, and
# we report its peak RSS. The design says memory stays flat as disks grow (block maps stream); on
# ESXi the shell's memory pool is ~800 MB for everything, so the target is the same < 64 MiB as for
# the image benchmark. Peers are not measured: restic reads the holes (2 TiB of zeros).
# Env: BENCH_SIZE (full|small), BENCH_OUT, SNAPFERRY.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RESULTS=$WORK/results-sparse.tsv
: >"$RESULTS"
big=$WORK/sparse.img
params="apparent=$SPARSE_APPARENT data_mib=$SPARSE_DATA_MIB v=1"
if [ ! -f "$WORK/sparse.stamp" ] || [ "$(cat "$WORK/sparse.stamp")" != "$params" ]; then
  echo "bench: building $big ($params)"
  rm -f "$big" "$WORK/sparse.stamp"
  truncate -s "$SPARSE_APPARENT" "$big.tmp"
  apparent_mib=$(($(stat -c %s "$big.tmp") >> 20))
  chunks=$((SPARSE_DATA_MIB / 32))
  stride=$((apparent_mib / chunks))
  for ((i = 0; i < chunks; i++)); do
    dd if=/dev/urandom of="$big.tmp" bs=1M count=32 seek=$((i * stride)) conv=notrunc status=none
  done
  mv "$big.tmp" "$big"
  echo "$params" >"$WORK/sparse.stamp"
fi
echo "bench: $big: $(du -h --apparent-size "$big" | cut -f1) apparent, $(du -h "$big" | cut -f1) allocated"

if ! peer_available snapferry; then
  echo "bench: snapferry: not installed (run make build); sparse memory measure skipped" | tee "$WORK/results-sparse.txt"
  exit 0
fi
repo=$WORK/sparse-repo
rm -rf "$repo"
measure snapferry.sparse.init "$SNAPFERRY" init "$repo"
measure snapferry.sparse.backup "$SNAPFERRY" backup "$big" --to="$repo"
rss=$(get snapferry.sparse.backup 3)
{
  echo
  echo "large sparse file: $SPARSE_APPARENT apparent, $SPARSE_DATA_MIB MiB allocated"
  table_header
  rss_row "snapferry backup peak RSS KiB (vs 64 MiB)" "$rss"
  echo "backup took $(get snapferry.sparse.backup 2) s; repository $(dir_bytes "$repo") bytes"
} | tee "$WORK/results-sparse.txt"
rm -rf "$repo"

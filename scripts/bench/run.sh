#!/usr/bin/env bash
# run.sh: `make bench`: workload, disk-image benchmark, file-tree benchmark, large-sparse memory
# measure, SSH, libvirt incremental (libvirt.sh: needs root and libvirtd), S3 (s3.sh: starts a
# throwaway Ceph RGW), files from inside a disk image (files.sh), in that order; the results of all
# of them end in $BENCH_OUT/$BENCH_SIZE/results.txt.
# Takes about 20-30 min at BENCH_SIZE=full on 2 cores, about 3 min at BENCH_SIZE=small.
# Exits non-zero when a step fails (a tool erred or restored wrong bytes), not when a target is
# missed: the table says MISS and docs/benchmarks.md records it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
start=$(date +%s)
"$here/workload.sh"
"$here/images.sh"
"$here/trees.sh"
"$here/sparse.sh"
"$here/vm-sparse.sh"
"$here/ssh.sh"
"$here/libvirt.sh"
"$here/s3.sh"
"$here/files.sh"
cat "$WORK/results-images.txt" "$WORK/results-trees.txt" "$WORK/results-sparse.txt" "$WORK/results-vm-sparse.txt" \
  "$WORK/results-ssh.txt" "$WORK/results-libvirt.txt" "$WORK/results-s3.txt" "$WORK/results-files.txt" >"$WORK/results.txt"
echo
echo "bench: done in $(($(date +%s) - start)) s; results in $WORK/results.txt"

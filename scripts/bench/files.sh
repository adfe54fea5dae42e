#!/usr/bin/env bash
# files.sh: files from inside a backed-up disk image (issue 16) against restoring the whole image,
# in one run: snapferry backs up the workload's ext4 image (workload.sh; a bare file system, so
# its one volume is p0), restores the whole image, then restores one small file and the largest
# file of the image (a 16 MiB random file: the workload's random data comes in 16 MiB files)
# from inside it. Prints each time as a ratio of the whole-image restore (target <= 0.05x for the
# small file) and the repository bytes each file restore loaded.
# Env: BENCH_SIZE (full|small), BENCH_OUT, SNAPFERRY (binary; default dist/snapferry-linux-amd64).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$bench_here/workload.sh" >/dev/null
RESULTS=$WORK/results-files.tsv
: >"$RESULTS"
run=$WORK/files
rm -rf "$run"; mkdir -p "$run/src"
img=$run/src/disk.img
ln -f "$WORK/image.v1.img" "$img"
repo=$run/repo
"$SNAPFERRY" init "$repo" >/dev/null
"$SNAPFERRY" backup "$img" --to="$repo" >/dev/null 2>&1

# ls of the small file does the same reads (partition table, superblock, folders, the inode)
# without the job bookkeeping every restore does (registry, history, a process-table scan).
lsfile() { "$SNAPFERRY" ls "latest:$img/p0/$SMALL" -l --repo="$repo"; }
whole() { "$SNAPFERRY" restore latest --from="$repo" --target="$run/whole"; }
small() { "$SNAPFERRY" restore "latest:$img/p0/$SMALL" --from="$repo" --target="$run/small"; }
large() { "$SNAPFERRY" restore "latest:$img/p0/random/r0.bin" --from="$repo" --target="$run/large"; }
export -f whole small large lsfile
export SNAPFERRY repo run img

# The small file: the first package's copyright file under the image's copy of /usr/share/doc
# (a few KiB), found with debugfs so finding it is not part of what is measured.
first=$(debugfs -R "ls -p usr_share_doc" "$img" 2>/dev/null | awk -F/ '$6 != "." && $6 != ".." && $3 ~ /^040/ { print $6; exit }')
SMALL=usr_share_doc/$first/copyright
debugfs -R "stat $SMALL" "$img" 2>/dev/null | grep -q 'Type: regular' || die "no small file $SMALL in the image"
export SMALL
mkdir -p "$run/whole" "$run/small" "$run/large"
measure files.whole_image_restore whole
cmp "$run/whole/disk.img" "$img" || die "whole-image restore differs"
measure files.small_file_restore small
measure files.large_file_restore large
measure files.small_file_ls lsfile
for f in small large; do
  b=$(sed -n 's/^read from the repository: .*(\([0-9]*\) bytes).*/\1/p' "$WORK/logs/files.${f}_file_restore.log")
  [ -n "$b" ] || die "files.$f: no repository byte count in $WORK/logs/files.${f}_file_restore.log"
  record "files.${f}_repo_bytes" "$b"
done
cmp "$run/large/r0.bin" <(debugfs -R "cat random/r0.bin" "$img" 2>/dev/null) || die "large file differs from the image's"
w=$(get files.whole_image_restore 2) s=$(get files.small_file_restore 2) l=$(get files.large_file_restore 2) q=$(get files.small_file_ls 2)
{
  echo "files from inside a disk image (BENCH_SIZE=$BENCH_SIZE; image $(du -h --apparent-size "$img" | cut -f1) apparent)"
  printf '  whole-image restore        %8.2f s\n' "$w"
  awk -v s="$s" -v w="$w" -v b="$(get files.small_repo_bytes 2)" 'BEGIN { r = s / w; printf "  one small file              %8.2f s  %.3fx  (target <= 0.05x: %s), %d bytes read from the repository\n", s, r, (r <= 0.05 ? "PASS" : "MISS"), b }'
  awk -v s="$l" -v w="$w" -v b="$(get files.large_repo_bytes 2)" 'BEGIN { printf "  one 16 MiB file             %8.2f s  %.3fx, %d bytes read from the repository\n", s, s / w, b }'
  awk -v s="$q" -v w="$w" 'BEGIN { printf "  ls -l of the small file     %8.2f s  %.3fx  (the same reads, no job bookkeeping)\n", s, s / w }'
} | tee "$WORK/results-files.txt"
rm -rf "$run"

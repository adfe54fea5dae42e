#!/usr/bin/env bash
# s3.sh: object storage benchmark (issue 17): the disk-image workload (image.v1 full, image.v2
# incremental) and the file tree (full, then unchanged twice: the trees of the parent come from the
# metadata cache the full backup filled as it wrote them) backed up into a Ceph RGW on this host by
# snapferry (s3://) and by restic's own s3 backend, in the same run against the same gateway; then
# `snapferry copy` of a local image repository to RGW, and the same image and tree backed up into
# local folders (their peak RSS is the reference for the s3:// runs). Per step: wall and CPU
# seconds, peak RSS, bytes uploaded and requests the gateway served (radosgw's own counters, read
# over its admin socket before and after each step), and restic/snapferry ratios. No targets: the
# issue asks for the comparison. RGW runs on bluestore (a sparse file under the bench folder).
# Env: BENCH_SIZE (full|small), BENCH_OUT, SNAPFERRY.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$bench_here/workload.sh" >/dev/null
RESULTS=$WORK/results-s3.tsv
: >"$RESULTS"
v1=$WORK/image.v1.img v2=$WORK/image.v2.img
run=$WORK/s3
rm -rf "$run"; mkdir -p "$run/src"
RGW_OBJECTSTORE=bluestore RGW_SIZE_GB=40 "$bench_root/scripts/rgw/start.sh" "$run/rgw"
trap '"$bench_root/scripts/rgw/stop.sh" "$run/rgw"' EXIT
set -a
# shellcheck disable=SC1091
. "$run/rgw/s3.env"
set +a
asok=$run/rgw/run/client.rgw.a.asok
ep=$S3_HOSTPORT
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$run/restic-cache ep
cp -a "$TREE_SRC" "$run/src/tree"
img=$run/src/disk.img

# rgw_counters: "requests put_bytes get_bytes" served by radosgw so far.
rgw_counters() {
  ceph --admin-daemon "$asok" perf dump 2>/dev/null | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)["rgw"]
print(r["req"], r["put_b"], r["get_b"])'
}
# s3_measure KEY CMD...: measure, and record the requests and bytes RGW saw during the step.
s3_measure() {
  local key=$1 before after
  before=$(rgw_counters)
  measure "$@"
  after=$(rgw_counters)
  read -r r0 p0 g0 <<<"$before"
  read -r r1 p1 g1 <<<"$after"
  record "$key.requests" $((r1 - r0))
  record "$key.put_bytes" $((p1 - p0))
  record "$key.get_bytes" $((g1 - g0))
}

sf() { "$SNAPFERRY" "$@" --s3-insecure-http; }
snapferry_init() { sf init "s3://$ep/$1"; }
snapferry_backup() { sf backup "$2" --to="s3://$ep/$1"; }
restic_init() { restic init --repo "s3:http://$ep/$1"; }
restic_backup() { (cd "$(dirname "$2")" && restic backup --repo "s3:http://$ep/$1" "$(basename "$2")"); }
# *_cold_backup: a backup with the tool's local cache emptied first.
snapferry_cold_backup() { rm -rf "$SNAPFERRY_HOME/cache/meta"; snapferry_backup "$@"; }
restic_cold_backup() { rm -rf "$RESTIC_CACHE_DIR"; restic_backup "$@"; }
export -f sf snapferry_init snapferry_backup restic_init restic_backup snapferry_cold_backup restic_cold_backup
export SNAPFERRY HOME=$run/home SNAPFERRY_HOME=$run/sf-home
mkdir -p "$HOME"

for t in snapferry restic; do
  if ! peer_available "$t"; then echo "bench: $t: not installed"; continue; fi
  echo "bench: $t into RGW"
  ln -f "$v1" "$img"; cat "$v1" >/dev/null
  s3_measure "$t.image_init" "${t}_init" "$t-img"
  s3_measure "$t.image_full" "${t}_backup" "$t-img" "$img"
  ln -f "$v2" "$img"; cat "$v2" >/dev/null
  s3_measure "$t.image_incremental" "${t}_backup" "$t-img" "$img"
  tar -cf - -C "$run/src" tree | cat >/dev/null
  s3_measure "$t.tree_init" "${t}_init" "$t-tree"
  s3_measure "$t.tree_full" "${t}_backup" "$t-tree" "$run/src/tree"
  s3_measure "$t.tree_unchanged" "${t}_backup" "$t-tree" "$run/src/tree"
  s3_measure "$t.tree_unchanged2" "${t}_backup" "$t-tree" "$run/src/tree"
  # As another host would back up the same tree: no local cache, so every parent tree (and index
  # file) comes from the bucket.
  s3_measure "$t.tree_unchanged_cold" "${t}_cold_backup" "$t-tree" "$run/src/tree"
done

# copy: the image repository built locally, then sent off-site to RGW in one command, and again
# (nothing new to send).
copy_to_s3() { sf copy --from="$run/local-img" --to="s3://$ep/snapferry-copy"; }
export -f copy_to_s3
export run
if peer_available snapferry; then
  # The local backups are measured too: their peak RSS is what the s3:// ones are held to.
  "$SNAPFERRY" init "$run/local-img" >/dev/null
  ln -f "$v1" "$img"; measure snapferry.local_image_full "$SNAPFERRY" backup "$img" --to="$run/local-img"
  ln -f "$v2" "$img"; measure snapferry.local_image_incremental "$SNAPFERRY" backup "$img" --to="$run/local-img"
  record snapferry.local_repo_bytes "$(dir_bytes "$run/local-img")"
  "$SNAPFERRY" init "$run/local-tree" >/dev/null
  measure snapferry.local_tree_full "$SNAPFERRY" backup "$run/src/tree" --to="$run/local-tree"
  sf init "s3://$ep/snapferry-copy" >/dev/null
  s3_measure snapferry.copy copy_to_s3
  s3_measure snapferry.copy_again copy_to_s3
  sf check --read-data --repo="s3://$ep/snapferry-copy" >"$WORK/logs/s3-copy-check.log" 2>&1 ||
    die "check of the copied repository failed (see $WORK/logs/s3-copy-check.log)"
fi

row() { # row STEP: one line per tool for a step
  local t
  for t in snapferry restic; do
    [ -n "$(get "$t.$1" 2)" ] || continue
    printf '%-10s %-18s %16s %10s %12s %12s %10s\n' "$t" "$1" "$(wall_cpu "$t.$1")" "$(get "$t.$1.requests" 2)" \
      "$(mib_b "$(get "$t.$1.put_bytes" 2)")" "$(mib_b "$(get "$t.$1.get_bytes" 2)")" "$(mib "$(get "$t.$1" 3)")"
  done
}
mib_b() { awk -v b="$1" 'BEGIN { if (b != "") printf "%.1f", b / 1048576 }'; }
{
  echo
  machine_info
  echo "into a single-node Ceph RGW (bluestore on a sparse file) on 127.0.0.1, plain http; $(tr '\n' ' ' <"$WORK/image.meta")"
  echo "times are wall seconds, CPU seconds (user+system) in brackets; requests and MiB as radosgw counted them"
  printf '\n%-10s %-18s %16s %10s %12s %12s %10s\n' tool step "time s" requests "put MiB" "get MiB" "peak MiB"
  for s in image_full image_incremental tree_full tree_unchanged tree_unchanged2 tree_unchanged_cold copy copy_again; do row "$s"; done
  printf '\n%-42s %12s %12s %8s\n' "snapferry peak RSS MiB: s3:// vs local folder" s3 local "s3-local"
  for s in image_full image_incremental tree_full; do
    a=$(get "snapferry.$s" 3); b=$(get "snapferry.local_$s" 3)
    [ -n "$a" ] && [ -n "$b" ] || continue
    awk -v l="$s" -v a="$a" -v b="$b" 'BEGIN { printf "%-42s %12.1f %12.1f %8.1f\n", l, a / 1024, b / 1024, (a - b) / 1024 }'
  done
  printf '\n%-42s %12s %12s %8s\n' "restic / snapferry (higher: snapferry better)" snapferry restic ratio
  for s in image_full image_incremental tree_full tree_unchanged tree_unchanged2 tree_unchanged_cold; do
    for f in 2 requests put_bytes; do
      k=$s; [ "$f" = 2 ] || k=$s.$f
      a=$(get "snapferry.$k" 2); b=$(get "restic.$k" 2)
      [ -n "$a" ] && [ -n "$b" ] || continue
      awk -v l="$s ${f/2/wall s}" -v a="$a" -v b="$b" 'BEGIN { printf "%-42s %12s %12s %8.2f\n", l, a, b, (a > 0 ? b / a : 0) }'
    done
  done
} | tee "$WORK/results-s3.txt"

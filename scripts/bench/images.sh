#!/usr/bin/env bash
# images.sh: disk-image benchmark (issue 2): snapferry against borg and restic on the workload of
# workload.sh, in one run on one machine. For each tool: init, full backup of image.v1, incremental
# backup of image.v2 (1% of allocated bytes rewritten) under the same path, restore of the latest
# snapshot (checked byte for byte against image.v2), peak RSS of each step, repository size.
# Prints a table with snapferry/peer ratios against the targets:
#   full <= 0.5x borg, incremental <= 0.25x borg, restore <= 0.5x restic, repo size <= restic,
#   snapferry peak RSS < 64 MiB.
# A peer that is not installed prints "not installed" and its rows read n/a.
# Env: BENCH_SIZE (full|small), BENCH_OUT, SNAPFERRY (binary; default dist/snapferry-linux-amd64).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$bench_here/workload.sh" >/dev/null
RESULTS=$WORK/results-images.tsv
: >"$RESULTS"
v1=$WORK/image.v1.img v2=$WORK/image.v2.img
run=$WORK/images
rm -rf "$run"; mkdir -p "$run/src"
# Every tool backs up the same path; a hard link swaps v1 for v2 in no time and gives the file a
# new inode and mtime, as a rewritten VM disk has.
src=$run/src/disk.img

# Per tool: NAME_init REPO, NAME_backup REPO LABEL (full|incremental; backs up $src), NAME_restore
# REPO DIR (the incremental one). `measure` runs them in a child bash, hence `export -f` below.
snapferry_init() { "$SNAPFERRY" init "$1"; }
snapferry_backup() { "$SNAPFERRY" backup "$src" --to="$1"; }
snapferry_restore() { "$SNAPFERRY" restore latest --from="$1" --target="$2"; }
snapferry_fast_full() { "$SNAPFERRY" init "$1" --compression=fast >/dev/null && "$SNAPFERRY" backup "$src" --to="$1"; }

export BORG_PASSPHRASE= BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR=$run/borg-base
borg_init() { borg init --encryption=none "$1"; }
borg_backup() { (cd "$run/src" && borg create --chunker-params fixed,4194304 --sparse "$1::$2" disk.img); }
borg_restore() { (cd "$2" && borg extract --sparse "$1::incremental"); }

export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$run/restic-cache
restic_init() { restic init --repo "$1"; }
restic_backup() { (cd "$run/src" && restic backup --repo "$1" disk.img); }
restic_restore() {
  # restic >= 0.15 can keep holes on restore; 0.14 writes the zeros.
  local sparse=()
  restic restore --help 2>/dev/null | grep -q -- '--sparse' && sparse=(--sparse)
  restic restore --repo "$1" latest --target "$2" "${sparse[@]}"
}

bench_tool() {
  local t=$1 repo=$run/$1-repo out=$run/$1-restore
  if ! peer_available "$t"; then echo "bench: $t: not installed"; return 0; fi
  echo "bench: $t"
  ln -f "$v1" "$src"
  cat "$v1" >/dev/null # warm cache: every tool reads the image after it has been read once
  measure "$t.init" "${t}_init" "$repo"
  measure "$t.full" "${t}_backup" "$repo" full
  ln -f "$v2" "$src"
  cat "$v2" >/dev/null
  measure "$t.incremental" "${t}_backup" "$repo" incremental
  mkdir -p "$out"
  measure "$t.restore" "${t}_restore" "$repo" "$out"
  local got
  got=$(find "$out" -name disk.img -type f | head -n 1)
  [ -n "$got" ] || die "$t restore: no disk.img under $out"
  cmp "$got" "$v2" || die "$t restore: $got differs from $v2"
  record "$t.restore_allocated_bytes" "$(du -B1 "$got" | cut -f1)"
  record "$t.repo_bytes" "$(dir_bytes "$repo")"
  rm -rf "$out"
}

export -f snapferry_fast_full snapferry_init snapferry_backup snapferry_restore borg_init borg_backup borg_restore restic_init restic_backup restic_restore
export src run SNAPFERRY
for t in snapferry borg restic; do bench_tool "$t"; done

# --compression=fast (S2): the full backup of image.v1 into a fresh repository, CPU-profiled
# (the profiler costs ~1%): the CPU seconds under S2 and BLAKE3 (block ids and pack names) are
# that row's floor, and what is left over is reading, fingerprints, pack writing and runtime.
fast_full_profiled() { SNAPFERRY_CPUPROFILE=$run/fast.prof snapferry_fast_full "$1"; }
export -f fast_full_profiled
# pprof_cpu PROFILE REGEX: the cumulative CPU seconds of the first function matching REGEX.
pprof_cpu() {
  go tool pprof -top -cum -unit=s "$SNAPFERRY" "$1" 2>/dev/null |
    awk -v re="$2" '$NF ~ re { v = $4; sub(/s$/, "", v); print v; exit }'
}
if peer_available snapferry; then
  ln -f "$v1" "$src"
  cat "$v1" >/dev/null
  rm -rf "$run/fast-repo"
  measure snapferry.full_fast fast_full_profiled "$run/fast-repo"
  record snapferry.fast_repo_bytes "$(dir_bytes "$run/fast-repo")"
  if have go; then
    record snapferry.fast_s2_cpu "$(pprof_cpu "$run/fast.prof" 's2\\.Encode$')"
    record snapferry.fast_blake3_cpu "$(pprof_cpu "$run/fast.prof" 'blobhash\\.\\(\\*Hasher\\)\\.Write$')"
  fi
  rm -rf "$run/fast-repo" "$run/fast.prof"
fi

# The codec floor: Debian's zstd (the C reference implementation) at level 1, on one core, over
# the allocated bytes of image.v1 alone. Issue 2 asks for zstd; if this alone needs more CPU
# seconds than two cores have in 0.5x borg's wall time, no zstd-based tool can meet that target
# on this machine, however well it overlaps reading, hashing and packing.
# BLAKE3 block ids are the other part issue 2 asks for; b3sum (Debian's, the Rust reference
# implementation with its SIMD paths) on one thread stands for the cheapest way to compute them.
zstd_floor() { zstd -1 -T1 -q -c "$1" >/dev/null; }
blake3_floor() { b3sum --num-threads 1 --no-names "$1" >/dev/null; }
export -f zstd_floor blake3_floor
if have zstd; then
  : >"$run/allocated.bin"
  while read -r start len; do
    dd if="$v1" of="$run/allocated.bin" bs=1M iflag=skip_bytes,count_bytes skip="$start" count="$len" \
      oflag=append conv=notrunc status=none
  done < <("$bench_here/extents.py" "$v1")
  cat "$run/allocated.bin" >/dev/null
  measure zstd_cli.level1 zstd_floor "$run/allocated.bin"
  if have b3sum; then measure b3sum.one_thread blake3_floor "$run/allocated.bin"; else echo "bench: b3sum: not installed"; fi
  rm -f "$run/allocated.bin"
fi

# The same floor for the codec issue 2 names (klauspost/compress zstd, fastest level) as
# snapferry runs it: one more full backup of image.v1, CPU-profiled, and the CPU seconds its
# profile puts under zstd's EncodeAll (the compressibility probe included). Go's profiler
# samples at 100 Hz, so the figure is good to about 0.1 s.
profile_backup() { SNAPFERRY_CPUPROFILE=$run/full.prof snapferry_backup "$1"; }
export -f profile_backup
if have go; then
  ln -f "$v1" "$src"
  cat "$v1" >/dev/null
  "$SNAPFERRY" init "$run/profile-repo" >/dev/null
  measure snapferry.full_profiled profile_backup "$run/profile-repo"
  record snapferry.zstd_cpu "$(go tool pprof -top -cum -unit=s "$SNAPFERRY" "$run/full.prof" 2>/dev/null |
    awk '/zstd\.\(\*Encoder\)\.EncodeAll$/ { v = $4; sub(/s$/, "", v); print v; exit }')"
  rm -rf "$run/profile-repo"
else
  echo "bench: go: not installed (no profile of snapferry's own zstd CPU seconds)"
fi

{
  echo
  machine_info
  cat "$WORK/image.meta" | tr '\n' ' '; echo
  echo "times are wall seconds, CPU seconds (user+system) in brackets"
  printf '\n%-12s %16s %16s %16s %10s %14s %12s\n' tool "full s" "incr s" "restore s" "RSS MiB" "repo bytes" "restored alloc"
  for t in snapferry borg restic; do
    if [ -z "$(get "$t.full" 2)" ]; then printf '%-12s %s\n' "$t" "not installed"; continue; fi
    rss=$(peak_rss "$t" init full incremental restore)
    printf '%-12s %16s %16s %16s %10s %14s %12s\n' "$t" "$(wall_cpu "$t.full")" "$(wall_cpu "$t.incremental")" \
      "$(wall_cpu "$t.restore")" "$(mib "$rss")" "$(get "$t.repo_bytes" 2)" "$(get "$t.restore_allocated_bytes" 2)"
  done
  table_header
  time_rows "full backup" full borg 0.5
  # zstd -1's CPU seconds alone against what two cores have in 0.5x borg's wall time (= borg's).
  floor_row "  floor: zstd -1 CPU (budget 2x0.5 borg)" "$(get zstd_cli.level1 4)" "$(get borg.full 2)"
  floor_row "  floor: zstd -1 + b3sum CPU" "$(sum_cpu zstd_cli.level1 b3sum.one_thread)" "$(get borg.full 2)"
  floor_row "  floor: snapferry's own zstd CPU (pprof)" "$(get snapferry.zstd_cpu 2)" "$(get borg.full 2)"
  ratio_row "full --compression=fast s (vs borg)" "$(get snapferry.full_fast 2)" "$(get borg.full 2)" 0.5 ""
  ratio_row "  same in CPU s" "$(get snapferry.full_fast 4)" "$(get borg.full 4)" 0.5 ""
  floor_row "  floor: its S2 + BLAKE3 CPU (pprof)" "$(awk -v a="$(get snapferry.fast_s2_cpu 2)" \
    -v b="$(get snapferry.fast_blake3_cpu 2)" 'BEGIN { if (a != "" && b != "") printf "%.2f", a + b }')" "$(get borg.full 2)"
  ratio_row "  its repository (of v1) bytes (vs restic, v1+v2)" "$(get snapferry.fast_repo_bytes 2)" "$(get restic.repo_bytes 2)" "" ""
  time_rows "incremental" incremental borg 0.25
  time_rows "restore" restore restic 0.5
  ratio_row "repository bytes (vs restic)" "$(get snapferry.repo_bytes 2)" "$(get restic.repo_bytes 2)" 1 ""
  rss_row "snapferry peak RSS KiB (vs 64 MiB)" "$(peak_rss snapferry init full incremental restore)"
} | tee "$WORK/results-images.txt"

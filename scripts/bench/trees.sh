#!/usr/bin/env bash
# trees.sh: file-tree benchmark (issue 3): snapferry, borg and restic against `rsync -a` to a local
# folder, on a fresh copy of /usr/share (/usr/share/doc at BENCH_SIZE=small), in one run:
#   full            first backup of the tree
#   unchanged       the same tree again (nothing changed)
#   appended        after 1% of the files (seeded choice) got 4 KiB appended
#   restore         the latest snapshot into an empty folder (rsync: its copy, copied again),
#                   checked against the tree with diff -r
# Prints times, peak RSS and repository sizes, and snapferry/rsync ratios against the targets:
#   full <= 1x rsync, unchanged and appended <= 1.5x rsync; and snapferry's peak RSS against the
#   64 MiB target of issue 19, and its growth from the smaller to the larger synthetic tree
#   (first backup, appended backup and restore of each).
# A tool that is not installed prints "not installed" and its rows read n/a.
# Env: BENCH_SIZE (full|small), BENCH_OUT, SNAPFERRY.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RESULTS=$WORK/results-trees.tsv
: >"$RESULTS"
run=$WORK/trees
rm -rf "$run"; mkdir -p "$run/src"
echo "bench: copying $TREE_SRC"
cp -a "$TREE_SRC" "$run/src/tree"
src=$run/src/tree

# Per tool: NAME_init REPO, NAME_backup REPO LABEL. rsync's "repository" is its target folder.
snapferry_init() { "$SNAPFERRY" init "$1"; }
snapferry_backup() { "$SNAPFERRY" backup "$src" --to="$1"; }
export BORG_PASSPHRASE= BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR=$run/borg-base
borg_init() { borg init --encryption=none "$1"; }
borg_backup() { (cd "$run/src" && borg create "$1::$2" tree); }
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$run/restic-cache
restic_init() { restic init --repo "$1"; }
restic_backup() { (cd "$run/src" && restic backup --repo "$1" tree); }
rsync_init() { mkdir -p "$1"; }
rsync_backup() { rsync -a --delete "$src/" "$1/tree/"; }
# NAME_restore REPO DIR: the latest snapshot of the tree into DIR (each puts it at its own path).
snapferry_restore() { "$SNAPFERRY" restore latest --from="$1" --target="$2"; }
borg_restore() { (cd "$2" && borg extract "$1::appended"); }
restic_restore() { restic restore --repo "$1" latest --target "$2"; }
rsync_restore() { rsync -a "$1/tree/" "$2/tree/"; }
export -f snapferry_init snapferry_backup borg_init borg_backup restic_init restic_backup rsync_init rsync_backup
export -f snapferry_restore borg_restore restic_restore rsync_restore
export src run SNAPFERRY

tools=(snapferry borg restic rsync)
step() { # step LABEL: every installed tool backs up the tree as it is now
  local t
  for t in "${tools[@]}"; do
    peer_available "$t" || continue
    [ "$1" = full ] && measure "$t.init" "${t}_init" "$run/$t-repo"
    measure "$t.$1" "${t}_backup" "$run/$t-repo" "$1"
  done
}
for t in "${tools[@]}"; do peer_available "$t" || echo "bench: $t: not installed"; done
tar -cf - -C "$run/src" tree | cat >/dev/null # warm cache: every tool reads a tree read before
step full
step unchanged
/usr/bin/python3 - "$src" <<'PY'
# Appends 4 KiB to 1% of the regular files (at least one), chosen with a fixed seed.
import os, random, sys
files = []
for root, dirs, names in os.walk(sys.argv[1]):
    dirs.sort()
    for n in sorted(names):
        p = os.path.join(root, n)
        if os.path.isfile(p) and not os.path.islink(p):
            files.append(p)
rng = random.Random(3)
chosen = rng.sample(files, max(1, len(files) // 100))
for p in chosen:
    with open(p, "ab") as f:
        f.write(rng.randbytes(4096))
print(f"bench: appended 4 KiB to {len(chosen)} of {len(files)} files")
PY
step appended
for t in "${tools[@]}"; do
  peer_available "$t" || continue
  out=$run/$t-restore
  rm -rf "$out"; mkdir -p "$out"
  measure "$t.restore" "${t}_restore" "$run/$t-repo" "$out"
  got=$(find "$out" -type d -name tree -print -quit)
  [ -n "$got" ] && diff -r --no-dereference "$src" "$got" >/dev/null || die "$t restore: $out differs from $src"
  rm -rf "$out"
done
for t in "${tools[@]}"; do
  peer_available "$t" && record "$t.repo_bytes" "$(dir_bytes "$run/$t-repo")"
done

# Memory as the tree grows (issue 19: <= 64 MiB and flat): synthetic trees of 50k and 500k
# small files (100 per folder, 1 KiB each, distinct contents), each backed up into a fresh
# repository, backed up again after 1% of its files got 4 KiB appended (the same seeded choice
# as above), and restored; peak RSS of each step. BENCH_SIZE=small uses 5k and 50k.
synth_tree() { /usr/bin/python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 100 // 100), "e%02d" % (i // 100 % 100))
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%02d" % (i % 100)), "wb") as f:
        f.write(("file %d " % i).encode() * 100)
PY
}
synth_append() { /usr/bin/python3 - "$1" <<'PY'
import os, random, sys
files = []
for root, dirs, names in os.walk(sys.argv[1]):
    dirs.sort()
    files += [os.path.join(root, n) for n in sorted(names)]
rng = random.Random(3)
for p in rng.sample(files, max(1, len(files) // 100)):
    with open(p, "ab") as f:
        f.write(rng.randbytes(4096))
PY
}
snapferry_synth() { "$SNAPFERRY" init "$1" >/dev/null && "$SNAPFERRY" backup "$2" --to="$1"; }
snapferry_synth_again() { "$SNAPFERRY" backup "$2" --to="$1"; }
export -f snapferry_synth snapferry_synth_again
if [ "$BENCH_SIZE" = small ]; then synth_sizes="5000 50000"; else synth_sizes="50000 500000"; fi
if peer_available snapferry; then
  for n in $synth_sizes; do
    rm -rf "$run/synth" "$run/synth-repo" "$run/synth-restore"
    synth_tree "$run/synth" "$n"
    measure "snapferry.synth_$n" snapferry_synth "$run/synth-repo" "$run/synth"
    synth_append "$run/synth"
    measure "snapferry.synth_appended_$n" snapferry_synth_again "$run/synth-repo" "$run/synth"
    # The source stays until after the restore (500k files take ~2 GB of 4 KiB blocks each, twice
    # then): deleted just before, ext4 spent most of the restore allocating inodes among the ones
    # freed moments earlier (openat 10.9 of 14.3 system s at 50k files; docs/benchmarks.md).
    mkdir -p "$run/synth-restore"
    measure "snapferry.synth_restore_$n" snapferry_restore "$run/synth-repo" "$run/synth-restore"
    got=$(find "$run/synth-restore" -type f | wc -l)
    [ "$got" = "$n" ] || die "synthetic restore: $got files, want $n"
    rm -rf "$run/synth" "$run/synth-restore"
  done
  rm -rf "$run/synth" "$run/synth-repo" "$run/synth-restore"
fi

{
  echo
  machine_info
  echo "tree: $TREE_SRC, $(find "$src" -type f | wc -l) files, $(dir_bytes "$src") bytes"
  echo "times are wall seconds, CPU seconds (user+system) in brackets"
  printf '\n%-12s %16s %16s %16s %16s %10s %14s\n' tool "full s" "unchanged s" "appended s" "restore s" "RSS MiB" "repo bytes"
  for t in "${tools[@]}"; do
    if [ -z "$(get "$t.full" 2)" ]; then printf '%-12s %s\n' "$t" "not installed"; continue; fi
    rss=$(peak_rss "$t" full unchanged appended restore)
    printf '%-12s %16s %16s %16s %16s %10s %14s\n' "$t" "$(wall_cpu "$t.full")" "$(wall_cpu "$t.unchanged")" \
      "$(wall_cpu "$t.appended")" "$(wall_cpu "$t.restore")" "$(mib "$rss")" "$(get "$t.repo_bytes" 2)"
  done
  table_header
  time_rows "full" full rsync 1
  time_rows "unchanged" unchanged rsync 1.5
  time_rows "appended" appended rsync 1.5
  # No issue target: restoring is what the copies are for, and rsync's copy is the floor.
  time_rows "restore (no target)" restore rsync ""
  rss_row "snapferry peak RSS KiB (vs 64 MiB)" "$(peak_rss snapferry full unchanged appended restore)"
  set -- $synth_sizes
  for step in "" appended_ restore_; do
    label=${step%_}; label=${label:-full}
    for n in $synth_sizes; do
      rss_row "  synthetic $n files, $label, peak RSS KiB" "$(get "snapferry.synth_$step$n" 3)"
    done
    ratio_row "  $label: RSS growth ${2} vs ${1} (flat: <= 1.25)" "$(get "snapferry.synth_$step$2" 3)" "$(get "snapferry.synth_$step$1" 3)" 1.25 ""
  done
  for n in $synth_sizes; do
    echo "  synthetic $n files, wall s (CPU s): full $(wall_cpu "snapferry.synth_$n"), appended $(wall_cpu "snapferry.synth_appended_$n"), restore $(wall_cpu "snapferry.synth_restore_$n")"
  done
} | tee "$WORK/results-trees.txt"

# lib.sh: shared by the scripts in scripts/bench/ (sourced, not run).
#
# Sizes (env BENCH_SIZE):
#   full  (default) the issue's workload: 8 GiB sparse ext4 image, ~1.7 GiB allocated, of which
#                   400 MiB random; /usr/share as the file tree; a 2 TiB sparse file with 2 GiB data.
#   small           a quick run of the same steps: 1 GiB image, ~200 MiB allocated (48 MiB random),
#                   /usr/share/doc as the tree, 2 TiB sparse file with 256 MiB data.
# Everything is written below BENCH_OUT (default: bench-out/ in the repository).
# Caches are warm: nothing here can drop the page cache reliably (no root guarantee, shared host),
# so every tool reads inputs that an earlier step already read.

bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_root=$(cd "$bench_here/../.." && pwd)
BENCH_SIZE=${BENCH_SIZE:-full}
BENCH_OUT=${BENCH_OUT:-$bench_root/bench-out}
SNAPFERRY=${SNAPFERRY:-$bench_root/dist/snapferry-linux-amd64}

case $BENCH_SIZE in
  full)
    # IMG_CONTENT_MIB: file bytes put into the image; ext4 allocates ~12% more for them.
    IMG_SIZE=8G IMG_CONTENT_MIB=1560 IMG_RANDOM_MIB=400
    TREE_SRC=/usr/share SPARSE_APPARENT=2T SPARSE_DATA_MIB=2048 ;;
  small)
    IMG_SIZE=1G IMG_CONTENT_MIB=190 IMG_RANDOM_MIB=48
    TREE_SRC=/usr/share/doc SPARSE_APPARENT=2T SPARSE_DATA_MIB=256 ;;
  *) echo "bench: BENCH_SIZE=$BENCH_SIZE: use full or small" >&2; exit 2 ;;
esac
WORK=$BENCH_OUT/$BENCH_SIZE
mkdir -p "$WORK"
# The workload copies Go sources (/usr/local/go) and /usr/share; a go.mod makes BENCH_OUT its own
# module, so `go vet ./...` and `go test ./...` in the repository never walk into it.
[ -f "$BENCH_OUT/go.mod" ] || echo "module benchout" >"$BENCH_OUT/go.mod"

die() { echo "bench: $*" >&2; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

# time_cmd is GNU time; its -v output gives wall time and peak RSS of the command and children.
TIME_BIN=/usr/bin/time
[ -x "$TIME_BIN" ] || die "GNU time not found at $TIME_BIN; install it: apt-get install time"

# measure KEY CMD...: run CMD (a command or an exported function), record "KEY wall_seconds
# max_rss_kib cpu_seconds" in $RESULTS (a TSV).
# Output of CMD goes to $WORK/logs/KEY.log; a failing CMD fails the bench, naming the log.
measure() {
  local key=$1; shift
  mkdir -p "$WORK/logs"
  local log=$WORK/logs/$key.log tv=$WORK/logs/$key.time
  echo "bench: $key: $*" >"$log"
  # The previous command's dirty pages (a 540 MiB rsync copy, a repository) would otherwise be
  # written back during this one and charged to whichever tool runs next.
  sync
  # bash -c lets CMD be a function exported with `export -f`; GNU time reports the largest RSS
  # of any process it waited for, so the small wrapper shell does not add to the figure.
  if ! "$TIME_BIN" -v -o "$tv" bash -c '"$@"' measure "$@" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "$key failed: $* (full output in $log)"
  fi
  local wall rss cpu
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$tv")
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tv")
  # CPU seconds (user + system) vary less than wall time on a loaded machine.
  cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ { s += $2 } END { printf "%.2f", s }' "$tv")
  printf '%s\t%s\t%s\t%s\n' "$key" "$wall" "$rss" "$cpu" >>"$RESULTS"
  printf 'bench: %-28s %8.2f s  %8d KiB peak RSS  %8.2f s CPU\n' "$key" "$wall" "$rss" "$cpu"
}

# record KEY VALUE: a measured number that is not a timed command (repository size in bytes).
record() { printf '%s\t%s\t\n' "$1" "$2" >>"$RESULTS"; printf 'bench: %-28s %s\n' "$1" "$2"; }

# get KEY FIELD: FIELD 2 = wall seconds or value, 3 = peak RSS KiB, 4 = CPU seconds; empty when
# not measured.
get() { awk -F'\t' -v k="$1" -v f="$2" '$1 == k { v = $f } END { print v }' "$RESULTS"; }

# peak_rss TOOL STEP...: the largest peak RSS (KiB) of TOOL's measured steps; empty if none ran.
peak_rss() {
  local t=$1 s r max=; shift
  for s in "$@"; do
    r=$(get "$t.$s" 3)
    [ -n "$r" ] && [ "$r" -gt "${max:-0}" ] && max=$r
  done
  echo "$max"
}

# time_rows LABEL STEP PEER TARGET: the wall-time target row of snapferry's STEP against PEER's,
# and the same ratio in CPU seconds (steadier when other work shares the machine).
time_rows() {
  ratio_row "$1 s (vs $3)" "$(get "snapferry.$2" 2)" "$(get "$3.$2" 2)" "$4" ""
  ratio_row "  same in CPU s" "$(get "snapferry.$2" 4)" "$(get "$3.$2" 4)" "$4" ""
}

# rss_row LABEL KIB: the 64 MiB memory target row (the ESXi shell's memory pool is shared).
rss_row() { ratio_row "$1" "$2" "${2:+65536}" 1 ""; }

# sum_cpu KEY...: the CPU seconds of all KEYs added up; empty when any of them was not measured.
sum_cpu() {
  local k v total=0
  for k in "$@"; do
    v=$(get "$k" 4)
    [ -n "$v" ] || return 0
    total=$(awk -v a="$total" -v b="$v" 'BEGIN { printf "%.2f", a + b }')
  done
  echo "$total"
}
# wall_cpu KEY: "WALL (CPU)" seconds of a measured step.
wall_cpu() { [ -n "$(get "$1" 2)" ] && echo "$(get "$1" 2) ($(get "$1" 4))"; }

# mib KIB: KiB as MiB with one decimal.
mib() { awk -v k="$1" 'BEGIN { if (k != "") printf "%.1f", k / 1024 }'; }

dir_bytes() { du -sb "$1" | awk '{ print $1 }'; }

# ratio_row LABEL OURS PEER TARGET UNIT: one table line with ours/peer against "ratio <= TARGET".
ratio_row() {
  local label=$1 ours=$2 peer=$3 target=$4 unit=$5
  if [ -z "$ours" ] || [ -z "$peer" ]; then
    printf '%-42s %12s %12s %8s %8s  %s\n' "$label" "${ours:-n/a}" "${peer:-n/a}" "n/a" "<= $target" "n/a"
    return
  fi
  awk -v l="$label" -v o="$ours" -v p="$peer" -v t="$target" -v u="$unit" 'BEGIN {
    r = (p > 0) ? o / p : 0
    if (t == "") printf "%-42s %12s %12s %8.2f %8s  %s\n", l, o u, p u, r, "", "(no target)"
    else printf "%-42s %12s %12s %8.2f %8s  %s\n", l, o u, p u, r, "<= " t, (r <= t) ? "PASS" : "MISS"
  }'
}

# floor_row LABEL NEED BUDGET: a feasibility line, not a target of ours: NEED (CPU seconds some
# unavoidable part of the work takes alone) against BUDGET (CPU seconds a target leaves). Above
# the budget, the target is out of reach on this machine for any tool that must do that part.
floor_row() {
  local label=$1 need=$2 budget=$3
  if [ -z "$need" ] || [ -z "$budget" ]; then
    printf '%-42s %12s %12s %8s %8s  %s\n' "$label" "${need:-n/a}" "${budget:-n/a}" "n/a" "" "n/a"
    return
  fi
  awk -v l="$label" -v o="$need" -v p="$budget" 'BEGIN {
    r = (p > 0) ? o / p : 0
    printf "%-42s %12s %12s %8.2f %8s  %s\n", l, o, p, r, "", (r <= 1) ? "within budget" : "target out of reach"
  }'
}

table_header() {
  printf '\n%-42s %12s %12s %8s %8s  %s\n' "metric (ours vs peer)" "snapferry" "peer" "ratio" "target" "verdict"
  printf '%s\n' "--------------------------------------------------------------------------------------------------"
}

# peer_available NAME: true when NAME can run (snapferry: the built binary).
peer_available() {
  case $1 in
    snapferry) [ -x "$SNAPFERRY" ] ;;
    *) have "$1" ;;
  esac
}

# tool_version NAME ARGS...: the first line NAME ARGS prints, or "NAME not installed".
tool_version() {
  local t=$1 bin=$1 out; shift
  [ "$t" = snapferry ] && bin=$SNAPFERRY
  if peer_available "$t" && out=$("$bin" "$@" 2>/dev/null); then
    echo "${out%%$'\n'*}" | tr -s ' '
  else
    echo "$t not installed"
  fi
}

machine_info() {
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB RAM, kernel $(uname -r), fs $(df --output=fstype "$BENCH_OUT" | tail -n 1)"
  echo "tools: $(tool_version snapferry version); $(tool_version borg --version); $(tool_version restic version); $(tool_version rsync --version)"
  echo "conditions: warm page cache (inputs read before each tool), load average $(cut -d" " -f1-3 /proc/loadavg) at the end, $(date -u +%Y-%m-%dT%H:%MZ), BENCH_SIZE=$BENCH_SIZE"
}

#!/usr/bin/env bash
# ssh.sh: the push-over-SSH benchmark (issue 3), against a loopback OpenSSH sshd: snapferry
# backing up to ssh:// (snapferry serve on the far side) against borg over ssh:// (borg serve) and
# restic over sftp:, then keeping a replica of the image against `rsync --inplace --no-whole-file`.
# Same 8 GiB / 1% workload as images.sh. Targets: full <= 0.5x borg, incremental <= 0.25x borg
# (issue 19: <= 0.2x borg and <= 1.3x snapferry's local incremental), replica incremental
# <= 0.2x rsync, restore <= 0.5x borg and <= 1.2x the same restore from the local folder,
# --compression=fast full <= 0.5x borg; bytes sent and snapferry's client peak RSS are printed.
# The latency case runs the restore and an incremental of every tool through
# latency-proxy.py (25 ms each way): snapferry's restore must keep >= 50% of its throughput.
# The far side's peak RSS is measured too: --remote-path names a wrapper that runs the same binary
# under GNU time, which appends each session's peak RSS to far-rss.txt.
# Env: BENCH_SIZE, BENCH_OUT, SNAPFERRY.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$bench_here/workload.sh" >/dev/null
RESULTS=$WORK/results-ssh.tsv
: >"$RESULTS"
v1=$WORK/image.v1.img v2=$WORK/image.v2.img
run=$WORK/ssh
rm -rf "$run"; mkdir -p "$run/src"
src=$run/src/disk.img
"$bench_root/scripts/sshd/loopback-sshd.sh" start "$run/sshd" >/dev/null
trap '"$bench_root/scripts/sshd/loopback-sshd.sh" stop "$run/sshd"' EXIT
# shellcheck disable=SC1091
. "$run/sshd/env"
far="$SSH_USER@127.0.0.1"
ssh_cmd="ssh -i $SSH_KEY -p $SSH_PORT -o UserKnownHostsFile=$SSH_KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes"
# The functions run in child shells (measure): settings travel in exported variables.
far_rss=$run/far-rss.txt
# The wrapper ignores SIGHUP (and so do time and serve after exec): sshd hangs up on the session
# when the client leaves, which would kill time before it writes the figure.
# Each session appends its peak RSS (KiB) and a "cpu USER SYSTEM" line.
printf '#!/bin/sh\ntrap "" HUP\nexec %q -f "%%M\ncpu %%U %%S" -a -o %q %q "$@"\n' "$TIME_BIN" "$far_rss" "$SNAPFERRY" >"$run/far-snapferry"
chmod +x "$run/far-snapferry"
export sf_ssh_identity="$SSH_KEY" sf_ssh_known="$SSH_KNOWN_HOSTS" sf_far="--remote-path=$run/far-snapferry"
snapferry_init() { mkdir -p "$run/snapferry-repo"; "$SNAPFERRY" init "ssh://$far:$SSH_PORT$run/snapferry-repo" --identity="$sf_ssh_identity" --known-hosts="$sf_ssh_known" "$sf_far"; }
snapferry_backup() { "$SNAPFERRY" backup "$src" --to="ssh://$far:${LINK_PORT:-$SSH_PORT}$run/snapferry-repo" --identity="$sf_ssh_identity" --known-hosts="$sf_ssh_known" "$sf_far"; }
# The restore's wire trace says how many read lanes (extra SSH sessions, docs/wire-protocol.md)
# it opened and how many large loads each took.
snapferry_restore() { SNAPFERRY_WIRE_TRACE="$run/restore-trace.txt" "$SNAPFERRY" restore latest --source="$src" --from="ssh://$far:${LINK_PORT:-$SSH_PORT}$run/snapferry-repo" --target="$1" --identity="$sf_ssh_identity" --known-hosts="$sf_ssh_known" "$sf_far"; }
snapferry_local_restore() { "$SNAPFERRY" restore latest --source="$src" --from="$run/snapferry-repo" --target="$1"; }
snapferry_local_incremental() { "$SNAPFERRY" backup "$src" --to="$run/snapferry-repo"; }
snapferry_fast_backup() { mkdir -p "$run/fast-repo"; "$SNAPFERRY" init "ssh://$far:$SSH_PORT$run/fast-repo" --compression=fast --identity="$sf_ssh_identity" --known-hosts="$sf_ssh_known" "$sf_far" &&
  "$SNAPFERRY" backup "$src" --to="ssh://$far:$SSH_PORT$run/fast-repo" --identity="$sf_ssh_identity" --known-hosts="$sf_ssh_known" "$sf_far"; }
export BORG_PASSPHRASE= BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR=$run/borg-base BORG_RSH="$ssh_cmd"
borg_init() { borg init --encryption=none "ssh://$far:$SSH_PORT$run/borg-repo"; }
borg_backup() { (cd "$run/src" && borg create --chunker-params fixed,4194304 --sparse "ssh://$far:${LINK_PORT:-$SSH_PORT}$run/borg-repo::$1" disk.img); }
borg_restore() { (cd "$1" && borg extract --sparse "ssh://$far:${LINK_PORT:-$SSH_PORT}$run/borg-repo::incremental"); }
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$run/restic-cache
restic_repo() { echo "sftp:$far:$run/restic-repo"; }
restic_ssh() { echo "$ssh_cmd -p ${LINK_PORT:-$SSH_PORT} $far -s sftp"; }
restic_init() { restic init --repo "$(restic_repo)" -o sftp.command="$(restic_ssh)"; }
restic_backup() { (cd "$run/src" && restic backup --repo "$(restic_repo)" -o sftp.command="$(restic_ssh)" disk.img); }
restic_restore() {
  local sparse=()
  restic restore --help 2>/dev/null | grep -q -- '--sparse' && sparse=(--sparse)
  restic restore --repo "$(restic_repo)" -o sftp.command="$(restic_ssh)" latest --target "$1" "${sparse[@]}"
}

# Replicas: the image kept current on the far side. snapferry prints its byte counts as JSON;
# rsync's --stats says what it sent.
snapferry_replica() { mkdir -p "$run/snapferry-replica"; "$SNAPFERRY" replica "$src" --to="ssh://$far:$SSH_PORT$run/snapferry-replica" --identity="$sf_ssh_identity" --known-hosts="$sf_ssh_known" "$sf_far" --json >"$run/replica-$1.json"; }
rsync_replica() { rsync --inplace --no-whole-file --stats -e "$ssh_cmd" "$src" "$far:$run/rsync-replica/" >"$run/rsync-$1.txt"; }
export -f snapferry_init snapferry_backup borg_init borg_backup restic_repo restic_init restic_backup snapferry_replica rsync_replica
export -f snapferry_restore snapferry_local_restore snapferry_local_incremental snapferry_fast_backup borg_restore restic_ssh restic_restore
export src run far SNAPFERRY SSH_PORT ssh_cmd
mkdir -p "$run/rsync-replica"

# sshd_children_cpu: the CPU seconds of the loopback sshd's finished sessions and everything they
# ran (the far serves among them), from its cutime and cstime.
sshd_children_cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($16 + $17) / t }' "/proc/$SSHD_PID/stat"; }

# far_measure KEY CMD...: measure, then record the largest far-side peak RSS of the step's
# sessions as KEY.far (snapferry only; other tools' far sides are not wrapped), and the CPU
# seconds of the far serves (KEY.far_cpu) and of sshd itself (KEY.sshd_cpu): on the loopback
# they share the client's cores.
far_measure() {
  : >"$far_rss"
  local r i before
  before=$(sshd_children_cpu)
  measure "$@"
  # The client may be gone before its far side has finished exiting (and time has written).
  for i in $(seq 100); do pgrep -f "$SNAPFERRY serve --root=$run/" >/dev/null || break; sleep 0.1; done
  for i in $(seq 30); do pgrep -P "$SSHD_PID" >/dev/null || break; sleep 0.1; done
  r=$(awk '/^cpu / { s += $2 + $3 } END { printf "%.2f", s }' "$far_rss")
  [[ $1 != snapferry.* ]] || record "$1.far_cpu" "$r"
  [[ $1 != snapferry.* ]] || record "$1.sshd_cpu" "$(awk -v a="$before" -v b="$(sshd_children_cpu)" -v f="$r" 'BEGIN { printf "%.2f", b - a - f }')"
  r=$(awk '/^[0-9]+$/ && $1 > m { m = $1 } END { print m }' "$far_rss")
  [ -z "$r" ] || [[ $1 != snapferry.* ]] || record "$1.far" "$r"
  # A restore's read lanes are far serves of their own, alive at the same time: their sum is
  # what the store host holds.
  r=$(awk '/^[0-9]+$/ { s += $1; n++ } END { if (n) print n " serves, " s }' "$far_rss")
  [ -z "$r" ] || [[ $1 != snapferry.* ]] || record "$1.far_sum" "$r"
}

bench_tool() {
  local t=$1
  if ! peer_available "$t"; then echo "bench: $t: not installed"; return 0; fi
  echo "bench: $t over ssh"
  ln -f "$v1" "$src"; cat "$v1" >/dev/null
  far_measure "$t.init" "${t}_init"
  far_measure "$t.full" "${t}_backup" full
  ln -f "$v2" "$src"; cat "$v2" >/dev/null
  [ "$t" = snapferry ] && record snapferry.repo_full "$(dir_bytes "$run/snapferry-repo")"
  far_measure "$t.incremental" "${t}_backup" incremental
  [ "$t" = snapferry ] && record snapferry.repo_incremental "$(dir_bytes "$run/snapferry-repo")"
  restore_check "$t.restore" "${t}_restore"
  return 0
}

# restore_check KEY FUNC: measure FUNC restoring into a fresh folder, then compare with v2.
restore_check() {
  local out=$run/restore-$1 got lanes opened
  rm -rf "$out" "$run/restore-trace.txt"; mkdir -p "$out"
  far_measure "$1" "$2" "$out"
  if [[ $1 == snapferry.* ]] && [ -f "$run/restore-trace.txt" ]; then
    lanes=$(grep -o 'read lanes: .*' "$run/restore-trace.txt" | tail -n 1 || true)
    opened=$(grep -c 'read lane [0-9]* opened' "$run/restore-trace.txt" || true)
    record "$1.lanes" "$opened read lanes opened${lanes:+ ($lanes)}"
  fi
  got=$(find "$out" -name disk.img -type f | head -n 1)
  [ -n "$got" ] || die "$1: no disk.img under $out"
  cmp "$got" "$v2" || die "$1: $got differs from $v2"
  rm -rf "$out"
}
for t in snapferry borg restic; do bench_tool "$t"; done

# snapferry's own local figures on the same repository folder, for the "near local speed" rows:
# the restore straight from the folder, and an incremental of v1 again (its blocks are all
# stored; the 1% differ from the latest snapshot) locally and then over ssh://.
if peer_available snapferry; then
  restore_check snapferry.restore_local snapferry_local_restore
  ln -f "$v1" "$src"; cat "$v1" >/dev/null
  measure snapferry.incremental_local snapferry_local_incremental
  ln -f "$v2" "$src"; cat "$v2" >/dev/null
  far_measure snapferry.incremental_again snapferry_backup again
  ln -f "$v1" "$src"; cat "$v1" >/dev/null
  far_measure snapferry.full_fast snapferry_fast_backup
  ln -f "$v2" "$src"
fi

# The latency case: every tool's restore and an incremental (v1 again, see above) through a
# proxy that adds 25 ms each way. The proxy has its own port; known_hosts learns it.
proxy_port=$((20000 + RANDOM % 40000))
"$bench_here/latency-proxy.py" start "$run/proxy" "$proxy_port" "$SSH_PORT" 25
trap '"$bench_here/latency-proxy.py" stop "$run/proxy"; "$bench_root/scripts/sshd/loopback-sshd.sh" stop "$run/sshd"' EXIT
sed "s/^\[127.0.0.1\]:$SSH_PORT /[127.0.0.1]:$proxy_port /" "$SSH_KNOWN_HOSTS" >>"$SSH_KNOWN_HOSTS"
export LINK_PORT=$proxy_port
for t in snapferry borg restic; do
  peer_available "$t" || continue
  echo "bench: $t through the 25 ms proxy"
  restore_check "$t.restore_lat" "${t}_restore"
  ln -f "$v1" "$src"; cat "$v1" >/dev/null
  far_measure "$t.incremental_lat" "${t}_backup" latency
  ln -f "$v2" "$src"
done
unset LINK_PORT
"$bench_here/latency-proxy.py" stop "$run/proxy"

for t in snapferry rsync; do
  if ! peer_available "$t"; then echo "bench: $t: not installed"; continue; fi
  ln -f "$v1" "$src"
  far_measure "$t.replica_full" "${t}_replica" full
  ln -f "$v2" "$src"
  far_measure "$t.replica_incremental" "${t}_replica" incremental
done
# The SSH pipe itself: 1 GiB through snapferry's in-process client and through OpenSSH's ssh, both
# aes128-gcm, into `cat > /dev/null` on the loopback sshd (Go benchmarks in transfer/sshconn).
echo "bench: ssh pipe throughput, in-process vs OpenSSH (1 GiB each)"
(cd "$bench_root" && go test -run - -bench 'Pipe(InProcess|OpenSSH)$' -benchtime 1024x ./transfer/sshconn) >"$WORK/logs/ssh-pipe.log" 2>&1 ||
  die "ssh pipe benchmark failed (see $WORK/logs/ssh-pipe.log)"
pipe_mbs() { awk -v n="$1" '$1 ~ n { for (i = 1; i < NF; i++) if ($(i + 1) == "MB/s") print $i }' "$WORK/logs/ssh-pipe.log"; }
record snapferry.pipe_mbs "$(pipe_mbs BenchmarkPipeInProcess)"
record openssh.pipe_mbs "$(pipe_mbs BenchmarkPipeOpenSSH)"

cmp "$v2" "$run/snapferry-replica/disk.img/disk.img" 2>/dev/null || cmp "$v2" "$run/snapferry-replica/disk.img" || die "snapferry replica differs from $v2"
sf_sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["items"][0]["replica"]["bytes_sent"])' "$run/replica-incremental.json")
rs_sent=$(awk -F': ' '/Total bytes sent/ { gsub(/,/, "", $2); print $2 }' "$run/rsync-incremental.txt" 2>/dev/null || true)
changed=$(awk '{ for (i = 1; i < NF; i++) if ($i == "rewritten_bytes") print $(i + 1) }' "$WORK/image.meta")
record snapferry.replica_sent "$sf_sent"
record rsync.replica_sent "${rs_sent:-}"
{
  echo
  machine_info
  echo "over a loopback OpenSSH sshd; $(tr '\n' ' ' <"$WORK/image.meta")"
  echo "times are wall seconds, CPU seconds (user+system) in brackets"
  printf '\n%-12s %16s %16s %10s\n' tool "full s" "incr s" "RSS MiB"
  for t in snapferry borg restic; do
    if [ -z "$(get "$t.full" 2)" ]; then printf '%-12s %s\n' "$t" "not installed"; continue; fi
    printf '%-12s %16s %16s %10s\n' "$t" "$(wall_cpu "$t.full")" "$(wall_cpu "$t.incremental")" "$(mib "$(peak_rss "$t" init full incremental)")"
  done
  printf '\n%-12s %16s %16s %16s\n' replica "full s" "incr s" "incr bytes sent"
  printf '%-12s %16s %16s %16s\n' snapferry "$(wall_cpu snapferry.replica_full)" "$(wall_cpu snapferry.replica_incremental)" "$sf_sent"
  printf '%-12s %16s %16s %16s\n' rsync "$(wall_cpu rsync.replica_full)" "$(wall_cpu rsync.replica_incremental)" "${rs_sent:-n/a}"
  awk -v a="$(get snapferry.pipe_mbs 2)" -v b="$(get openssh.pipe_mbs 2)" 'BEGIN {
    printf "\nssh pipe MB/s: in-process %s, OpenSSH ssh %s, ratio %.2f (higher is faster)\n", a, b, (b > 0 ? a / b : 0) }'
  table_header
  time_rows "full backup over ssh" full borg 0.5
  time_rows "incremental over ssh" incremental borg 0.2
  ratio_row "incremental again: ssh:// vs local s" "$(get snapferry.incremental_again 2)" "$(get snapferry.incremental_local 2)" 1.3 ""
  time_rows "restore over ssh" restore borg 0.5
  ratio_row "restore: ssh:// vs local s" "$(get snapferry.restore 2)" "$(get snapferry.restore_local 2)" 1.2 ""
  # On the loopback the far serve and sshd share the client's cores: their CPU seconds together,
  # spread perfectly over the cores, are the least wall time the ssh:// restore can take here.
  awk -v c="$(get snapferry.restore 4)" -v f="$(get snapferry.restore.far_cpu 2)" -v s="$(get snapferry.restore.sshd_cpu 2)" \
    -v n="$(nproc)" -v l="$(get snapferry.restore_local 2)" -v lc="$(get snapferry.restore_local 4)" 'BEGIN {
    printf "  CPU s on the shared cores: client %s, far serve %s, sshd %s: >= %.2f s on %d cores; 1.2x local is %.2f s (local %s s, %s CPU s)\n",
      c, f, s, (c + f + s) / n, n, 1.2 * l, l, lc }'
  ratio_row "full --compression=fast over ssh s (vs borg)" "$(get snapferry.full_fast 2)" "$(get borg.full 2)" 0.5 ""
  echo "  CPU s on the shared cores: client $(get snapferry.full_fast 4), far serve $(get snapferry.full_fast.far_cpu 2), sshd $(get snapferry.full_fast.sshd_cpu 2) (full zstd: $(get snapferry.full 4), $(get snapferry.full.far_cpu 2), $(get snapferry.full.sshd_cpu 2))"
  time_rows "restore through 25 ms proxy" restore_lat borg 0.5
  time_rows "incremental through 25 ms proxy" incremental_lat borg 0.2
  # Throughput kept = no-latency time / latency time; the target is >= 0.5, so the row shows
  # the inverse (latency time / no-latency time) against <= 2.
  ratio_row "restore: 25 ms proxy vs none (<=2: keeps 50%)" "$(get snapferry.restore_lat 2)" "$(get snapferry.restore 2)" 2 ""
  ratio_row "  restic restore, same ratio" "$(get restic.restore_lat 2)" "$(get restic.restore 2)" "" ""
  ratio_row "  borg restore, same ratio" "$(get borg.restore_lat 2)" "$(get borg.restore 2)" "" ""
  echo "snapferry restore over ssh://: $(get snapferry.restore.lanes 2); far serves (count, sum of peak RSS KiB) $(get snapferry.restore.far_sum 2)"
  echo "snapferry restore through the proxy: $(get snapferry.restore_lat.lanes 2); far serves $(get snapferry.restore_lat.far_sum 2)"
  time_rows "replica incremental" replica_incremental rsync 0.2
  ratio_row "replica incremental bytes sent (vs rsync)" "$sf_sent" "${rs_sent:-}" 1 ""
  ratio_row "replica incremental bytes sent (vs changed)" "$sf_sent" "$changed" 1.2 ""
  added=$(( $(get snapferry.repo_incremental 2) - $(get snapferry.repo_full 2) ))
  # The rewrite is random data, so "the changed data compressed" is its own size.
  ratio_row "backup incremental bytes to the far side (vs changed)" "$added" "$changed" 1.2 ""
  echo "the 1% rewrite is $changed bytes in 64 KiB writes; snapferry stores and sends the changed 64 KiB pieces of each changed block (patch blobs), compressed"
  rss_row "snapferry client peak RSS KiB (vs 64 MiB)" "$(peak_rss snapferry init full incremental replica_full replica_incremental)"
  far_peak=$(for s in init full incremental replica_full replica_incremental; do get "snapferry.$s.far" 2; done | sort -n | tail -n 1)
  rss_row "snapferry far side (serve) peak RSS KiB" "$far_peak"
} | tee "$WORK/results-ssh.txt"

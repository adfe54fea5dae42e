#!/usr/bin/env bash
# rtt.sh: the round trips of an ssh:// image incremental through latency-proxy.py (25 ms each
# way, as the "incremental through 25 ms" row of ssh.sh), counted from the wire trace
# (SNAPFERRY_WIRE_TRACE: the SSH handshake's round trips, the session channel, the serial wire
# requests with the Hello) and timed. With SNAPFERRY_OLD set, the same incremental by that
# build too, alternating with SNAPFERRY on one repository (each run stores the 1% that differ
# from the run before), and the two builds against each other's serve (a new client with an
# old serve and the reverse must work: the wire protocol keeps older peers). Prints one line per
# run; the counts do not depend on the machine's load, the times do (the load average is
# printed with them).
# Env: BENCH_SIZE, BENCH_OUT, SNAPFERRY, SNAPFERRY_OLD, RTT_RUNS (default 3).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$bench_here/workload.sh" >/dev/null
v1=$WORK/image.v1.img v2=$WORK/image.v2.img
run=$WORK/rtt
rm -rf "$run"; mkdir -p "$run/src"
src=$run/src/disk.img
"$bench_root/scripts/sshd/loopback-sshd.sh" start "$run/sshd" >/dev/null
trap '"$bench_root/scripts/sshd/loopback-sshd.sh" stop "$run/sshd"' EXIT
# shellcheck disable=SC1091
. "$run/sshd/env"
proxy_port=$((20000 + RANDOM % 40000))
"$bench_here/latency-proxy.py" start "$run/proxy" "$proxy_port" "$SSH_PORT" 25
trap '"$bench_here/latency-proxy.py" stop "$run/proxy"; "$bench_root/scripts/sshd/loopback-sshd.sh" stop "$run/sshd"' EXIT
sed "s/^\[127.0.0.1\]:$SSH_PORT /[127.0.0.1]:$proxy_port /" "$SSH_KNOWN_HOSTS" >>"$SSH_KNOWN_HOSTS"
spec="ssh://$SSH_USER@127.0.0.1:$proxy_port$run/repo"
export SNAPFERRY_HOME=$run/state

# sf CLIENT SERVE ARGS...: the CLIENT build with SERVE as the far snapferry.
sf() { local client=$1 serve=$2; shift 2; "$client" "$@" --identity="$SSH_KEY" --known-hosts="$SSH_KNOWN_HOSTS" --remote-path="$serve"; }

# incremental NAME CLIENT SERVE: one incremental (the image flips between v1 and v2), its round
# trips from the trace and its wall time.
flip=1
incremental() {
  local name=$1 client=$2 serve=$3 trace=$run/trace-$1.txt t0 t1 link serial
  if [ "$flip" = 1 ]; then ln -f "$v2" "$src"; flip=2; else ln -f "$v1" "$src"; flip=1; fi
  cat "$src" >/dev/null
  rm -f "$trace"
  t0=$(date +%s.%N)
  SNAPFERRY_WIRE_TRACE=$trace sf "$client" "$serve" backup "$src" --to="$spec" >"$run/out-$name.txt" 2>&1 ||
    { cat "$run/out-$name.txt" >&2; die "$name failed"; }
  t1=$(date +%s.%N)
  # 1 for the TCP connection; "(N round trips)" of the SSH handshake and the session channel (a
  # build without them: 7 and 2, channel and exec); "*" marks a serial wire request.
  link=$(grep -o '(\([0-9]*\) round trip' "$trace" | grep -o '[0-9]*' | paste -sd+ - | bc || true)
  [ -n "$link" ] || link=9
  serial=$(grep -c '^ *[0-9.]* ms \* ' "$trace" || true)
  grep -q '\* hello' "$trace" || serial=$((serial + 1)) # a build that does not trace its Hello
  printf '%-28s round trips %2d (link %d + wire %2d)  %.2f s  load %s\n' "$name" $((1 + link + serial)) "$link" "$serial" \
    "$(echo "$t1 - $t0" | bc)" "$(cut -d' ' -f1 /proc/loadavg)"
}

ln -f "$v1" "$src"
mkdir -p "$run/repo"
sf "$SNAPFERRY" "$SNAPFERRY" init "$spec" >/dev/null
sf "$SNAPFERRY" "$SNAPFERRY" backup "$src" --to="$spec" >/dev/null
for i in $(seq "${RTT_RUNS:-3}"); do
  incremental "new-$i" "$SNAPFERRY" "$SNAPFERRY"
  if [ -n "${SNAPFERRY_OLD:-}" ]; then incremental "old-$i" "$SNAPFERRY_OLD" "$SNAPFERRY_OLD"; fi
done
if [ -n "${SNAPFERRY_OLD:-}" ]; then
  incremental "new-client-old-serve" "$SNAPFERRY" "$SNAPFERRY_OLD"
  incremental "old-client-new-serve" "$SNAPFERRY_OLD" "$SNAPFERRY"
fi
echo "traces: $run/trace-*.txt"

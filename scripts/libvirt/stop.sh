#!/usr/bin/env bash
# stop.sh DIR: stops the libvirtd that start.sh DIR started, and the QEMU processes of its
# domains (their PIDs are in DIR/run/qemu/*.pid, checked to be in libvirtd's mount namespace), by
# PID only.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd)

wait_gone() { for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$1" 2>/dev/null; }

# Our QEMUs run in the mount namespace start.sh made for libvirtd: a PID from a pidfile counts
# only when its namespace is that one (a stale pidfile may name a reused PID).
ns=""
if [ -f "$dir/libvirtd.pid" ]; then ns=$(readlink "/proc/$(cat "$dir/libvirtd.pid")/ns/mnt" 2>/dev/null || true); fi
for f in "$dir"/run/qemu/*.pid; do
  [ -f "$f" ] && [ -n "$ns" ] || continue
  p=$(cat "$f" 2>/dev/null) || continue
  case $p in ''|*[!0-9]*) continue ;; esac
  if [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ]; then
    kill "$p" 2>/dev/null
    wait_gone "$p"
  fi
done
if [ -f "$dir/libvirtd.pid" ]; then
  p=$(cat "$dir/libvirtd.pid")
  kill "$p" 2>/dev/null
  wait_gone "$p"
  rm -f "$dir/libvirtd.pid"
fi
exit 0

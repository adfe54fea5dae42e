#!/usr/bin/env bash
# scripts/rgw/stop.sh [--keep] DIR - stop the daemons scripts/rgw/start.sh recorded in DIR/pids,
# one at a time in the order radosgw, OSD, monitor (a radosgw whose OSD is gone may ignore
# SIGTERM; an OSD whose monitor is gone waits for it), then remove DIR unless --keep.
# Only the recorded PIDs are signalled, and only while they still run the program recorded.
set -uo pipefail
keep=0
[ "${1:-}" = --keep ] && { keep=1; shift; }
D=${1:?usage: $0 [--keep] DIR}
[ -d "$D" ] || exit 0

declare -A program=([rgw.a]=radosgw [osd.0]=ceph-osd [mon.a]=ceph-mon) pid=()
if [ -s "$D/pids" ]; then
	while read -r name p; do pid[$name]=$p; done <"$D/pids"
fi
# alive PID: exists and is no zombie (the daemons are reparented; kill -0 succeeds on a zombie).
alive() {
	local state
	state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$state" ] && [ "$state" != Z ]
}
for name in rgw.a osd.0 mon.a; do
	p=${pid[$name]:-}
	[ -n "$p" ] || continue
	exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
	[ "${exe##*/}" = "${program[$name]}" ] || continue # gone, and the PID reused
	kill -TERM "$p" 2>/dev/null || continue
	for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
	if alive "$p"; then
		echo "rgw: $name (pid $p) still runs 10 s after SIGTERM; sending SIGKILL" >&2
		kill -KILL "$p" 2>/dev/null
		while alive "$p"; do sleep 0.1; done
	fi
done
[ "$keep" = 1 ] || rm -rf "$D"

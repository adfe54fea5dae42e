#!/usr/bin/env bash
# scripts/rgw/start.sh DIR - start a throwaway single-node Ceph (one mon, one OSD, radosgw) that
# listens on 127.0.0.1 only, without systemd, with everything (config, keys, data, logs, PIDs)
# under DIR, which must not exist yet. Stop it with scripts/rgw/stop.sh DIR.
#
# On success DIR/s3.env holds the endpoint and an S3 user's keys (shell syntax):
#   S3_ENDPOINT=http://127.0.0.1:PORT  AWS_ACCESS_KEY_ID=...  AWS_SECRET_ACCESS_KEY=...
# Tests and benchmarks source it. Needs Debian's radosgw ceph-mon ceph-osd ceph-common.
#
# Environment:
#   RGW_OBJECTSTORE  memstore (default: data in RAM, ~3 s to start) | bluestore (sparse file)
#   RGW_SIZE_GB      OSD capacity (default 4). RGW frees deleted objects only after its garbage
#                    collection (hours), so size it for everything one run writes.
#   RGW_TIMEOUT      seconds to wait for each daemon (default 90)
set -euo pipefail

D=${1:?usage: $0 DIR}
STORE=${RGW_OBJECTSTORE:-memstore}
SIZE=$(( ${RGW_SIZE_GB:-4} * 1024 * 1024 * 1024 ))
TIMEOUT=${RGW_TIMEOUT:-90}
PY=/usr/bin/python3   # the ceph CLI is Python; Debian's interpreter is always there with it

for b in ceph ceph-mon ceph-osd ceph-authtool monmaptool radosgw radosgw-admin uuidgen "$PY"; do
	command -v "$b" >/dev/null || {
		echo "rgw: $b is missing: apt-get install radosgw ceph-mon ceph-osd ceph-common" >&2
		exit 1
	}
done
[ -e "$D" ] && { echo "rgw: $D exists; stop that cluster first (scripts/rgw/stop.sh $D) or pick another folder" >&2; exit 1; }
mkdir -p "$D"/{run,log,mon,osd/ceph-0,rgw}
D=$(cd "$D" && pwd)
: >"$D/pids"
started=$(date +%s%N)

fail() {
	echo "rgw: $*" >&2
	for f in "$D"/log/*; do
		[ -s "$f" ] && { echo "--- last lines of $f" >&2; tail -n 20 "$f" >&2; }
	done
	"$(dirname "$0")/stop.sh" --keep "$D" >&2 || true
	exit 1
}
trap 'fail "command failed at line $LINENO"' ERR

# Two distinct free ports, held open together while picked so they differ.
read -r MON_PORT RGW_PORT < <("$PY" -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

FSID=$(uuidgen)
CONF=$D/ceph.conf
if [ "$STORE" = memstore ]; then
	OSD_STORE="osd objectstore = memstore
memstore device bytes = $SIZE"
elif [ "$STORE" = bluestore ]; then
	# The block file must not be a path inside the OSD folder (mkfs then fails with "Too many
	# levels of symbolic links"): let bluestore create its own.
	OSD_STORE="osd objectstore = bluestore
bluestore block create = true
bluestore block size = $SIZE
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mkfs = false"
else
	fail "RGW_OBJECTSTORE must be memstore or bluestore, not $STORE"
fi

cat >"$CONF" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $D/run
crash dir = $D/run
log file = $D/log/\$name.log
log to stderr = false
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
keyring = $D/keyring
# One OSD: no replicas, and few placement groups so it accepts the ~7 pools RGW creates.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
# Each pool RGW creates is one map proposal; the default pacing makes the first start ~17 s.
paxos propose interval = 0.1
paxos min wait = 0.01

[mon]
mon data = $D/mon/\$cluster-\$id

[osd]
osd data = $D/osd/\$cluster-\$id
osd memory target = 1073741824
$OSD_STORE

[client.rgw.a]
rgw data = $D/rgw
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw thread pool size = 64
rgw enable usage log = false
CONF
export CEPH_CONF=$CONF
CEPH=(ceph --connect-timeout 10)

# Keys: the mon's mkfs keyring seeds the auth database with the admin and rgw clients.
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$D/keyring" --gen-key -n client.admin \
	--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$D/keyring" --gen-key -n client.rgw.a \
	--cap mon 'allow rw' --cap osd 'allow rwx' >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" >"$D/log/mkfs-mon.out" 2>&1

# daemon NAME CMD...: runs a daemon in the foreground mode in the background, PID recorded.
daemon() {
	local name=$1
	shift
	nohup "$@" -f >"$D/log/$name.out" 2>&1 </dev/null &
	echo "$name $!" >>"$D/pids"
}
# await WHAT CMD...: polls CMD until it succeeds, failing early when a recorded daemon died.
await() {
	local what=$1 deadline=$(( $(date +%s) + TIMEOUT ))
	shift
	until "$@" >/dev/null 2>&1; do
		while read -r name pid; do
			kill -0 "$pid" 2>/dev/null || fail "$name (pid $pid) exited while waiting for $what"
		done <"$D/pids"
		[ "$(date +%s)" -lt "$deadline" ] || fail "no $what after ${TIMEOUT}s"
		sleep 0.2
	done
}

daemon mon.a ceph-mon -i a
await "monitor quorum" "${CEPH[@]}" mon stat

OSD_UUID=$(uuidgen)
OSD_KEY=$(ceph-authtool --gen-print-key)
printf '{"cephx_secret": "%s"}\n' "$OSD_KEY" >"$D/osd/new.json"
OSD_ID=$("${CEPH[@]}" osd new "$OSD_UUID" -i "$D/osd/new.json")
[ "$OSD_ID" = 0 ] || fail "the new OSD got id $OSD_ID, want 0"
ceph-authtool --create-keyring "$D/osd/ceph-0/keyring" -n osd.0 --add-key "$OSD_KEY" >/dev/null
ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" --keyring "$D/osd/ceph-0/keyring" >"$D/log/mkfs-osd.out" 2>&1
daemon osd.0 ceph-osd -i 0 --keyring "$D/osd/ceph-0/keyring"
osd_up() { "${CEPH[@]}" osd stat | grep -q '1 up'; }
await "OSD up" osd_up

daemon rgw.a radosgw -n client.rgw.a
http_up() { "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "http://127.0.0.1:$RGW_PORT/"; }
await "radosgw answering on 127.0.0.1:$RGW_PORT" http_up

KEYS=$("$PY" -c '
import secrets, string
a = string.ascii_uppercase + string.digits
print("".join(secrets.choice(a) for _ in range(20)), "".join(secrets.choice(a + string.ascii_lowercase) for _ in range(40)))')
read -r AK SK <<<"$KEYS"
radosgw-admin user create --uid=snapferry --display-name=snapferry \
	--access-key="$AK" --secret-key="$SK" >"$D/log/user-create.out" 2>&1

cat >"$D/s3.env.tmp" <<ENV
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_HOSTPORT=127.0.0.1:$RGW_PORT
AWS_ACCESS_KEY_ID=$AK
AWS_SECRET_ACCESS_KEY=$SK
AWS_REGION=us-east-1
RGW_DIR=$D
ENV
mv "$D/s3.env.tmp" "$D/s3.env"
trap - ERR
echo "rgw: S3 on http://127.0.0.1:$RGW_PORT after $(( ($(date +%s%N) - started) / 1000000 )) ms ($STORE); keys in $D/s3.env" >&2

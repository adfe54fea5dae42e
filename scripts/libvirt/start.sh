#!/usr/bin/env bash
# start.sh: a private libvirtd (QEMU driver, TCG) for tests, demos and benchmarks, without systemd.
#
#   scripts/libvirt/start.sh DIR [OWNER_PID]   # prints shell assignments; also written to DIR/env
#   scripts/libvirt/stop.sh DIR
#
# With OWNER_PID, a watcher runs stop.sh DIR as soon as that process is gone: a test binary that
# dies without its cleanup (go test's -timeout panic, a SIGKILL) leaves no libvirtd or QEMU behind.
#
# libvirtd runs as root in its own mount namespace, where DIR/etc, DIR/run, DIR/lib, DIR/cache
# and DIR/log are bound over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt
# and /var/log/libvirt: its configuration, sockets, domain definitions and logs all live in DIR,
# nothing of the host's libvirt (if any) is read or changed, and a second DIR is a second,
# independent daemon. QEMU runs as root with no security driver and no cgroups (this is a test
# harness, not a production setup) and writes its console log to a file (no virtlogd needed).
# The socket is DIR/run/libvirt-sock: connect with
#   virsh -c "qemu:///system?socket=DIR/run/libvirt-sock"   (also $LIBVIRT_URI in DIR/env)
# stop.sh kills the libvirtd recorded in DIR/libvirtd.pid and the QEMU processes it started
# (recorded per domain in DIR/run/qemu/*.pid), nothing else.
set -euo pipefail

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 DIR [OWNER_PID]" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd)
owner=${2:-}
case $owner in *[!0-9]*) echo "libvirt harness: OWNER_PID must be a number" >&2; exit 2 ;; esac

for bin in libvirtd qemu-system-x86_64 unshare; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || {
    echo "libvirt harness: $bin not found; apt-get install libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils libvirt-clients" >&2
    exit 1
  }
done
libvirtd_bin=$(command -v libvirtd || echo /usr/sbin/libvirtd)

if [ -f "$dir/libvirtd.pid" ] && kill -0 "$(cat "$dir/libvirtd.pid")" 2>/dev/null; then
  echo "libvirt harness: already running (pid $(cat "$dir/libvirtd.pid")); stop it first" >&2
  exit 1
fi

# libvirt's QEMU driver looks up its compiled-in default user and group (Debian: libvirt-qemu)
# before it reads qemu.conf and fails without them; Debian's libvirt-daemon-system package would
# create them. Create them (system account, no login, no home) when missing; qemu.conf below then
# runs QEMU as root.
# Two harnesses may start at once (go test runs packages in parallel): one creates, under a lock.
(
  flock 9
  if ! getent group libvirt-qemu >/dev/null; then groupadd --system libvirt-qemu; fi
  if ! getent passwd libvirt-qemu >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin -g libvirt-qemu libvirt-qemu
  fi
) 9>/tmp/snapferry-libvirt-user.lock

mkdir -p "$dir/etc" "$dir/run" "$dir/lib" "$dir/cache" "$dir/log"
# The bind targets must exist on the host; empty folders are all that is left there.
mkdir -p /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt

cat > "$dir/etc/libvirtd.conf" <<CFG
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CFG
cat > "$dir/etc/qemu.conf" <<CFG
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
remember_owner = 0
CFG

# unshare execs the shell, which execs libvirtd: the PID recorded is libvirtd's.
setsid unshare -m --propagation private -- sh -c '
  d=$1; bin=$2
  mount --bind "$d/etc" /etc/libvirt
  mount --bind "$d/run" /run/libvirt
  mount --bind "$d/lib" /var/lib/libvirt
  mount --bind "$d/cache" /var/cache/libvirt
  mount --bind "$d/log" /var/log/libvirt
  exec "$bin" --pid-file "$d/libvirtd.pid.daemon"
' sh "$dir" "$libvirtd_bin" >"$dir/libvirtd.out" 2>&1 </dev/null &
pid=$!
echo "$pid" > "$dir/libvirtd.pid"

sock="$dir/run/libvirt-sock"
for _ in $(seq 300); do
  [ -S "$sock" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if ! [ -S "$sock" ]; then
  echo "libvirt harness: libvirtd did not come up; its output:" >&2
  cat "$dir/libvirtd.out" "$dir/log/libvirtd.log" >&2 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  rm -f "$dir/libvirtd.pid"
  exit 1
fi
uri="qemu:///system?socket=$sock"
if [ -n "$owner" ]; then
  # The watcher ends by itself once libvirtd is gone (a normal stop.sh), so nothing else has to
  # stop it; it never signals anything but through stop.sh, which acts on DIR's PIDs only.
  stop=$(cd "$(dirname "$0")" && pwd)/stop.sh
  setsid sh -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
    kill -0 "$2" 2>/dev/null && exec bash "$3" "$4"' sh "$owner" "$pid" "$stop" "$dir" >/dev/null 2>&1 </dev/null &
fi
cat > "$dir/env" <<ENV
LIBVIRT_URI='$uri'
LIBVIRT_SOCK='$sock'
LIBVIRTD_PID=$pid
ENV
cat "$dir/env"

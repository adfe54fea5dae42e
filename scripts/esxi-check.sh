#!/usr/bin/env bash
# esxi-check.sh (make esxi-check): proves on Linux that the release build runs where a stock Go
# build dies on ESXi, then runs snapferry's main flows the way the ESXi shell would run them.
#
# Everything runs under scripts/esxi-profile.sh: the syscalls VMkernel lacks fail with ENOSYS and
# /proc is empty. Steps, each printing PASS/FAIL (or PENDING for a flow whose command is not built):
#   proof: stock      a stock build dies under the profile ("epollwait ... failed with 38") but
#                     succeeds without it: the profile, not the program, is what kills it
#   proof: overlay    the overlay build (scripts/overlay-epoll.sh) succeeds under the profile and
#                     calls epoll_wait, never epoll_pwait
#   flow: ...         main flows with the overlay build (list in FLOWS below)
# Exits 1 when any step failed. Needs strace and unshare (util-linux), sshd for the SSH flow:
# skips when strace is missing unless CI=true, then it fails.
# Env: ESXI_CHECK_FLOWS="a b" runs only those flows (names as printed); ESXI_CHECK_KEEP=1 keeps
# the work folder; ESXI_CHECK_BIN=DIR reuses binaries a previous run kept in DIR (its bin/ folder:
# snapferry-linux-amd64, snapferry-linux-amd64-stock, esxisim-linux-amd64) instead of building;
# GO selects the go command.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

if ! command -v strace >/dev/null || ! command -v unshare >/dev/null; then
  if [ "${CI:-}" = true ]; then echo "esxi-check: FAIL strace or unshare missing (CI=true); apt-get install strace util-linux"; exit 1; fi
  echo "esxi-check: SKIP strace or unshare missing (apt-get install strace util-linux)"; exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/esxi-check.XXXXXX")
sshd_dir=
neighbour=
cleanup() {
  [ -n "$sshd_dir" ] && "$here/sshd/loopback-sshd.sh" stop "$sshd_dir" >/dev/null 2>&1
  [ -n "$neighbour" ] && kill "$neighbour" 2>/dev/null
  if [ -n "${ESXI_CHECK_KEEP:-}" ]; then echo "esxi-check: work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

passed=0 failed=0 pending=0
pass() { passed=$((passed + 1)); printf 'PASS     %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL     %s\n' "$1"; [ -n "${2:-}" ] && sed 's/^/         | /' "$2" | tail -n 25; }
pend() { pending=$((pending + 1)); printf 'PENDING  %s (%s)\n' "$1" "$2"; }

# --- build -------------------------------------------------------------------------------------
bin=${ESXI_CHECK_BIN:-$work/bin}
if [ -n "${ESXI_CHECK_BIN:-}" ]; then
  echo "esxi-check: using the binaries in $bin (ESXI_CHECK_BIN)"
else
  echo "esxi-check: building stock and overlay binaries into $bin"
  if ! "$here/build.sh" -o "$bin" -v esxi-check linux-amd64 linux-amd64-stock >"$work/build.log" 2>&1; then
    fail "build snapferry (stock and overlay)" "$work/build.log"
    echo "$passed passed, $failed failed, $pending pending"; exit 1
  fi
  # esxisim stands in for vim-cmd & co. It runs as a child of snapferry under the profile too, so
  # it needs the overlay as much as snapferry does.
  if ! "$here/build.sh" -o "$bin" -p ./cmd/esxisim -v esxi-check linux-amd64 >>"$work/build.log" 2>&1; then
    fail "build esxisim (overlay)" "$work/build.log"
    echo "$passed passed, $failed failed, $pending pending"; exit 1
  fi
fi
stock=$bin/snapferry-linux-amd64-stock
sf=$bin/snapferry-linux-amd64
mkdir -p "$work/path"
for p in vim-cmd vmkfstools esxcli vmware; do ln -s "$bin/esxisim-linux-amd64" "$work/path/$p"; done
ln -s "$bin/esxisim-linux-amd64" "$work/path/esxisim"

# profiled LOG CMD...: run CMD under the ESXi profile, output to LOG. strace itself sometimes loses
# a tracee in a group-stop race ("strace: ptrace(PTRACE_LISTEN...)"); that is strace's failure, not
# the program's, so such a run is repeated once and the log says so.
profiled() {
  local log=$1; shift
  "$here/esxi-profile.sh" "$@" >"$log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && grep -q '^strace: ptrace(' "$log"; then
    echo "esxi-check: strace lost a tracee (see below); running once more" >>"$log.strace"
    cat "$log" >>"$log.strace"
    "$here/esxi-profile.sh" "$@" >"$log" 2>&1
    rc=$?
  fi
  return $rc
}

# A neighbour process as CI runners and admins' shells have them: a script passed as an argument,
# so its command line spans lines and runs past 100 KiB (one argument may hold 128 KiB). It loops,
# because bash would exec a single last command in its own place. `ps -c` prints it as it is, and
# every run's registry cleanup must read past it (a CI run once failed on exactly this).
big_arg=$(printf 'LARGE_TEXT=\x27#!/bin/bash\n  echo 1 2 x\n%s\x27\nwhile :; do sleep 1; done' "$(head -c 120000 /dev/zero | tr '\0' y)")
bash -c "$big_arg" neighbour &
neighbour=$!

# --- proof: stock dies, overlay lives ------------------------------------------------------------
# The proof command must wait on a timer: a Go program initialises the netpoller at its first
# timer, and its first wait there is the epoll_pwait VMkernel lacks. `backup` waits on its
# progress ticker and on I/O, so it hits the netpoller.
proof_file=$work/proof/data.bin
mkdir -p "$work/proof"
head -c $((8 << 20)) /dev/urandom >"$proof_file"
proof() { # proof BINARY TAG: a fresh repo and one backup of proof_file; output in $work/proof/TAG.*
  local b=$1 tag=$2
  rm -rf "$work/proof/$tag.repo"
  SNAPFERRY_HOME=$work/proof/$tag.home "$b" init "$work/proof/$tag.repo" >"$work/proof/$tag.init.log" 2>&1 || return 3
  SNAPFERRY_HOME=$work/proof/$tag.home profiled "$work/proof/$tag.log" "$b" backup "$proof_file" --to="$work/proof/$tag.repo"
}

SNAPFERRY_HOME=$work/proof/plain.home "$stock" init "$work/proof/plain.repo" >"$work/proof/plain.log" 2>&1 &&
  SNAPFERRY_HOME=$work/proof/plain.home "$stock" backup "$proof_file" --to="$work/proof/plain.repo" >>"$work/proof/plain.log" 2>&1
if [ $? -eq 0 ]; then pass "proof: stock build backs up without the profile"
else fail "proof: stock build backs up without the profile" "$work/proof/plain.log"; fi

proof "$stock" stock
rc=$?
if [ $rc -ne 0 ] && grep -q 'epollwait on fd [0-9]* failed with 38' "$work/proof/stock.log"; then
  pass "proof: stock build dies under the profile ($(grep -m1 'epollwait' "$work/proof/stock.log"))"
else
  fail "proof: stock build dies under the profile (exit $rc, expected 'epollwait on fd N failed with 38')" "$work/proof/stock.log"
fi

proof "$sf" overlay
rc=$?
if [ $rc -eq 0 ]; then pass "proof: overlay build backs up under the profile"
else fail "proof: overlay build backs up under the profile (exit $rc)" "$work/proof/overlay.log"; fi

# Which epoll call does the overlay build make? Traced without injection, so it runs to the end
# whichever it calls.
rm -rf "$work/proof/count.repo"
SNAPFERRY_HOME=$work/proof/count.home "$sf" init "$work/proof/count.repo" >/dev/null 2>&1
SNAPFERRY_HOME=$work/proof/count.home strace -f -qq -o "$work/proof/epoll.trace" -e trace=epoll_wait,epoll_pwait,epoll_pwait2 \
  "$sf" backup "$proof_file" --to="$work/proof/count.repo" >"$work/proof/count.log" 2>&1
n_wait=$(grep -c 'epoll_wait(' "$work/proof/epoll.trace")
n_pwait=$(grep -c 'epoll_pwait2\?(' "$work/proof/epoll.trace")
if [ "$n_wait" -gt 0 ] && [ "$n_pwait" -eq 0 ]; then
  pass "proof: overlay build calls epoll_wait ($n_wait calls) and never epoll_pwait"
else
  fail "proof: overlay build calls epoll_wait ($n_wait) and never epoll_pwait ($n_pwait)" "$work/proof/epoll.trace"
fi

# --- flows ---------------------------------------------------------------------------------------
# Each flow_NAME runs with a fresh SNAPFERRY_HOME and a folder $fw, writes its output to $fw/log,
# and returns non-zero on failure. `sfp ARGS...` is the overlay snapferry under the profile.
sfp() { profiled "$fw/step.log" "$sf" "$@"; local rc=$?; cat "$fw/step.log" >>"$fw/log"; return $rc; }
expect() { # expect TEXT: the last step's output holds TEXT
  grep -qF -- "$1" "$fw/step.log" || { echo "esxi-check: expected output to contain: $1" >>"$fw/log"; return 1; }
}

flow_version() { sfp version && expect "linux/amd64)"; }

flow_file_backup() { # init, backup of a sparse file and a folder, restore, byte-for-byte compare
  truncate -s 1G "$fw/disk.img"
  head -c $((4 << 20)) /dev/urandom | dd of="$fw/disk.img" bs=1M seek=300 conv=notrunc status=none
  mkdir -p "$fw/folder"; seq 1 50000 >"$fw/folder/numbers.txt"
  sfp init "$fw/repo" || return 1
  local src name
  for src in "$fw/disk.img" "$fw/folder/numbers.txt"; do
    name=${src##*/}
    sfp backup "${src%/numbers.txt}" --to="$fw/repo" &&
      sfp restore latest --from="$fw/repo" --target="$fw/out-$name" || return 1
    restored_same "$fw/out-$name" "$src" || return 1
  done
}
flow_file_from_disk() { # ls and restore of a file inside a backed-up ext4 image (no mount, no loop)
  command -v mke2fs >/dev/null 2>&1 || PATH=$PATH:/usr/sbin
  mkdir -p "$fw/guest/etc/nginx"; echo "server { listen 80; }" >"$fw/guest/etc/nginx/site.conf"
  truncate -s 64M "$fw/guest.img"
  mke2fs -q -F -t ext4 -d "$fw/guest" "$fw/guest.img" >>"$fw/log" 2>&1 || return 1
  sfp init "$fw/repo" && sfp backup "$fw/guest.img" --to="$fw/repo" || return 1
  sfp ls "latest:$fw/guest.img" --repo="$fw/repo" && expect "ext4" || return 1
  sfp restore "latest:$fw/guest.img/p0/etc/nginx/site.conf" --from="$fw/repo" --target="$fw/out" || return 1
  cmp "$fw/out/site.conf" "$fw/guest/etc/nginx/site.conf" >>"$fw/log" 2>&1
}
restored_same() { # restored_same DIR ORIGINAL: DIR holds a file named like ORIGINAL with its bytes
  local got; got=$(find "$1" -name "${2##*/}" -type f | head -n 1)
  [ -n "$got" ] || { echo "esxi-check: no ${2##*/} restored under $1" >>"$fw/log"; return 1; }
  cmp "$got" "$2" >>"$fw/log" 2>&1
}

esxi_host() { # a simulated host in $fw/host with the demo VM (id in $vmid); vim-cmd & co. on PATH
  export SNAPFERRY_VMFS_ROOT=$fw/host PATH=$work/path:$PATH
  "$bin/esxisim-linux-amd64" demo "$fw/host" >"$fw/demo.txt" 2>&1
  local rc=$?
  cat "$fw/demo.txt" >>"$fw/log"
  vmid=$(sed -n 's/.*: VM \([0-9][0-9]*\) .*/\1/p' "$fw/demo.txt")
  [ $rc -eq 0 ] && [ -n "$vmid" ]
}

flow_vms() { esxi_host && sfp vms && expect "web [demo] 01"; }

flow_hot_backup() { # hot backup of the running demo VM to a local repo; no snapshot left behind
  esxi_host && sfp init "$fw/repo" && sfp backup --vm=all --mode=hot --to="$fw/repo" && sfp snapshots --repo="$fw/repo" &&
    expect "web [demo] 01" || return 1
  "$work/path/vim-cmd" vmsvc/snapshot.get "$vmid" >"$fw/snap.txt" 2>&1 || { cat "$fw/snap.txt" >>"$fw/log"; return 1; }
  if grep -q snapferry "$fw/snap.txt"; then echo "esxi-check: snapshot left on the VM:" >>"$fw/log"; cat "$fw/snap.txt" >>"$fw/log"; return 1; fi
}

flow_ssh_backup() { # backup over SSH to the loopback sshd, served by `snapferry serve` there
  sshd_dir=$fw/sshd
  "$here/sshd/loopback-sshd.sh" start "$sshd_dir" >>"$fw/log" 2>&1 || return 1
  # shellcheck disable=SC1091
  . "$sshd_dir/env"
  mkdir -p "$fw/remote-repo" # serve --root wants an existing folder, as on a store host
  local url="ssh://$SSH_USER@127.0.0.1:$SSH_PORT$fw/remote-repo"
  local ssh=(--identity="$SSH_KEY" --known-hosts="$SSH_KNOWN_HOSTS" --remote-path="$sf")
  head -c $((16 << 20)) /dev/urandom >"$fw/data.bin"
  sfp init "$url" "${ssh[@]}" && sfp backup "$fw/data.bin" --to="$url" "${ssh[@]}" &&
    sfp snapshots --repo="$url" "${ssh[@]}" && expect "data.bin"
  local rc=$?
  "$here/sshd/loopback-sshd.sh" stop "$sshd_dir" >>"$fw/log" 2>&1; sshd_dir=
  return $rc
}

flow_child_run() { # `cron run` starts the job as a child process (os/exec, pidfd and clone3 fall back)
  seq 1 10000 >"$fw/data.txt"
  sfp init "$fw/repo" && sfp cron add nightly "0 2 * * *" -- backup "$fw/data.txt" --to="$fw/repo" &&
    sfp cron run nightly && sfp snapshots --repo="$fw/repo" && expect "data.txt"
}

flow_cron_install() { # crontab lines into a given table (no crond restart for a custom file)
  sfp cron add nightly "0 2 * * *" -- backup /etc/hostname --to="$fw/repo" &&
    sfp cron install --crontab="$fw/crontab" || return 1
  grep -q "cron run nightly" "$fw/crontab" || { echo "esxi-check: crontab lacks the job:" >>"$fw/log"; cat "$fw/crontab" >>"$fw/log" 2>&1; return 1; }
}

flow_status() { # health of a host whose VM has no leftover snapshot, after its first backup
  # (a host where nothing was ever backed up needs a human: status exits 1 there, by design)
  seq 1 1000 >"$fw/status.txt"
  esxi_host && sfp init "$fw/repo" && sfp backup "$fw/status.txt" --to="$fw/repo" &&
    sfp status && expect "all healthy"
}

flow_pid_list() { sfp pid list && expect "COMMAND"; } # the registry through ps -c, no /proc

# FLOWS run in this order. A flow whose command is not in the CLI yet goes into PENDING with the
# reason instead; it is then listed as PENDING, not run. (All flows pass as of this writing.)
FLOWS="version file_backup file_from_disk vms hot_backup ssh_backup child_run cron_install status pid_list"
declare -A PENDING=()
if [ -n "${ESXI_CHECK_FLOWS:-}" ]; then FLOWS=$ESXI_CHECK_FLOWS PENDING=(); fi

for f in $FLOWS; do
  if [ -n "${PENDING[$f]:-}" ]; then pend "flow: $f" "${PENDING[$f]}"; continue; fi
  if ! declare -F "flow_$f" >/dev/null; then fail "flow: $f (no such flow)"; continue; fi
  fw=$work/flow-$f
  mkdir -p "$fw"
  if (export SNAPFERRY_HOME=$fw/home; "flow_$f"); then pass "flow: $f"; else fail "flow: $f" "$fw/log"; fi
done

echo "$passed passed, $failed failed, $pending pending"
[ "$failed" -eq 0 ]

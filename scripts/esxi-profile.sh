#!/usr/bin/env bash
# esxi-profile.sh CMD [ARG...]: run CMD the way the ESXi shell would let it run, as far as Linux
# can imitate it:
#   - the syscalls VMkernel is known or suspected to lack fail with ENOSYS (strace fault injection),
#   - /proc is an empty folder (ESXi has no /proc/PID).
#   - `ps` on PATH answers like ESXi's `ps -c` (WID CID WorldName CommandLine): ESXi's ps lists
#     processes without /proc, so the profile's ps reads a private copy of /proc mounted where
#     only it looks (set ESXI_PROFILE_PS=0 to leave PATH alone).
# The exit status is CMD's. Everything else about the host (files, network) stays as is.
#
# strace only tampers with syscalls it traces, so the set is named in both -e trace= and
# -e inject=; -f follows threads and children (a child of CMD is on "ESXi" too).
# Needs strace and unshare; as root it uses a plain mount namespace (`unshare -m`), otherwise a user
# namespace (`unshare -r -m`, which makes CMD see itself as uid 0).
# Env: ESXI_PROFILE_LOG=FILE writes the strace trace there instead of /dev/null (debugging).
#      ESXI_PROFILE_SYSCALLS overrides the comma-separated syscall set.
set -euo pipefail

# Sources: host-facts.md (epoll_pwait is missing on ESXi 7.0; the rest are newer than the kernel
# interface VMkernel imitates and are treated as possibly missing).
default_set=epoll_pwait,epoll_pwait2,pidfd_open,pidfd_send_signal,clone3,close_range,getrandom,copy_file_range,splice,io_uring_setup,statx
set_=${ESXI_PROFILE_SYSCALLS:-$default_set}
log=${ESXI_PROFILE_LOG:-/dev/null}

die() { echo "esxi-profile: $*" >&2; exit 125; }
[ $# -ge 1 ] || die "usage: $0 CMD [ARG...]"
command -v strace >/dev/null || die "strace not found; install it (apt-get install strace)"
command -v unshare >/dev/null || die "unshare not found; install util-linux"

# An absolute log path: the inner shell runs in the same cwd, but keep it unambiguous.
case $log in /*) ;; *) log=$PWD/$log ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/esxi-profile.XXXXXX")
trap 'rm -rf "$tmp" 2>/dev/null || true' EXIT
mkdir "$tmp/empty" "$tmp/hostproc" "$tmp/bin"

# ESXi's `ps -c`, fed from the private /proc copy. Columns and widths as in
# shared/esxi-reference/ps.txt; the world name is the process name, as ESXi shows it.
cat >"$tmp/bin/ps" <<'PS'
#!/bin/sh
proc=${ESXI_PROFILE_PROC:?esxi-profile ps: ESXI_PROFILE_PROC not set}
printf '%-8s %-8s %-45s %s\n' WID CID WorldName CommandLine
for d in "$proc"/[0-9]*; do
  pid=${d##*/}
  name=$(cat "$d/comm" 2>/dev/null) || continue
  args=$(tr '\000' ' ' <"$d/cmdline" 2>/dev/null)
  printf '%-8s %-8s %-45s %s\n' "$pid" "$pid" "$name" "${args% }"
done
PS
chmod 755 "$tmp/bin/ps"
path=$PATH
[ "${ESXI_PROFILE_PS:-1}" = 0 ] || path=$tmp/bin:$PATH

ns=(unshare -m)
[ "$(id -u)" -eq 0 ] || ns=(unshare -r -m)

# The inner shell, inside the new mount namespace only (unshare makes propagation private, so the
# host's /proc is untouched), keeps a copy of /proc for ps, mounts the empty folder over /proc,
# then runs strace, which runs CMD.
set +e
ESXI_PROFILE_PROC=$tmp/hostproc "${ns[@]}" -- /bin/sh -c '
  tmp=$1 set_=$2 log=$3 path=$4; shift 4
  mount --bind /proc "$tmp/hostproc" && mount --bind "$tmp/empty" /proc ||
    { echo "esxi-profile: cannot bind-mount $tmp/empty over /proc" >&2; exit 125; }
  PATH=$path exec strace -f -o "$log" -e trace="$set_" -e inject="$set_":error=ENOSYS -- "$@"
' esxi-profile "$tmp" "$set_" "$log" "$path" "$@"
rc=$?
set -e
exit $rc

#!/usr/bin/env bash
# guest-initramfs.sh: a tiny Linux guest whose only job is to answer as a QEMU guest agent, for
# the quiesce tests (appliance/libvirt, cmd/snapferry). No guest OS image: Debian's cloud kernel
# plus an initramfs holding busybox, qemu-ga with its shared libraries, the virtio modules and an
# /init that mounts /dev/vda (an ext4 the test made, so fsfreeze has a real file system to
# freeze) and runs qemu-ga on the virtio-serial port org.qemu.guest_agent.0.
#
#   scripts/libvirt/guest-initramfs.sh OUTDIR [KERNEL_ROOT]
#
# KERNEL_ROOT (default /, or $GUEST_KERNEL_ROOT) holds boot/vmlinuz-*-cloud-amd64 and
# lib/modules/VERSION: the installed linux-image-cloud-amd64, or that package unpacked by
# scripts/libvirt/guest-kernel.sh (no depmod run: this script resolves module dependencies from
# the modules themselves). qemu-ga is taken from PATH or /usr/sbin (package qemu-guest-agent), its libraries
# from this host (ldd). Writes OUTDIR/vmlinuz and OUTDIR/initrd.gz and prints
#   KERNEL=OUTDIR/vmlinuz
#   INITRD=OUTDIR/initrd.gz
# Boot with <kernel>, <initrd>, <cmdline>console=ttyS0 quiet panic=-1</cmdline>, a serial
# console (type='file': the guest's log) and <channel type='unix'><target type='virtio'
# name='org.qemu.guest_agent.0'/></channel>.
#
# What the guest prints on its console, one line each, prefixed "snapferry-guest:": the disk
# mounted, the agent port, "agent started", and "fsfreeze-hook freeze" / "fsfreeze-hook thaw"
# each time qemu-ga runs its fsfreeze hook (before it freezes, after it thaws): the tests count
# these lines. When /run/snapferry-slow-freeze exists in the guest (the tests write it through
# the agent's guest-file-* commands), the next freeze hook first waits as many seconds as it
# says (once: it removes the file), so a test can stop the host side while a freeze is under way.
set -euo pipefail

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 OUTDIR [KERNEL_ROOT]" >&2; exit 2; }
out=$(mkdir -p "$1" && cd "$1" && pwd)
root=${2:-${GUEST_KERNEL_ROOT:-/}}
root=${root%/} # "/" -> "": paths below read "$root/boot"

kernel=$(ls -1 "$root"/boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$kernel" ] || {
  echo "guest-initramfs: no $root/boot/vmlinuz-*-cloud-amd64; unpack Debian's cloud kernel with scripts/libvirt/guest-kernel.sh DIR and set GUEST_KERNEL_ROOT=DIR (or install linux-image-cloud-amd64)" >&2
  exit 1
}
kver=${kernel##*/vmlinuz-}
moddir=""
for d in "$root/lib/modules/$kver" "$root/usr/lib/modules/$kver"; do
  [ -d "$d" ] && { moddir=$d; break; }
done
[ -n "$moddir" ] || { echo "guest-initramfs: no modules folder for kernel $kver under $root" >&2; exit 1; }
qga=$(command -v qemu-ga || true)
[ -n "$qga" ] || { [ -x /usr/sbin/qemu-ga ] && qga=/usr/sbin/qemu-ga; }
[ -n "$qga" ] || { echo "guest-initramfs: qemu-ga not found; apt-get install --no-install-recommends qemu-guest-agent" >&2; exit 1; }
bb=$(command -v busybox || true)
[ -n "$bb" ] || { echo "guest-initramfs: busybox not found; apt-get install busybox" >&2; exit 1; }
for tool in gzip ldd; do
  command -v "$tool" >/dev/null || { echo "guest-initramfs: $tool not found" >&2; exit 1; }
done

stage=$(mktemp -d "$out/stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,mnt,etc/qemu-ga}

# A program and every library ldd names (the loader included), at the same paths.
copy_prog() {
  local src=$1 dst=$2
  install -D -m 0755 "$src" "$stage$dst"
  ldd "$src" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$lib" ] && [ ! -e "$stage$lib" ] && install -D -m 0755 "$(readlink -f "$lib")" "$stage$lib"
    true
  done
}
copy_prog "$bb" /bin/busybox
copy_prog "$qga" /usr/sbin/qemu-ga

# The virtio modules the guest needs, with what they depend on (read from each module's
# .modinfo: an unpacked package has no modules.dep). Which ones are built in differs between
# kernel builds: modules.builtin lists those, and they need nothing.
declare -A seen=()
find_mod() { # module name -> path under moddir ("" when built in or absent)
  local n=${1//-/_}
  find "$moddir/kernel" -name "$n.ko*" -o -name "${1//_/-}.ko*" 2>/dev/null | head -n 1
}
add_mod() {
  local name=$1 path deps
  [ -n "${seen[$name]:-}" ] && return 0
  seen[$name]=1
  path=$(find_mod "$name")
  if [ -z "$path" ]; then
    grep -qE "/${name//_/[_-]}\.ko$" "$moddir/modules.builtin" 2>/dev/null && return 0
    echo "guest-initramfs: module $name is neither built into $kver nor in $moddir" >&2
    exit 1
  fi
  case $path in
    *.ko) ;;
    *) echo "guest-initramfs: $path is compressed; this script takes uncompressed modules" >&2; exit 1 ;;
  esac
  # .modinfo holds NUL-separated key=value strings; "depends=" names the modules it needs.
  deps=$(tr '\0' '\n' < "$path" | grep -a -m 1 '^depends=' | cut -d= -f2 | tr ',' ' ' || true)
  for d in $deps; do add_mod "$d"; done
  install -D -m 0644 "$path" "$stage/lib/modules/$kver/${path#"$moddir"/}"
}
for m in virtio_pci virtio_blk virtio_console; do add_mod "$m"; done
cp "$moddir/modules.builtin" "$stage/lib/modules/$kver/" 2>/dev/null || true
"$bb" depmod -b "$stage" "$kver"

cat > "$stage/etc/qemu-ga/fsfreeze-hook" <<'HOOK'
#!/bin/sh
# qemu-ga runs this with "freeze" before it freezes the file systems and "thaw" after it thaws them.
if [ "$1" = freeze ] && [ -f /run/snapferry-slow-freeze ]; then
  echo "snapferry-guest: fsfreeze-hook freeze waits $(cat /run/snapferry-slow-freeze) s" > /dev/ttyS0
  sleep "$(cat /run/snapferry-slow-freeze)"
  rm -f /run/snapferry-slow-freeze
fi
echo "snapferry-guest: fsfreeze-hook $1" > /dev/ttyS0
HOOK
chmod 0755 "$stage/etc/qemu-ga/fsfreeze-hook"

cat > "$stage/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/sbin:/usr/sbin:/bin:/usr/bin LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "snapferry-guest: $*" > /dev/ttyS0; }
modprobe -a virtio_pci virtio_blk virtio_console || say "modprobe failed"
# Without udev there is no /dev/virtio-ports/NAME link: find the port by its name in sysfs.
port=""
i=0
while [ -z "$port" ] && [ $i -lt 600 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && [ -e "/dev/${p##*/}" ] && port=/dev/${p##*/}
  done
  [ -n "$port" ] || { sleep 0.1; i=$((i + 1)); }
done
[ -n "$port" ] || { say "no virtio-serial port org.qemu.guest_agent.0"; poweroff -f; }
if [ -b /dev/vda ] && mount -t ext4 /dev/vda /mnt 2>/dev/null; then say "mounted /dev/vda on /mnt"; fi
say "agent on $port"
mkdir -p /run/qemu-ga
say "agent started"
qemu-ga -m virtio-serial -p "$port" -t /run/qemu-ga -f /run/qemu-ga.pid \
  --fsfreeze-hook=/etc/qemu-ga/fsfreeze-hook -l /dev/ttyS0
say "qemu-ga exited with $?"
poweroff -f
INIT
chmod 0755 "$stage/init"

install -m 0644 "$kernel" "$out/vmlinuz"
(cd "$stage" && find . -print0 | "$bb" cpio -0 -o -H newc -R 0:0 2>/dev/null) | gzip -1 > "$out/initrd.gz.tmp"
mv "$out/initrd.gz.tmp" "$out/initrd.gz"
echo "KERNEL=$out/vmlinuz"
echo "INITRD=$out/initrd.gz"

#!/usr/bin/env bash
# guest-kernel.sh DIR: unpacks Debian's cloud kernel (the package linux-image-cloud-amd64 depends
# on) into DIR for scripts/libvirt/guest-initramfs.sh, without installing it:
#
#   scripts/libvirt/guest-kernel.sh /var/tmp/guest-kernel
#   export GUEST_KERNEL_ROOT=/var/tmp/guest-kernel     # then the quiesce tests find it
#
# Why not apt-get install: on Debian 12 the kernel package pulls initramfs-tools, which pulls
# udev, which upgrades systemd and libudev on the machine, and its hooks run depmod,
# update-initramfs and the boot loader's update on a machine that will never boot that kernel.
# apt-get download + dpkg-deb -x fetch one 27 MB package and unpack it (about 105 MB) in a few
# seconds, need no dpkg lock and change nothing else. Needs an `apt-get update`d package list.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(mkdir -p "$1" && cd "$1" && pwd)

if ls "$dir"/boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1; then
  echo "guest-kernel: $dir already holds $(cd "$dir/boot" && ls vmlinuz-*-cloud-amd64 | tail -n 1)"
  exit 0
fi
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
[ -n "$pkg" ] || { echo "guest-kernel: apt knows no linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
chown _apt "$dl" 2>/dev/null || true # apt downloads as its _apt user when that user can write there
(cd "$dl" && apt-get download -qq "$pkg")
dpkg-deb -x "$dl"/"$pkg"_*.deb "$dir"
echo "guest-kernel: unpacked $pkg into $dir"

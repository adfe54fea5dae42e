#!/usr/bin/env bash
# build.sh [-o DIR] [-p PKG] [-n NAME] [-v VERSION] [-m MAX_BYTES] [-V] TARGET...: build static release binaries.
#
# TARGET is one of
#   linux-amd64        with the epoll overlay (scripts/overlay-epoll.sh): runs on ESXi and Linux
#   linux-arm64        stock (arm64 has no epoll_wait; ESXi-Arm is not a target)
#   linux-amd64-stock  without the overlay: for scripts/esxi-check.sh, which proves the overlay matters
# Output: DIR/NAME-TARGET; NAME defaults to the last element of PKG (./cmd/snapferry -> snapferry).
# Every binary is CGO_ENABLED=0 (static), -trimpath, -ldflags "-s -w -X main.version=VERSION".
# Prints each binary's size and fails when one is larger than MAX_BYTES (default 22 MiB): the
# binary is copied to datastores and started from a shell with a small memory pool. (15 MiB until
# s3:// stores: net/http, crypto/tls and minio-go add 4.2 MiB, the binary measured 17.3 MiB; 20 MiB
# until `snapferry mount`: go-fuse and the mount took the binary from 19.8 to 20.5 MiB.)
# -V also packages the linux-amd64 binary as an ESXi VIB, DIR/NAME-VIBVERSION.vib (cmd/vibgen,
# docs/esxi.md): VERSION must then be `git describe --tags --always --dirty` output; the commit
# count and commit time come from git (SOURCE_DATE_EPOCH overrides the time), so two builds of
# one commit give the same bytes.
# Env GO selects the go command (default: go).
set -euo pipefail

out=dist pkg=./cmd/snapferry name= version=dev max=$((22 * 1024 * 1024)) vib=0
GO=${GO:-go}
usage() { echo "usage: $0 [-o DIR] [-p PKG] [-n NAME] [-v VERSION] [-m MAX_BYTES] [-V] linux-amd64|linux-arm64|linux-amd64-stock..." >&2; exit 2; }
while getopts "o:p:n:v:m:V" opt; do
  case $opt in
    o) out=$OPTARG ;; p) pkg=$OPTARG ;; n) name=$OPTARG ;; v) version=$OPTARG ;; m) max=$OPTARG ;; V) vib=1 ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
here=$(cd "$(dirname "$0")" && pwd)
[ -n "$name" ] || name=$(basename "$(cd "$pkg" 2>/dev/null && pwd || echo "$pkg")")
mkdir -p "$out"

overlay=
overlay_json() {
  # Generated once per run from the installed toolchain, kept beside the binaries so that
  # `make clean` removes it with them.
  [ -n "$overlay" ] || overlay=$(GO=$GO "$here/overlay-epoll.sh" "$out/.epoll-overlay")
  echo "$overlay"
}

fail=0
for target in "$@"; do
  extra=()
  case $target in
    linux-amd64) goarch=amd64; extra=(-overlay "$(overlay_json)") ;;
    linux-amd64-stock) goarch=amd64 ;;
    linux-arm64) goarch=arm64 ;;
    *) echo "build: unknown target $target" >&2; usage ;;
  esac
  bin=$out/$name-$target
  echo "build: $bin (GOARCH=$goarch${extra:+, epoll overlay})"
  CGO_ENABLED=0 GOOS=linux GOARCH=$goarch "$GO" build "${extra[@]}" -trimpath \
    -ldflags "-s -w -X main.version=$version" -o "$bin" "$pkg"
  size=$(stat -c %s "$bin")
  printf 'build: %-40s %10d bytes (%.1f MiB)\n' "$bin" "$size" "$(awk -v s="$size" 'BEGIN { print s / 1048576 }')"
  if [ "$size" -gt "$max" ]; then
    echo "build: FAIL $bin is $size bytes, over the limit of $max bytes; \"go version -m $bin\" lists the modules linked in: find the dependency that grew" >&2
    fail=1
  fi
done

# The VIB: ESXi 8 runs only binaries installed from one (execInstalledOnly).
if [ "$vib" = 1 ] && [ "$fail" = 0 ]; then
  bin=$out/$name-linux-amd64
  [ -f "$bin" ] || { echo "build: -V needs the linux-amd64 target" >&2; exit 2; }
  commits=$(git -C "$here" rev-list --count HEAD 2>/dev/null || echo 0)
  date=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)}
  vibgen=$(cd "$out" && pwd)/.vibgen
  (cd "$here/.." && "$GO" build -o "$vibgen" ./cmd/vibgen)
  vibversion=$("$vibgen" -describe "$version" -commits "$commits" -print-version)
  rm -f "$out/$name"-*.vib # one VIB in dist: install-esxi.sh picks it up beside the binary
  "$vibgen" -o "$out/$name-$vibversion.vib" -binary "$bin" -firewall "$here/firewall/snapferry-smtp.xml" \
    -describe "$version" -commits "$commits" -date "$date"
  printf 'build: %-40s %10d bytes\n' "$out/$name-$vibversion.vib" "$(stat -c %s "$out/$name-$vibversion.vib")"
fi
exit $fail

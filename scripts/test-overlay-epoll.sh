#!/usr/bin/env bash
# test-overlay-epoll.sh: checks scripts/overlay-epoll.sh against the installed Go toolchain:
#   - the generated overlay changes exactly one line of the runtime source, to epoll_wait (232)
#     with the same four arguments in the same order;
#   - a runtime whose EpollWait line differs (here: arguments swapped) makes it fail, naming the
#     file and the expected line, and write no overlay;
#   - building for arm64 with the overlay fails to compile instead of calling syscall 232 there.
# That the overlay build then runs under the ESXi profile is scripts/esxi-check.sh's job.
# Prints "N passed, M failed" last; exits 1 when anything failed. Env GO selects the go command.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
GO=${GO:-go}
T=$(mktemp -d "${TMPDIR:-/tmp}/test-overlay-epoll.XXXXXX")
trap 'rm -rf "$T"' EXIT

passed=0 failed=0
check() { # check NAME CMD...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

src=$("$GO" list -f '{{.Dir}}' internal/runtime/syscall/linux)/syscall_linux.go

echo "== overlay from the installed toolchain ($("$GO" version))"
json=$(GO=$GO "$here/overlay-epoll.sh" "$T/ok" 2>"$T/ok.err")
check "generates an overlay (stderr: $(cat "$T/ok.err"))" [ "$json" = "$T/ok/overlay.json" ]
diff "$src" "$T/ok/syscall_linux.go" >"$T/ok.diff"
check "exactly one line differs" [ "$(grep -c '^[<>]' "$T/ok.diff")" -eq 2 ]
check "the new line calls epoll_wait with epfd, ev, maxev, waitms" \
  grep -q '^> .*Syscall6(sysEpollWaitOverlay, uintptr(epfd), uintptr(ev), uintptr(maxev), uintptr(waitms), 0, 0)' "$T/ok.diff"
check "syscall number is 232 in an amd64-only file" grep -q '^const sysEpollWaitOverlay = 232$' "$T/ok/epoll_wait_overlay_amd64.go"
check "overlay.json maps the runtime file" grep -qF "\"$src\": \"$T/ok/syscall_linux.go\"" "$T/ok/overlay.json"
check "overlay.json is valid JSON" /usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/ok/overlay.json"

echo "== a runtime whose EpollWait changed"
mkdir -p "$T/fakepkg"
sed 's/uintptr(maxev), uintptr(waitms), 0, 0)/uintptr(waitms), uintptr(maxev), 0, 0)/' "$src" >"$T/fakepkg/syscall_linux.go"
cat >"$T/fakego" <<EOF
#!/bin/sh
[ "\$1" = list ] && { echo "$T/fakepkg"; exit 0; }
exec "$GO" "\$@"
EOF
chmod +x "$T/fakego"
GO=$T/fakego "$here/overlay-epoll.sh" "$T/bad" >"$T/bad.out" 2>"$T/bad.err"
rc=$?
check "fails (exit $rc)" [ $rc -ne 0 ]
check "names the file" grep -qF "$T/fakepkg/syscall_linux.go" "$T/bad.err"
check "shows the expected line" grep -qF 'Syscall6(SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(ev), uintptr(maxev), uintptr(waitms), 0, 0)' "$T/bad.err"
nothing_written() { [ ! -e "$T/bad/overlay.json" ] && [ ! -e "$T/bad/syscall_linux.go" ]; }
check "writes no overlay" nothing_written

echo "== the overlay is for amd64 only"
# Building the runtime package alone keeps this independent of the state of cmd/snapferry.
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 "$GO" build -overlay "$T/ok/overlay.json" runtime >"$T/amd.out" 2>&1
rc=$?
check "amd64 runtime builds with the overlay (exit $rc: $(head -c 300 "$T/amd.out"))" [ $rc -eq 0 ]
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 "$GO" build -overlay "$T/ok/overlay.json" runtime >"$T/arm.out" 2>&1
rc=$?
check "arm64 runtime with the overlay fails (exit $rc)" [ $rc -ne 0 ]
check "... at the missing syscall constant" grep -q 'undefined: sysEpollWaitOverlay' "$T/arm.out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

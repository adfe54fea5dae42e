#!/usr/bin/env bash
# test-vib.sh: builds the ESXi VIB twice with scripts/build.sh -V (as make build does) into two
# temp folders and checks it with tools that are not ours: `ar t` lists descriptor.xml,
# sig.pkcs7, payload1 in that order; sig.pkcs7 is empty; descriptor.xml parses (python3's XML
# parser) and its payload size, sha-256 (gzipped) and sha-256/sha-1 (gunzipped) match the member;
# acceptance level community, a VERSION-RELEASE version; the payload unpacks with tar to exactly
# opt/snapferry/{snapferry,snapferry-smtp.xml}, owned by root, the binary 0755 and byte-identical
# to the release binary built beside it; the two builds are byte-identical; and the ESXi
# simulator installs it with esxcli software vib install (and refuses a copy with a byte changed).
# Prints "N passed, M failed"; exits 1 when anything failed. Needs ar (binutils), tar, python3:
# skips when one is missing, fails when CI is set.
set -u
here=$(cd "$(dirname "$0")" && pwd)
GO=${GO:-go}
for tool in ar tar python3 gzip; do
  if ! command -v "$tool" >/dev/null; then
    if [ -n "${CI:-}" ]; then echo "test-vib: FAIL $tool not installed (CI is set)"; echo "0 passed, 1 failed"; exit 1; fi
    echo "test-vib: SKIP $tool not installed"; exit 0
  fi
done
T=$(mktemp -d "${TMPDIR:-/tmp}/test-vib.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

passed=0 failed=0
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

version=$(git -C "$here" describe --tags --always --dirty 2>/dev/null || echo dev)
for d in a b; do
  if ! GO=$GO "$here/build.sh" -o "$T/$d" -v "$version" -V linux-amd64 >"$T/build.$d.log" 2>&1; then
    cat "$T/build.$d.log"; echo "test-vib: FAIL build $d"; echo "$passed passed, $((failed + 1)) failed"; exit 1
  fi
done
vibs=("$T"/a/snapferry-*.vib)
check "exactly one VIB in the build folder (${vibs[*]##*/})" test "${#vibs[@]}" -eq 1 -a -f "${vibs[0]}"
vib=${vibs[0]}
check "file name carries a VERSION-RELEASE version" bash -c '[[ ${1##*/} =~ ^snapferry-[0-9]+(\.[0-9]+)*-[0-9]+(\.[0-9]+)*\.vib$ ]]' _ "$vib"
check "two builds give identical bytes" cmp -s "$vib" "$T/b/${vib##*/}"

members=$(ar t "$vib" | tr '\n' ' ')
check "ar t lists descriptor.xml sig.pkcs7 payload1 in order (got: $members)" [ "$members" = "descriptor.xml sig.pkcs7 payload1 " ]
mkdir -p "$T/x" && (cd "$T/x" && ar x "$vib")
check "sig.pkcs7 is empty" test -f "$T/x/sig.pkcs7" -a ! -s "$T/x/sig.pkcs7"

check "descriptor.xml parses; payload size and checksums match" python3 - "$T/x" <<'PY'
import hashlib, gzip, os, re, sys
import xml.etree.ElementTree as ET
d = sys.argv[1]
root = ET.parse(os.path.join(d, "descriptor.xml")).getroot()
ok = True
def fail(msg):
    global ok
    ok = False
    print("  " + msg)
if root.tag != "vib": fail("root element %s, want vib" % root.tag)
if root.findtext("name") != "snapferry": fail("name %r" % root.findtext("name"))
if root.findtext("acceptance-level") != "community": fail("acceptance-level %r" % root.findtext("acceptance-level"))
if not re.fullmatch(r"[0-9]+(\.[0-9]+)*-[0-9]+(\.[0-9]+)*", root.findtext("version") or ""): fail("version %r" % root.findtext("version"))
files = sorted(f.text for f in root.iter("file"))
if files != ["opt/snapferry/snapferry", "opt/snapferry/snapferry-smtp.xml"]: fail("file-list %r" % files)
payloads = root.findall("payloads/payload")
if len(payloads) != 1: fail("%d payloads" % len(payloads))
for p in payloads:
    raw = open(os.path.join(d, p.get("name")), "rb").read()
    plain = gzip.decompress(raw)
    if int(p.get("size")) != len(raw): fail("size %s, member %d" % (p.get("size"), len(raw)))
    if p.get("type") != "tgz": fail("type %r" % p.get("type"))
    want = {("sha-256", None): hashlib.sha256(raw).hexdigest(),
            ("sha-256", "gunzip"): hashlib.sha256(plain).hexdigest(),
            ("sha-1", "gunzip"): hashlib.sha1(plain).hexdigest()}
    got = {(c.get("checksum-type"), c.get("verify-process")): c.text for c in p.findall("checksum")}
    if got != want: fail("checksums %r, want %r" % (got, want))
sys.exit(0 if ok else 1)
PY

listing=$(tar -tvzf "$T/x/payload1" | awk '{print $1, $2, $6}' | tr '\n' ';')
want="drwxr-xr-x root/root opt/;drwxr-xr-x root/root opt/snapferry/;-rwxr-xr-x root/root opt/snapferry/snapferry;-rw-r--r-- root/root opt/snapferry/snapferry-smtp.xml;"
check "payload tree, modes and owners (got: $listing)" [ "$listing" = "$want" ]
mkdir -p "$T/p" && tar -xzf "$T/x/payload1" -C "$T/p"
check "the binary inside is the release binary" cmp -s "$T/p/opt/snapferry/snapferry" "$T/a/snapferry-linux-amd64"
check "the firewall rule inside is scripts/firewall/snapferry-smtp.xml" cmp -s "$T/p/opt/snapferry/snapferry-smtp.xml" "$here/firewall/snapferry-smtp.xml"
check "the binary inside reports the build's version" bash -c '"$1" version | grep -qF -- "$2"' _ "$T/p/opt/snapferry/snapferry" "$version"

# The simulator's esxcli installs it the way a host does: reads and verifies it (appliance/esxi/vib).
(cd "$here/.." && "$GO" build -o "$T/esxisim" ./cmd/esxisim) && ESXISIM_ROOT=$T/host "$T/esxisim" init "$T/host" >/dev/null
sim() { ESXISIM_ROOT=$T/host "$T/esxisim" esxcli "$@"; }
sim software acceptance set --level=CommunitySupported >/dev/null
id=snapferry_bootbank_snapferry_$(basename "$vib" .vib | sed 's/^snapferry-//')
out=$(sim software vib install -v "$vib" --no-sig-check 2>&1)
check "esxisim installs it (got: $out)" bash -c '[[ $1 == *"VIBs Installed: $2"* ]]' _ "$out" "$id"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-5000] ^= 0xff; open(sys.argv[2], "wb").write(b)' "$vib" "$T/damaged.vib"
out=$(sim software vib install -v "$T/damaged.vib" --no-sig-check 2>&1)
check "esxisim refuses a damaged copy (got: $(echo "$out" | head -2 | tr '\n' ' '))" bash -c '[[ $1 == *"VibFormatError"* ]]' _ "$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

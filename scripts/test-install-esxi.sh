#!/bin/sh
# test-install-esxi.sh: runs scripts/install-esxi.sh under Debian's busybox sh, with a PATH of
# busybox applets only (as on ESXi) plus a stub esxcli that logs its arguments, against a fake root
# (ROOT=...) with fake datastores and a stub snapferry binary. Asserts files, esxcli calls, exit
# codes and messages. Prints "N passed, M failed" last; exits 1 when anything failed.
# Needs busybox: skips when it is missing, fails when CI=true.
#
#   sh scripts/test-install-esxi.sh          (any POSIX sh; re-runs itself under busybox sh)

if [ -z "${_TIE_UNDER_BUSYBOX:-}" ]; then
  bb=$(command -v busybox 2>/dev/null)
  if [ -z "$bb" ]; then
    if [ "${CI:-}" = true ]; then echo "test-install-esxi: FAIL busybox not installed (CI=true)"; echo "0 passed, 1 failed"; exit 1; fi
    echo "test-install-esxi: SKIP busybox not installed (apt-get install busybox)"; exit 0
  fi
  _TIE_UNDER_BUSYBOX=$bb exec "$bb" sh "$0" "$@"
fi
bb=$_TIE_UNDER_BUSYBOX

scripts=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/test-install-esxi.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check NAME CONDITION-COMMAND...
  name=$1; shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}
contains() { case $1 in *"$2"*) return 0 ;; esac; return 1; }
no_file() { [ ! -e "$1" ]; }

# A PATH with nothing but busybox applets and the stubs: what the ESXi shell offers.
mkdir -p "$T/bb" "$T/stubs"
"$bb" --install -s "$T/bb" 2>/dev/null || {
  for a in $("$bb" --list); do ln -s "$bb" "$T/bb/$a"; done
}
cat >"$T/stubs/esxcli" <<'EOF'
#!/bin/sh
echo "$*" >>"$ESXCLI_LOG"
case "$*" in *"${ESXCLI_FAIL:-@never@}"*) echo "esxcli stub: failing on purpose: $*" >&2; exit 1 ;; esac
exit 0
EOF
chmod 755 "$T/stubs/esxcli"

# The stub binary stands in for snapferry; STUB_MODE picks how it behaves.
mkdir -p "$T/bundle/firewall"
cp "$scripts/install-esxi.sh" "$T/bundle/install-esxi.sh"
cat >"$T/bundle/snapferry" <<'EOF'
#!/bin/sh
echo "$*" >>"$STUB_LOG"
case ${STUB_MODE:-ok} in
  eperm) echo "-sh: $0: Operation not permitted" >&2; exit 126 ;;
  broken) echo "fatal error: runtime: netpoll failed" >&2; exit 2 ;;
esac
[ "$1" = version ] && echo "snapferry stub-1.0 (go1.26 linux/amd64)"
exit 0
EOF
chmod 755 "$T/bundle/snapferry"
rule_src=$scripts/firewall/snapferry-smtp.xml
if [ -f "$rule_src" ]; then
  cp "$rule_src" "$T/bundle/firewall/snapferry-smtp.xml"
else
  echo "note: $rule_src not present yet; using a stand-in rule file"
  printf '<ConfigRoot><service id="0000"><id>standin</id></service></ConfigRoot>\n' >"$T/bundle/firewall/snapferry-smtp.xml"
fi

# A fake root like ESXi's: UUID folders with name symlinks, one name with a space.
new_root() {
  R=$T/root.$1
  mkdir -p "$R/vmfs/volumes/6896b7e6-94bc1a70-ad35-c46516f1f5b5" "$R/vmfs/volumes/2707af93-17b6f4d4"
  ln -s 6896b7e6-94bc1a70-ad35-c46516f1f5b5 "$R/vmfs/volumes/datastore1"
  ln -s 2707af93-17b6f4d4 "$R/vmfs/volumes/nas share"
}

# run_install CASE [ARGS...]: fresh root and logs; sets R, RC, OUT (stdout), ERR (stderr), LOG
# (esxcli calls), SLOG (stub calls).
run_install() {
  c=$1; shift
  new_root "$c"
  : >"$T/esxcli.$c.log"; : >"$T/stub.$c.log"
  ROOT=$R PATH="$T/stubs:$T/bb" ESXCLI_LOG="$T/esxcli.$c.log" STUB_LOG="$T/stub.$c.log" \
    "$bb" sh "$T/bundle/install-esxi.sh" "$@" >"$T/out.$c" 2>"$T/err.$c"
  RC=$?
  OUT=$(cat "$T/out.$c"); ERR=$(cat "$T/err.$c"); LOG=$(cat "$T/esxcli.$c.log"); SLOG=$(cat "$T/stub.$c.log")
}
installed() { echo "$R/vmfs/volumes/$1/snapferry/snapferry"; }

echo "== plain install"
run_install plain --datastore=datastore1
check "plain: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
b=$(installed datastore1)
check "plain: binary copied to datastore" cmp -s "$T/bundle/snapferry" "$b"
check "plain: binary executable" [ -x "$b" ]
check "plain: copied through the datastore's UUID folder" [ -f "$R/vmfs/volumes/6896b7e6-94bc1a70-ad35-c46516f1f5b5/snapferry/snapferry" ]
check "plain: no temporary file left" no_file "$b.new"
check "plain: ran 'snapferry version'" [ "$SLOG" = version ]
check "plain: exactly the sshClient ruleset call (got: $LOG)" [ "$LOG" = "network firewall ruleset set --ruleset-id=sshClient --enabled=true" ]
check "plain: no SMTP rule installed" no_file "$R/etc/vmware/firewall/snapferry-smtp.xml"
check "plain: prints the version it runs" contains "$OUT" "snapferry stub-1.0"
check "plain: prints next steps" contains "$OUT" "Next steps:"

echo "== datastore name with a space, two-word option form"
run_install space --datastore "nas share"
check "space: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
check "space: binary copied to 'nas share'" cmp -s "$T/bundle/snapferry" "$(installed "nas share")"

echo "== --smtp"
run_install smtp --datastore=datastore1 --smtp
check "smtp: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
check "smtp: rule file installed in /etc/vmware/firewall" cmp -s "$T/bundle/firewall/snapferry-smtp.xml" "$R/etc/vmware/firewall/snapferry-smtp.xml"
check "smtp: rule file kept on the datastore" cmp -s "$T/bundle/firewall/snapferry-smtp.xml" "$R/vmfs/volumes/datastore1/snapferry/snapferry-smtp.xml"
want="network firewall ruleset set --ruleset-id=sshClient --enabled=true
network firewall refresh"
check "smtp: sshClient then refresh (got: $LOG)" [ "$LOG" = "$want" ]
check "smtp: warns that the rule needs --persist" contains "$OUT" "--persist"
check "smtp: no cron install without --persist" [ "$SLOG" = version ]

echo "== --persist"
run_install persist --datastore=datastore1 --persist
check "persist: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
want="version
cron install --persist"
check "persist: ran cron install --persist (got: $SLOG)" [ "$SLOG" = "$want" ]

echo "== --smtp --persist"
run_install smtppersist --datastore=datastore1 --smtp --persist
check "smtp+persist: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
want="version
cron install --persist --smtp-firewall"
check "smtp+persist: cron install persists the firewall rule (got: $SLOG)" [ "$SLOG" = "$want" ]

echo "== execInstalledOnly (binary refused with 'Operation not permitted')"
STUB_MODE=eperm run_install eperm --datastore=datastore1 --smtp --persist
check "eperm: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "eperm: names execInstalledOnly" contains "$ERR" "execInstalledOnly"
check "eperm: gives the exact command" contains "$ERR" "esxcli system settings advanced set -o /User/execInstalledOnly -i 0"
check "eperm: no firewall change (got: $LOG)" [ -z "$LOG" ]
check "eperm: no SMTP rule installed" no_file "$R/etc/vmware/firewall/snapferry-smtp.xml"
check "eperm: no next steps printed" sh -c '! grep -q "Next steps" "$1"' _ "$T/out.eperm"

echo "== execInstalledOnly as the shell reports it (execve fails with EPERM)"
# ESXi's kernel refuses the execve and ash itself prints "...: Operation not permitted". strace -P
# injects EPERM into the execve of the installed path only, so the real busybox shell reports it.
strace=$(command -v strace 2>/dev/null)
if [ -n "$strace" ]; then
  new_root realeperm
  b=$(installed datastore1)
  : >"$T/esxcli.realeperm.log"; : >"$T/stub.realeperm.log"
  ROOT=$R PATH="$T/stubs:$T/bb" ESXCLI_LOG="$T/esxcli.realeperm.log" STUB_LOG="$T/stub.realeperm.log" \
    "$strace" -f -o /dev/null -P "$b" -e trace=execve -e inject=execve:error=EPERM \
    "$bb" sh "$T/bundle/install-esxi.sh" --datastore=datastore1 >"$T/out.realeperm" 2>"$T/err.realeperm"
  RC=$?
  ERR=$(cat "$T/err.realeperm")
  check "real eperm: exit 1 (got $RC)" [ "$RC" -eq 1 ]
  check "real eperm: gives the exact command" contains "$ERR" "esxcli system settings advanced set -o /User/execInstalledOnly -i 0"
  check "real eperm: the stub never ran" [ ! -s "$T/stub.realeperm.log" ]
  check "real eperm: no firewall change" [ ! -s "$T/esxcli.realeperm.log" ]
elif [ "${CI:-}" = true ]; then
  bad "real eperm: strace not installed (CI=true)"
else
  echo "skip real eperm: strace not installed"
fi

echo "== binary that does not run"
STUB_MODE=broken run_install broken --datastore=datastore1
check "broken: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "broken: says version failed" contains "$ERR" "version failed"
check "broken: shows the binary's output" contains "$ERR" "netpoll failed"
check "broken: no firewall change" [ -z "$LOG" ]

echo "== esxcli failure"
ESXCLI_FAIL=sshClient run_install fwfail --datastore=datastore1
check "fwfail: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "fwfail: names the sshClient ruleset" contains "$ERR" "sshClient"
ESXCLI_FAIL=refresh run_install refreshfail --datastore=datastore1 --smtp
check "refreshfail: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "refreshfail: names the refresh" contains "$ERR" "firewall refresh failed"

echo "== unknown datastore"
run_install nods --datastore=datastore9
check "nods: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "nods: names the missing datastore" contains "$ERR" "datastore datastore9 not found"
check "nods: lists datastore1" contains "$ERR" "  datastore1"
check "nods: lists 'nas share'" contains "$ERR" "  nas share"
check "nods: does not list UUID folders" sh -c '! grep -q 6896b7e6 "$1"' _ "$T/err.nods"

echo "== usage errors"
run_install nodsarg
check "no --datastore: exit 2 (got $RC)" [ "$RC" -eq 2 ]
check "no --datastore: lists datastores" contains "$ERR" "  datastore1"
run_install badopt --datastore=datastore1 --frobnicate
check "unknown option: exit 2 (got $RC)" [ "$RC" -eq 2 ]
check "unknown option: named" contains "$ERR" "--frobnicate"
run_install pathds --datastore=/vmfs/volumes/datastore1
check "datastore given as a path: exit 2 (got $RC)" [ "$RC" -eq 2 ]
run_install nobin --datastore=datastore1 --binary="$T/missing"
check "missing --binary: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "missing --binary: names the file" contains "$ERR" "$T/missing"

echo "== reinstall over an existing install"
new_root again
: >"$T/esxcli.again.log"; : >"$T/stub.again.log"
for i in 1 2; do
  ROOT=$R PATH="$T/stubs:$T/bb" ESXCLI_LOG="$T/esxcli.again.log" STUB_LOG="$T/stub.again.log" \
    "$bb" sh "$T/bundle/install-esxi.sh" --datastore=datastore1 >/dev/null 2>&1
  RC=$?
  check "reinstall $i: exit 0" [ "$RC" -eq 0 ]
done
check "reinstall: no temporary file left" no_file "$(installed datastore1).new"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

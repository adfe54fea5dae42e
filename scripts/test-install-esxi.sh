#!/bin/sh
# test-install-esxi.sh: runs scripts/install-esxi.sh under Debian's busybox sh, with a PATH of
# busybox applets only (as on ESXi) plus a stand-in esxcli that logs its arguments and answers as
# ESXi does (acceptance level, VIB install/list/remove, Secure Boot refusing the community level),
# a stand-in vmware -v (ESXI_VERSION) and crond, against a fake root (ROOT=...) with fake
# datastores and a stub snapferry binary. Asserts files, esxcli calls, exit codes and messages
# for the plain install (ESXi 6.7/7), the VIB install and upgrade (ESXi 8) and --uninstall. Prints "N passed, M failed" last; exits 1 when anything failed.
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
# Stand-in esxcli: logs every call; answers the calls install-esxi.sh makes the way ESXi does
# (appliance/esxi/sim has the same texts). ESXCLI_LEVEL is the host acceptance level,
# ESXCLI_SECUREBOOT=1 makes lowering it fail as on a Secure Boot host, ESXCLI_REQUIRE_SB=true
# is the TPM setting, ESXCLI_INSTALLED the installed snapferry VIB version. A VIB install puts
# STUB_BIN and STUB_RULE where the payload would go ($ROOT/opt/snapferry).
echo "$*" >>"$ESXCLI_LOG"
case "$*" in *"${ESXCLI_FAIL:-@never@}"*) echo "esxcli stub: failing on purpose: $*" >&2; exit 1 ;; esac
result() { # TITLE MESSAGE INSTALLED REMOVED SKIPPED
  printf '%s\n   Message: %s\n   Reboot Required: false\n   VIBs Installed: %s\n   VIBs Removed: %s\n   VIBs Skipped: %s\n' "$@"
}
case "$*" in
  "software acceptance get") echo "${ESXCLI_LEVEL:-PartnerSupported}" ;;
  "software acceptance set --level=CommunitySupported")
    if [ -n "${ESXCLI_SECUREBOOT:-}" ]; then
      printf '[AcceptanceConfigError]\n Secure Boot enabled: Cannot change acceptance level to community.\n Please refer to the log file for more details.\n'
      exit 1
    fi
    echo "Host acceptance level changed to 'CommunitySupported'." ;;
  "system settings encryption get")
    printf '   Mode: NONE\n   Require Executables Only From Installed VIBs: false\n   Require Secure Boot: %s\n' "${ESXCLI_REQUIRE_SB:-false}" ;;
  "software vib list")
    echo "Name       Version      Vendor     Acceptance Level    Install Date"
    echo "---------  -----------  ---------  ------------------  ------------"
    [ -n "${ESXCLI_INSTALLED:-}" ] && echo "snapferry  $ESXCLI_INSTALLED  snapferry  CommunitySupported  2026-12-01"
    ;;
  "software vib install -v "*" --no-sig-check")
    v=${5##*/snapferry-}; v=${v%.vib}
    id=snapferry_bootbank_snapferry_$v
    # (the same version installed: its files are there already, as on a real host)
    mkdir -p "$ROOT/opt/snapferry" && cp "$STUB_BIN" "$ROOT/opt/snapferry/snapferry" && cp "$STUB_RULE" "$ROOT/opt/snapferry/snapferry-smtp.xml"
    if [ "$v" = "${ESXCLI_INSTALLED:-}" ]; then result "Installation Result" "Host is not changed." "" "" "$id"; exit 0; fi
    old=; [ -n "${ESXCLI_INSTALLED:-}" ] && old=snapferry_bootbank_snapferry_$ESXCLI_INSTALLED
    result "Installation Result" "Operation finished successfully." "$id" "$old" "" ;;
  "software vib remove -n snapferry")
    result "Removal Result" "Operation finished successfully." "" "snapferry_bootbank_snapferry_${ESXCLI_INSTALLED:-x}" "" ;;
esac
exit 0
EOF
cat >"$T/stubs/vmware" <<'EOF'
#!/bin/sh
[ "$1" = -v ] && echo "VMware ESXi ${ESXI_VERSION:-6.7.0} build-19195723"
EOF
chmod 755 "$T/stubs/vmware"
cat >"$T/stubs/crond" <<'EOF'
#!/bin/sh
echo "crond $*" >>"$ESXCLI_LOG"
EOF
chmod 755 "$T/stubs/crond"
chmod 755 "$T/stubs/esxcli"

# The stub binary stands in for snapferry; STUB_MODE picks how it behaves.
mkdir -p "$T/bundle/firewall"
cp "$scripts/install-esxi.sh" "$T/bundle/install-esxi.sh"
cat >"$T/bundle/snapferry" <<'EOF'
#!/bin/sh
# The state folder the script passes (--home=DIR) is logged apart from the command.
case ${1:-} in --home=*) echo "${1#--home=}" >>"$STUB_LOG.home"; shift ;; esac
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
  : >"$T/esxcli.$c.log"; : >"$T/stub.$c.log"; : >"$T/stub.$c.log.home"
  ROOT=$R PATH="$T/stubs:$T/bb" ESXCLI_LOG="$T/esxcli.$c.log" STUB_LOG="$T/stub.$c.log" \
    STUB_BIN="$T/bundle/snapferry" STUB_RULE="$T/bundle/firewall/snapferry-smtp.xml" \
    "$bb" sh "$T/bundle/install-esxi.sh" "$@" >"$T/out.$c" 2>"$T/err.$c"
  RC=$?
  OUT=$(cat "$T/out.$c"); ERR=$(cat "$T/err.$c"); LOG=$(cat "$T/esxcli.$c.log"); SLOG=$(cat "$T/stub.$c.log")
  HLOG=$(sort -u "$T/stub.$c.log.home")
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
check "plain: state folder on the datastore (got: $HLOG)" [ "$HLOG" = "$R/vmfs/volumes/datastore1/snapferry/var" ]
check "plain: says what it changed" contains "$OUT" "changed on this host:"
check "plain: no VIB call on ESXi 6.7 (got: $LOG)" sh -c '! grep -q "software" "$1"' _ "$T/esxcli.plain.log"

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


# ---- ESXi 8: the VIB -------------------------------------------------------------------------
printf 'pretend VIB\n' >"$T/bundle/snapferry-1.2.3-1.4.0.vib"
vibcall="software vib install -v $T/root.CASE/vmfs/volumes/datastore1/snapferry/snapferry-1.2.3-1.4.0.vib --no-sig-check"
vibcall_for() { echo "$vibcall" | sed "s/CASE/$1/"; }

echo "== ESXi 8: VIB install, acceptance level lowered after saying so"
ESXI_VERSION=8.0.2 run_install vib8 --datastore=datastore1
check "vib8: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
want="system settings encryption get
software acceptance get
software acceptance set --level=CommunitySupported
software vib list
$(vibcall_for vib8)
network firewall ruleset set --ruleset-id=sshClient --enabled=true"
check "vib8: esxcli calls in order (got: $LOG)" [ "$LOG" = "$want" ]
check "vib8: said it lowers the level before doing it" sh -c 'grep -n "lowering it: esxcli software acceptance set" "$1" | grep -q .' _ "$T/out.vib8"
check "vib8: names the old level" contains "$OUT" "acceptance level is PartnerSupported"
check "vib8: VIB kept on the datastore" cmp -s "$T/bundle/snapferry-1.2.3-1.4.0.vib" "$R/vmfs/volumes/datastore1/snapferry/snapferry-1.2.3-1.4.0.vib"
check "vib8: no plain binary on the datastore" no_file "$R/vmfs/volumes/datastore1/snapferry/snapferry"
check "vib8: ran /opt/snapferry/snapferry version" [ "$SLOG" = version ]
check "vib8: state folder on the datastore (got: $HLOG)" [ "$HLOG" = "$R/vmfs/volumes/datastore1/snapferry/var" ]
check "vib8: state folder created" [ -d "$R/vmfs/volumes/datastore1/snapferry/var" ]
check "vib8: reports the level change" contains "$OUT" "host acceptance level PartnerSupported -> CommunitySupported"
check "vib8: reports the VIB install" contains "$OUT" "installed the VIB snapferry-1.2.3-1.4.0"
check "vib8: tells how to set SNAPFERRY_HOME" contains "$OUT" "export SNAPFERRY_HOME=$R/vmfs/volumes/datastore1/snapferry/var"

echo "== ESXi 8 at CommunitySupported already: the level is left alone"
ESXI_VERSION=8.0.2 ESXCLI_LEVEL=CommunitySupported run_install vibcomm --datastore=datastore1
check "vibcomm: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
check "vibcomm: no acceptance set (got: $LOG)" sh -c '! grep -q "acceptance set" "$1"' _ "$T/esxcli.vibcomm.log"
check "vibcomm: installs the VIB" contains "$LOG" "$(vibcall_for vibcomm)"
check "vibcomm: does not claim a level change" sh -c '! grep -q "lowering" "$1"' _ "$T/out.vibcomm"

echo "== ESXi 8 upgrade, with --smtp --persist"
ESXI_VERSION=8.0.2 ESXCLI_LEVEL=CommunitySupported ESXCLI_INSTALLED=1.2.3-1.0.0 run_install vibup --datastore=datastore1 --smtp --persist
check "vibup: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
check "vibup: reports the upgrade" contains "$OUT" "upgraded the VIB snapferry 1.2.3-1.0.0 -> 1.2.3-1.4.0"
check "vibup: SMTP rule from /opt/snapferry" cmp -s "$T/bundle/firewall/snapferry-smtp.xml" "$R/etc/vmware/firewall/snapferry-smtp.xml"
want="version
cron install --persist --smtp-firewall"
check "vibup: cron install with the datastore state folder (got: $SLOG / $HLOG)" [ "$SLOG" = "$want" -a "$HLOG" = "$R/vmfs/volumes/datastore1/snapferry/var" ]

echo "== ESXi 8, same version installed already"
ESXI_VERSION=8.0.2 ESXCLI_LEVEL=CommunitySupported ESXCLI_INSTALLED=1.2.3-1.4.0 run_install vibsame --datastore=datastore1
check "vibsame: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
check "vibsame: says it is installed already" contains "$OUT" "is installed already"

echo "== ESXi 8 with Secure Boot: lowering the level refused"
ESXI_VERSION=8.0.2 ESXCLI_SECUREBOOT=1 run_install vibsb --datastore=datastore1
check "vibsb: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "vibsb: names Secure Boot" contains "$ERR" "UEFI Secure Boot"
check "vibsb: shows esxcli's refusal" contains "$ERR" "Cannot change acceptance level to community"
check "vibsb: gives the --host option" contains "$ERR" "--host=root@THIS-HOST"
check "vibsb: gives the plain-binary option" contains "$ERR" "--binary=FILE"
check "vibsb: no VIB install (got: $LOG)" sh -c '! grep -q "vib install" "$1"' _ "$T/esxcli.vibsb.log"
check "vibsb: no firewall change" sh -c '! grep -q "firewall" "$1"' _ "$T/esxcli.vibsb.log"

echo "== ESXi 8 with Secure Boot required by the TPM: refused before anything is asked"
ESXI_VERSION=8.0.2 ESXCLI_REQUIRE_SB=true run_install vibtpm --datastore=datastore1
check "vibtpm: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "vibtpm: names the TPM setting" contains "$ERR" "Require Secure Boot: true"
check "vibtpm: only the encryption query (got: $LOG)" [ "$LOG" = "system settings encryption get" ]

echo "== ESXi 8 with Secure Boot reported by secureBoot.py"
new_root vibsbpy
mkdir -p "$R/usr/lib/vmware/secureboot/bin"
printf '#!/bin/sh\necho Enabled\n' >"$R/usr/lib/vmware/secureboot/bin/secureBoot.py"
chmod 755 "$R/usr/lib/vmware/secureboot/bin/secureBoot.py"
: >"$T/esxcli.vibsbpy.log"
ROOT=$R PATH="$T/stubs:$T/bb" ESXCLI_LOG="$T/esxcli.vibsbpy.log" STUB_LOG="$T/stub.vibsbpy.log" ESXI_VERSION=8.0.2 \
  "$bb" sh "$T/bundle/install-esxi.sh" --datastore=datastore1 >"$T/out.vibsbpy" 2>"$T/err.vibsbpy"
RC=$?
check "vibsbpy: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "vibsbpy: acceptance level untouched" sh -c '! grep -q "acceptance" "$1"' _ "$T/esxcli.vibsbpy.log"

echo "== ESXi 8 without a VIB"
mv "$T/bundle/snapferry-1.2.3-1.4.0.vib" "$T/vib.aside"
ESXI_VERSION=8.0.2 run_install novib --datastore=datastore1
mv "$T/vib.aside" "$T/bundle/snapferry-1.2.3-1.4.0.vib"
check "novib: exit 1 (got $RC)" [ "$RC" -eq 1 ]
check "novib: says to build or pass the VIB" contains "$ERR" "--vib=FILE"
check "novib: nothing asked of esxcli" [ -z "$LOG" ]

echo "== ESXi 8 with --binary: the plain install all the same"
ESXI_VERSION=8.0.2 run_install vibplain --datastore=datastore1 --binary="$T/bundle/snapferry"
check "vibplain: exit 0 (stderr: $ERR)" [ "$RC" -eq 0 ]
check "vibplain: binary on the datastore" cmp -s "$T/bundle/snapferry" "$(installed datastore1)"
check "vibplain: no VIB calls" sh -c '! grep -q "software" "$1"' _ "$T/esxcli.vibplain.log"
run_install vibandbin --datastore=datastore1 --binary="$T/bundle/snapferry" --vib="$T/bundle/snapferry-1.2.3-1.4.0.vib"
check "--vib with --binary: exit 2 (got $RC)" [ "$RC" -eq 2 ]

echo "== --uninstall"
new_root uninst
mkdir -p "$R/var/spool/cron/crontabs" "$R/etc/rc.local.d" "$R/etc/vmware/firewall" "$R/var/run" "$R/vmfs/volumes/datastore1/snapferry/var/cron"
printf '#min hour day mon dow command\n1 1 * * * /sbin/tmpwatch.py\n30 1 * * * /opt/snapferry/snapferry --home=/x cron run nightly #snapferry:nightly\n0 3 * * 0 /opt/snapferry/snapferry --home=/x cron run weekly #snapferry:weekly\n' >"$R/var/spool/cron/crontabs/root"
printf '#!/bin/sh\n# >>> snapferry: managed\n/opt/snapferry/snapferry --home=/x cron install\n# <<< snapferry\nexit 0\n' >"$R/etc/rc.local.d/local.sh"
cp "$T/bundle/firewall/snapferry-smtp.xml" "$R/etc/vmware/firewall/snapferry-smtp.xml"
echo '{"jobs":[]}' >"$R/vmfs/volumes/datastore1/snapferry/var/cron/jobs.json"
sleep 300 &
crond_pid=$!
echo "$crond_pid" >"$R/var/run/crond.pid"
: >"$T/esxcli.uninst.log"
ROOT=$R PATH="$T/stubs:$T/bb" ESXCLI_LOG="$T/esxcli.uninst.log" ESXCLI_INSTALLED=1.2.3-1.4.0 \
  "$bb" sh "$T/bundle/install-esxi.sh" --uninstall --datastore=datastore1 >"$T/out.uninst" 2>"$T/err.uninst"
RC=$?
OUT=$(cat "$T/out.uninst"); LOG=$(cat "$T/esxcli.uninst.log")
check "uninstall: exit 0 (stderr: $(cat "$T/err.uninst"))" [ "$RC" -eq 0 ]
check "uninstall: removes the VIB (got: $LOG)" contains "$LOG" "software vib remove -n snapferry"
want='#min hour day mon dow command
1 1 * * * /sbin/tmpwatch.py'
check "uninstall: snapferry lines gone, others kept" [ "$(cat "$R/var/spool/cron/crontabs/root")" = "$want" ]
check "uninstall: crond restarted" contains "$LOG" "crond"
check "uninstall: old crond stopped" sh -c '! kill -0 "$1" 2>/dev/null' _ "$crond_pid"
kill "$crond_pid" 2>/dev/null
check "uninstall: local.sh stanza gone" [ "$(cat "$R/etc/rc.local.d/local.sh")" = "$(printf '#!/bin/sh\nexit 0')" ]
check "uninstall: SMTP rule removed" no_file "$R/etc/vmware/firewall/snapferry-smtp.xml"
check "uninstall: firewall refreshed" contains "$LOG" "network firewall refresh"
check "uninstall: state folder kept" [ -f "$R/vmfs/volumes/datastore1/snapferry/var/cron/jobs.json" ]
check "uninstall: says what it changed" contains "$OUT" "removed 2 snapferry line(s)"
check "uninstall: says the state is kept" contains "$OUT" "kept the state folder"
run_install uninstagain --uninstall
check "uninstall on a clean host: exit 0 (got $RC)" [ "$RC" -eq 0 ]
check "uninstall on a clean host: nothing changed" contains "$OUT" "nothing changed"
run_install uninstbad --uninstall --smtp
check "uninstall with install options: exit 2 (got $RC)" [ "$RC" -eq 2 ]

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

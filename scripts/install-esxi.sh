#!/bin/sh
# install-esxi.sh: install snapferry on a VMware ESXi host, from the ESXi shell (busybox ash).
#
#   sh install-esxi.sh --datastore=NAME [--binary=FILE] [--smtp] [--persist]
#
# What it does, in order, stopping at the first failure:
#   1. copies the binary to /vmfs/volumes/NAME/snapferry/snapferry (datastores survive a reboot;
#      /tmp is a small ramdisk and / is rebuilt at boot),
#   2. runs `snapferry version` from there; ESXi 8 refuses binaries not installed from a VIB
#      ("Operation not permitted", execInstalledOnly): the script then says how to allow it,
#   3. opens outbound SSH in the host firewall (ruleset sshClient),
#   4. with --smtp: installs the outbound SMTP firewall rule file and refreshes the firewall,
#   5. with --persist: `snapferry cron install --persist` so that its crontab lines (and with
#      --smtp the firewall rule) come back after a reboot through /etc/rc.local.d/local.sh,
#   6. prints the next steps.
# Env for tests and unusual hosts: ROOT prefixes every host path (a fake root); esxcli is taken
# from PATH.
# Exit status: 0 done, 1 failed, 2 usage error.

ROOT=${ROOT:-}
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  cat <<USAGE
usage: sh $0 --datastore=NAME [--binary=FILE] [--smtp] [--persist]
  --datastore=NAME  datastore to install into: /vmfs/volumes/NAME/snapferry/
  --binary=FILE     the snapferry linux-amd64 binary (default: snapferry or snapferry-linux-amd64
                    beside this script, or ../dist/snapferry-linux-amd64)
  --smtp            open outbound SMTP (25, 465, 587) for e-mail reports
  --persist         keep cron entries (and with --smtp the firewall rule) across reboots
USAGE
}

say() { echo "install-esxi: $*"; }
fail() { echo "install-esxi: ERROR: $*" >&2; exit 1; }
usage_error() { echo "install-esxi: $*" >&2; usage >&2; exit 2; }

datastore= binary= smtp=0 persist=0
while [ $# -gt 0 ]; do
  case $1 in
    --datastore=*) datastore=${1#--datastore=} ;;
    --datastore) [ $# -ge 2 ] || usage_error "--datastore needs a value"; datastore=$2; shift ;;
    --binary=*) binary=${1#--binary=} ;;
    --binary) [ $# -ge 2 ] || usage_error "--binary needs a value"; binary=$2; shift ;;
    --smtp) smtp=1 ;;
    --persist) persist=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done

volumes=$ROOT/vmfs/volumes

list_datastores() {
  # On ESXi /vmfs/volumes holds each volume twice: a UUID folder and a symlink named for the
  # datastore. List the names (the symlinks); a tree without symlinks lists its folders.
  found=0
  for d in "$volumes"/*; do
    [ -L "$d" ] && [ -d "$d" ] || continue
    printf '  %s\n' "${d##*/}"; found=1
  done
  [ $found -eq 1 ] && return 0
  for d in "$volumes"/*; do
    [ -d "$d" ] || continue
    printf '  %s\n' "${d##*/}"; found=1
  done
  [ $found -eq 1 ] || echo "  (none under $volumes)"
}

if [ -z "$datastore" ]; then
  usage_error "--datastore=NAME is required; datastores on this host:
$(list_datastores)"
fi
case $datastore in
  */*|.|..) usage_error "--datastore=$datastore: give the datastore's name (as in /vmfs/volumes/NAME), not a path" ;;
esac
[ -d "$volumes/$datastore" ] || fail "datastore $datastore not found at $volumes/$datastore; datastores on this host:
$(list_datastores)"

if [ -z "$binary" ]; then
  for c in "$here/snapferry" "$here/snapferry-linux-amd64" "$here/../dist/snapferry-linux-amd64"; do
    if [ -f "$c" ]; then binary=$c; break; fi
  done
  [ -n "$binary" ] || usage_error "no snapferry binary beside $0 and no dist/snapferry-linux-amd64: pass --binary=FILE"
fi
[ -f "$binary" ] || fail "binary $binary not found; pass --binary=FILE (the linux-amd64 build from make build)"

# 1. Copy. Write a temporary name and rename, so a running cron job never sees half a binary.
dir=$volumes/$datastore/snapferry
bin=$dir/snapferry
mkdir -p "$dir" || fail "create folder $dir failed; is datastore $datastore writable?"
cp "$binary" "$bin.new" || fail "copy $binary to $bin.new failed (datastore full?)"
chmod 755 "$bin.new" || fail "chmod $bin.new failed"
mv -f "$bin.new" "$bin" || fail "rename $bin.new to $bin failed"
say "installed $bin"

# 2. Does it run here? The shell itself prints "Operation not permitted" when execInstalledOnly
#    blocks it, so stdout and stderr are read together.
out=$("$bin" version 2>&1)
rc=$?
case $out in
  *"Operation not permitted"*)
    cat >&2 <<EOF
install-esxi: ERROR: ESXi refused to run $bin:
  $out
This host only runs binaries installed from a VIB (the setting execInstalledOnly, default on
ESXi 8). To allow snapferry, run:

  esxcli system settings advanced set -o /User/execInstalledOnly -i 0

then run this script again. If the setting is enforced by the TPM (ESXi 8 with secure boot and
"execInstalledOnly enforcement"), it cannot be changed from the shell: see docs/esxi.md.
EOF
    exit 1
    ;;
esac
[ $rc -eq 0 ] || fail "$bin version failed (exit $rc): $out
Is this the linux-amd64 build from make build (with the epoll overlay)? See docs/esxi.md."
say "runs: $out"

# 3. Outbound SSH, for ssh:// and sftp:// stores and --host.
esxcli network firewall ruleset set --ruleset-id=sshClient --enabled=true ||
  fail "enabling the sshClient firewall ruleset failed (esxcli network firewall ruleset set --ruleset-id=sshClient --enabled=true)"
say "firewall: outbound SSH (sshClient) enabled"

# 4. Outbound SMTP for e-mail reports: ESXi has no built-in ruleset for it.
if [ $smtp -eq 1 ]; then
  rule=
  for c in "$here/firewall/snapferry-smtp.xml" "$here/snapferry-smtp.xml"; do
    if [ -f "$c" ]; then rule=$c; break; fi
  done
  [ -n "$rule" ] || fail "--smtp: firewall rule file snapferry-smtp.xml not found in $here/firewall/ or $here/; copy scripts/firewall/ beside this script"
  fwdir=$ROOT/etc/vmware/firewall
  mkdir -p "$fwdir" || fail "create $fwdir failed"
  cp "$rule" "$fwdir/snapferry-smtp.xml" || fail "copy $rule to $fwdir failed"
  # A copy on the datastore survives reboots; --persist (local.sh) recreates the rule from it.
  cp "$rule" "$dir/snapferry-smtp.xml" || fail "copy $rule to $dir failed"
  esxcli network firewall refresh || fail "esxcli network firewall refresh failed after installing $fwdir/snapferry-smtp.xml"
  say "firewall: outbound SMTP (25, 465, 587) enabled by $fwdir/snapferry-smtp.xml"
  if [ $persist -eq 0 ]; then
    say "note: /etc is rebuilt at boot; rerun with --persist to keep the SMTP rule"
  fi
fi

# 5. Crontab and boot persistence: snapferry itself edits the crontab and local.sh.
if [ $persist -eq 1 ]; then
  if [ $smtp -eq 1 ]; then
    "$bin" cron install --persist --smtp-firewall || fail "$bin cron install --persist --smtp-firewall failed"
  else
    "$bin" cron install --persist || fail "$bin cron install --persist failed"
  fi
  say "cron: entries installed and persisted in /etc/rc.local.d/local.sh (not run under UEFI Secure Boot)"
fi

cat <<EOF

snapferry is installed in $dir (state in $dir/var).
Next steps:
  1. Put the store host's key in /.ssh/known_hosts and a key pair in /.ssh/ (ssh-keygen -t ed25519),
     then add /.ssh/id_ed25519.pub to the store host's authorized_keys.
  2. Create a repository:  $bin init ssh://backup@store.example/srv/snapferry
  3. Try a backup:         $bin backup --vm=running --to=ssh://backup@store.example/srv/snapferry
  4. Schedule it:          $bin cron add nightly "0 2 * * *" -- backup --vm=all --to=ssh://...
                           $bin cron install --persist
  5. Check health:         $bin status
EOF
exit 0

#!/usr/bin/env bash
# make demo, the main job: a simulated ESXi host (esxisim, true to the real vim-cmd output) with a
# running VM, a hot backup to a local repository while the guest keeps writing, a second
# incremental backup, a check, and a restore as a new VM on the other datastore.
set -euo pipefail
bin=$(realpath "${SNAPFERRY:-dist/snapferry-linux-amd64}")
work=${DEMO_DIR:-$(mktemp -d -t snapferry-demo.XXXXXX)}/vm
mkdir -p "$work/bin"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "build the ESXi simulator"
go build -o "$work/bin/esxisim" ./cmd/esxisim
for t in vim-cmd vmkfstools esxcli vmware; do ln -sf esxisim "$work/bin/$t"; done
export PATH="$work/bin:$PATH" SNAPFERRY_VMFS_ROOT="$work/vmfs" SNAPFERRY_HOME="$work/state"
rm -rf "$work/vmfs" "$work/repo" "$work/state"
esxisim demo "$work/vmfs"
vmid=$(vim-cmd vmsvc/getallvms | awk 'NR>1 && $1 ~ /^[0-9]+$/ {print $1; exit}')

say "the host (vim-cmd vmsvc/getallvms, as ESXi prints it)"
vim-cmd vmsvc/getallvms
say "snapferry vms"
"$bin" vms

say "init a repository"
"$bin" init "$work/repo"

say "hot backup while the guest writes"
( for i in 1 2 3 4 5; do esxisim guest write "$vmid" vmdk0 $(( i * 3 << 20 )) 1048576 --pattern $i; sleep 0.05; done ) &
guest=$!
"$bin" backup --vm=all --to="$work/repo" --tag=demo
wait $guest
echo "snapshots left on the VM (must be none of ours):"
vim-cmd vmsvc/snapshot.get "$vmid"

say "the guest changes 2 MiB; incremental backup stores only that"
esxisim guest write "$vmid" vmdk0 $(( 40 << 20 )) 2097152 --pattern 77
"$bin" backup --vm=all --to="$work/repo" --tag=demo

say "snapshots and check --read-data"
"$bin" snapshots --repo="$work/repo"
"$bin" check --repo="$work/repo" --read-data

say "restore the latest backup as a new VM on the other datastore, registered"
"$bin" restore latest --from="$work/repo" --datastore="ssd store" --name="web restored" --register
vim-cmd vmsvc/getallvms

say "proof: the restored disks equal the VM's disks"
src=$(ls "$work/vmfs/datastore1/web [demo] 01/"*-flat.vmdk | head -1)
dst=$(ls "$work/vmfs/ssd store/web restored/"*-flat.vmdk | head -1)
a=$(sha256sum < "$src" | cut -d' ' -f1); b=$(sha256sum < "$dst" | cut -d' ' -f1)
echo "vmdk0 sha256 source  $a"
echo "vmdk0 sha256 restore $b"
[ "$a" = "$b" ] || { echo "FAIL: restored disk differs"; exit 1; }
echo "allocated: source $(du -k "$src" | cut -f1) KiB, restore $(du -k "$dst" | cut -f1) KiB of $(( $(stat -c %s "$dst") >> 10 )) KiB"
"$bin" jobs
echo "PASS: VM backed up hot twice, checked, restored identical as a new VM"

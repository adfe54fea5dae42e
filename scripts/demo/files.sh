#!/usr/bin/env bash
# make demo, part 1: back up a sparse disk image and a folder to a local repository, change a few
# blocks, back up again (showing how little is stored), check, restore, and prove the restore is
# byte-identical and still sparse. Runs on any Linux box; needs only the built binary.
set -euo pipefail
bin=${SNAPFERRY:-dist/snapferry-linux-amd64}
work=${DEMO_DIR:-$(mktemp -d -t snapferry-demo.XXXXXX)}/files
mkdir -p "$work"
export SNAPFERRY_HOME="$work/state"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
alloc() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }

say "work folder: $work"
img="$work/disk.img"
rm -f "$img"
truncate -s 4G "$img"
# 64 MiB of data spread over a 4 GiB thin disk: 16 extents of 4 MiB, the rest holes.
for i in $(seq 0 15); do
  head -c 4M /dev/urandom | dd of="$img" bs=1M seek=$(( i * 250 )) conv=notrunc status=none
done
mkdir -p "$work/folder"
cp -r /etc/ssl/certs "$work/folder/" 2>/dev/null || true
seq 1 200000 > "$work/folder/numbers.txt"
ln -sf numbers.txt "$work/folder/link"
echo "image: $(du -h --apparent-size "$img" | cut -f1) apparent, $(( $(alloc "$img") >> 20 )) MiB allocated"

say "init"
"$bin" init "$work/repo"
say "first backup"
"$bin" backup "$img" "$work/folder" --to="$work/repo" --tag=demo
say "write 3 new MiB into holes of the image, 64 KiB into a block with data, append to one file"
for off in 100 1750 3000; do head -c 1M /dev/urandom | dd of="$img" bs=1M seek=$off conv=notrunc status=none; done
# A guest's small write: only its 64 KiB piece is stored (a patch of the block's earlier version).
head -c 64K /dev/urandom | dd of="$img" bs=64K seek=$(( 250 * 16 + 5 )) conv=notrunc status=none
echo "one more line" >> "$work/folder/numbers.txt"
say "second backup: only the changed blocks are stored, the small write as a 64 KiB patch"
"$bin" backup "$img" "$work/folder" --to="$work/repo" --tag=demo
say "snapshots"
"$bin" snapshots --repo="$work/repo"
say "check --read-data"
"$bin" check --repo="$work/repo" --read-data
say "restore the latest image and folder"
rm -rf "$work/restore"
"$bin" restore latest --source="$img" --from="$work/repo" --target="$work/restore"
"$bin" restore latest --source="$work/folder" --from="$work/repo" --target="$work/restore/files"
say "proof"
a=$(sha256sum < "$img" | cut -d' ' -f1); b=$(sha256sum < "$work/restore/disk.img" | cut -d' ' -f1)
echo "image sha256 source  $a"
echo "image sha256 restore $b"
[ "$a" = "$b" ] || { echo "FAIL: restored image differs"; exit 1; }
sa=$(alloc "$img"); ra=$(alloc "$work/restore/disk.img")
echo "allocated: source $(( sa >> 20 )) MiB, restore $(( ra >> 20 )) MiB"
[ "$ra" -le $(( sa + sa / 20 )) ] || { echo "FAIL: restore is not sparse"; exit 1; }
diff -r "$work/folder" "$work/restore/files$work/folder" >/dev/null || { echo "FAIL: restored folder differs"; exit 1; }
echo "folder restored identical"
echo "PASS: restore identical and sparse"

#!/usr/bin/env bash
# workload.sh: build the disk-image workload of the benchmarks, cached in $BENCH_OUT/$BENCH_SIZE/.
#
#   image.v1.img  sparse ext4 image (8 GiB apparent, ~1.7 GiB allocated at BENCH_SIZE=full) made
#                 with `mke2fs -d` from mixed content: random data (incompressible, unique), text
#                 (/usr/share/doc), binaries (/usr/bin), a toolchain (/usr/local/go), then /usr/share
#                 and /usr/lib until the content budget (IMG_CONTENT_MIB; ext4 metadata and
#                 small-file slack add ~12%) is spent.
#   image.v2.img  the same image with 1% of the allocated bytes rewritten in scattered 64 KiB writes,
#                 only inside allocated extents (found with SEEK_DATA/SEEK_HOLE), seeded so every run
#                 builds the same change. This is what an incremental backup of a VM disk sees.
#   image.meta    apparent size, allocated bytes, rewritten bytes.
# Rebuilt only when missing or when the size parameters changed. Env: BENCH_SIZE, BENCH_OUT.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

params="size=$IMG_SIZE content_mib=$IMG_CONTENT_MIB random_mib=$IMG_RANDOM_MIB v=2"
stamp=$WORK/image.stamp
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$params" ] && [ -f "$WORK/image.v1.img" ] && [ -f "$WORK/image.v2.img" ]; then
  echo "workload: cached in $WORK ($params)"; cat "$WORK/image.meta"; exit 0
fi
have mke2fs || PATH=$PATH:/usr/sbin
have mke2fs || die "mke2fs not found; apt-get install e2fsprogs"
PY=/usr/bin/python3
[ -x "$PY" ] || die "$PY not found; apt-get install python3"

rm -f "$stamp" "$WORK/image.v1.img" "$WORK/image.v2.img"
content=$WORK/content
rm -rf "$content"; mkdir -p "$content/random"

echo "workload: $IMG_RANDOM_MIB MiB of random data"
for ((i = 0; i < IMG_RANDOM_MIB / 16; i++)); do
  head -c $((16 << 20)) /dev/urandom >"$content/random/r$i.bin"
done

echo "workload: mixed files up to $IMG_CONTENT_MIB MiB in all"
"$PY" - "$content" $(((IMG_CONTENT_MIB - IMG_RANDOM_MIB) << 20)) <<'PY'
# Copies regular files from the sources, in order, until the byte budget is spent. A file seen
# under an earlier source (/usr/share/doc inside /usr/share) is not copied twice.
import os, shutil, sys
dst, budget = sys.argv[1], int(sys.argv[2])
sources = ["/usr/share/doc", "/usr/bin", "/usr/local/go", "/usr/share", "/usr/lib"]
seen, used = set(), 0
for src in sources:
    if used >= budget or not os.path.isdir(src):
        continue
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            if p in seen or os.path.islink(p) or not os.path.isfile(p):
                continue
            seen.add(p)
            try:
                size = os.path.getsize(p)
                if used + size > budget + (1 << 20):
                    continue  # one big file must not blow the mix past the target
                out = os.path.join(dst, src.strip("/").replace("/", "_"), os.path.relpath(p, src))
                os.makedirs(os.path.dirname(out), exist_ok=True)
                shutil.copyfile(p, out)
            except OSError:
                continue  # unreadable file: the mix does not depend on any one file
            used += size
            if used >= budget:
                break
        if used >= budget:
            break
print(f"workload: copied {used >> 20} MiB of files")
PY

echo "workload: mke2fs -d into a $IMG_SIZE sparse image"
truncate -s "$IMG_SIZE" "$WORK/image.v1.img.tmp"
mke2fs -q -F -t ext4 -E lazy_itable_init=1,lazy_journal_init=1 -d "$content" "$WORK/image.v1.img.tmp"
mv "$WORK/image.v1.img.tmp" "$WORK/image.v1.img"
rm -rf "$content"

echo "workload: image.v2.img = image.v1.img with 1% of the allocated bytes rewritten"
cp --sparse=always "$WORK/image.v1.img" "$WORK/image.v2.img.tmp"
"$PY" - "$WORK/image.v2.img.tmp" "$WORK/image.meta" "$bench_here" <<'PY'
# Rewrites 1% of the allocated bytes in 64 KiB writes at random 64 KiB-aligned places inside the
# allocated extents (SEEK_DATA/SEEK_HOLE), each place at most once, with a fixed seed.
import os, random, sys
path, meta = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
from extents import data_extents
W = 64 << 10
fd = os.open(path, os.O_RDWR)
size = os.fstat(fd).st_size
extents = data_extents(fd)
allocated = sum(h - d for d, h in extents)
slots = []  # every 64 KiB-aligned window that lies wholly inside one extent
for d, h in extents:
    start = (d + W - 1) // W * W
    slots.extend(range(start, h - W + 1, W))
n = max(1, allocated // 100 // W)
rng = random.Random(20261121)
chosen = sorted(rng.sample(slots, n))
for pos in chosen:
    os.pwrite(fd, rng.randbytes(W), pos)
os.fsync(fd)
os.close(fd)
with open(meta, "w") as m:
    m.write(f"apparent_bytes {size}\nallocated_bytes {allocated}\nextents {len(extents)}\n"
            f"rewritten_bytes {n * W}\nrewrites {n}\n")
PY
mv "$WORK/image.v2.img.tmp" "$WORK/image.v2.img"
echo "$params" >"$stamp"
cat "$WORK/image.meta"
du -h --apparent-size "$WORK/image.v1.img"; du -h "$WORK/image.v1.img" "$WORK/image.v2.img"

package disk

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// BenchmarkBackupImage backs up the image named by SNAPFERRY_BENCH_IMAGE (for the comparison
// with borg, a sparse 8 GiB ext4 image) into a fresh local repository, flush included, then
// restores it to SNAPFERRY_BENCH_IMAGE.restored when SNAPFERRY_BENCH_RESTORE is set.
//
//	SNAPFERRY_BENCH_IMAGE=/tmp/disk.img go test -run '^$' -bench BackupImage -benchtime 1x ./images/disk/
func BenchmarkBackupImage(b *testing.B) {
	src := os.Getenv("SNAPFERRY_BENCH_IMAGE")
	if src == "" {
		b.Skip("set SNAPFERRY_BENCH_IMAGE to a disk image to back up")
	}
	ctx := context.Background()
	for b.Loop() {
		_, r := memblobs.LocalRepo(b, 0, repo.ChunkerParams{})
		d, st, err := Backup(ctx, r, src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(st.BytesRead)
		b.ReportMetric(float64(d.Allocated>>20), "alloc-MiB")
		b.ReportMetric(float64(r.Stats().BytesStored>>20), "stored-MiB")
		if os.Getenv("SNAPFERRY_BENCH_RESTORE") != "" {
			if err := Restore(ctx, r, d, src+".restored", RestoreOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSubBlockHashes measures, over the allocated non-zero blocks of SNAPFERRY_BENCH_IMAGE
// (1 MiB blocks), the CPU time of what a backup with a fingerprint cache hashes per block it
// stores: the whole-block XXH3-128, the 16 sub-block XXH3-64 that patches need, and BLAKE3 (the
// blob id). With SNAPFERRY_BENCH_BASE, an earlier version of the image, it also counts the blocks
// that changed and how many of them would be stored as patches, and the bytes those keep.
//
//	SNAPFERRY_BENCH_IMAGE=v2.img SNAPFERRY_BENCH_BASE=v1.img go test -run '^$' -bench SubBlockHashes -benchtime 1x ./images/disk/
func BenchmarkSubBlockHashes(b *testing.B) {
	src := os.Getenv("SNAPFERRY_BENCH_IMAGE")
	if src == "" {
		b.Skip("set SNAPFERRY_BENCH_IMAGE to a disk image")
	}
	const bsz = 1 << 20
	sub := subBlockSize(bsz)
	f, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var base *os.File
	if p := os.Getenv("SNAPFERRY_BENCH_BASE"); p != "" {
		if base, err = os.Open(p); err != nil {
			b.Fatal(err)
		}
		defer base.Close()
	}
	size, err := fileSize(f)
	if err != nil {
		b.Fatal(err)
	}
	buf, old, zero := make([]byte, bsz), make([]byte, bsz), make([]byte, bsz)
	for b.Loop() {
		var tFast, tSub, tBlake time.Duration
		var blocks, changed, patched, pieces int
		m := extentMapper{f: f, size: size}
		next := int64(0)
		for off := int64(0); off < size; {
			start, end, ok, err := m.next(off)
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
			first, last := max(start/bsz, next), (end-1)/bsz
			for i := first; i <= last; i++ {
				n := int(min(bsz, size-i*bsz))
				if _, err := f.ReadAt(buf[:n], i*bsz); err != nil && err != io.EOF {
					b.Fatal(err)
				}
				if bytes.Equal(buf[:n], zero[:n]) {
					continue
				}
				blocks++
				t0 := time.Now()
				fastHash(buf[:n], 1)
				t1 := time.Now()
				h := hashSubBlocks(buf[:n], sub, 1)
				t2 := time.Now()
				blake3.Sum256(buf[:n])
				tFast, tSub, tBlake = tFast+t1.Sub(t0), tSub+t2.Sub(t1), tBlake+time.Since(t2)
				if base == nil {
					continue
				}
				if _, err := base.ReadAt(old[:n], i*bsz); err != nil && err != io.EOF {
					b.Fatal(err)
				}
				if bytes.Equal(buf[:n], old[:n]) {
					continue
				}
				changed++
				oh := hashSubBlocks(old[:n], sub, 1)
				if c := changedSubBlocks(&h, &oh, n, sub); worthPatching(c, n, sub) {
					patched++
					pieces += len(c)
				}
			}
			next = last + 1
			off = next * bsz
		}
		b.ReportMetric(float64(blocks), "blocks")
		b.ReportMetric(tFast.Seconds()*1000, "xxh3-128-ms")
		b.ReportMetric(tSub.Seconds()*1000, "subhash-ms")
		b.ReportMetric(tBlake.Seconds()*1000, "blake3-ms")
		if base != nil {
			b.ReportMetric(float64(changed), "changed-blocks")
			b.ReportMetric(float64(patched), "patched-blocks")
			b.ReportMetric(float64(pieces*sub)/(1<<20), "patch-MiB")
		}
	}
}

package disk

import (
	"context"
	"os"
	"testing"

	"github.com/snapferry/snapferry/images/disk/memblobs"
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

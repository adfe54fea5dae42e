package tree

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// BenchmarkBackupTree backs up the folder named by SNAPFERRY_BENCH_TREE (for the comparison
// with `rsync -a`, a copy of /usr/share) into a fresh local repository, flush included.
//
// SNAPFERRY_BENCH_WORKERS overrides the worker count.
//
//	SNAPFERRY_BENCH_TREE=/usr/share go test -run '^$' -bench BackupTree -benchtime 1x ./images/tree/
func BenchmarkBackupTree(b *testing.B) {
	src := os.Getenv("SNAPFERRY_BENCH_TREE")
	if src == "" {
		b.Skip("set SNAPFERRY_BENCH_TREE to a folder to back up")
	}
	ctx := context.Background()
	for b.Loop() {
		_, r := memblobs.LocalRepo(b, 0, repo.ChunkerParams{})
		workers, _ := strconv.Atoi(os.Getenv("SNAPFERRY_BENCH_WORKERS"))
		res, err := Backup(ctx, r, []string{src}, Options{Chunking: Chunking(r.Config().Chunker), Workers: workers})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(res.Stats.BytesRead)
		b.ReportMetric(float64(res.Stats.FilesNew), "files")
		b.ReportMetric(float64(len(res.Errors)), "errors")
	}
}

// BenchmarkBackupTreeMemory is BenchmarkBackupTree into an in-memory store: the walk, reads,
// chunking and hashing without compression and pack writing.
func BenchmarkBackupTreeMemory(b *testing.B) {
	src := os.Getenv("SNAPFERRY_BENCH_TREE")
	if src == "" {
		b.Skip("set SNAPFERRY_BENCH_TREE to a folder to back up")
	}
	for b.Loop() {
		res, err := Backup(context.Background(), memblobs.New(1<<20), []string{src}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(res.Stats.BytesRead)
	}
}

// BenchmarkRestoreTree restores a backup of SNAPFERRY_BENCH_TREE (held in memory) into a temp
// folder: the file creation, writing and metadata path without repository reads.
func BenchmarkRestoreTree(b *testing.B) {
	src := os.Getenv("SNAPFERRY_BENCH_TREE")
	if src == "" {
		b.Skip("set SNAPFERRY_BENCH_TREE to a folder to back up")
	}
	ctx := context.Background()
	bs := memblobs.New(1 << 20)
	res, err := Backup(ctx, bs, []string{src}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		errs, err := Restore(ctx, bs, res.Root, b.TempDir(), RestoreOptions{})
		if err != nil || len(errs) > 0 {
			b.Fatal(err, errs)
		}
		b.SetBytes(res.Stats.BytesRead)
	}
}

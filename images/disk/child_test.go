package disk

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// Some tests run a backup in a child process: to measure its peak memory on its own, or to
// run it under strace with failing syscalls. The child is this test binary, told what to do by
// environment variables.
const childEnv = "SNAPFERRY_DISK_TEST_CHILD"

func TestMain(m *testing.M) {
	if op := os.Getenv(childEnv); op != "" {
		os.Exit(runChild(op, os.Getenv(childEnv+"_PATH")))
	}
	os.Exit(m.Run())
}

// childResult is what a child prints as JSON.
type childResult struct {
	Disk    repo.Disk
	Stats   repo.Stats
	PeakRSS int64 // bytes, the child's own high-water mark
}

// peakRSS reads this process's resident high-water mark (VmHWM). Not the parent's rusage
// Maxrss: Linux carries the parent's peak into a child forked with a shared address space (as
// Go starts children) when it execs, so the child's Maxrss was the test binary's own peak
// (484 MiB for both disks once earlier tests had grown the parent), not the backup's.
func peakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kib); err != nil {
				return 0, fmt.Errorf("VmHWM line %q: %w", line, err)
			}
			return kib * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

func runChild(op, path string) int {
	ctx := context.Background()
	var bs repo.BlobStore
	switch op {
	case "backup-discard":
		bs = discardStore{blockSize: 1 << 20}
	case "backup-mem":
		bs = memblobs.New(testBlock)
	default:
		fmt.Fprintf(os.Stderr, "unknown child op %q\n", op)
		return 2
	}
	d, st, err := Backup(ctx, bs, path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	peak, err := peakRSS()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(childResult{d, st, peak}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child runs op on path in a child process, optionally under a wrapper command, and returns
// its result and peak RSS in bytes.
func child(t *testing.T, op, path string, wrapper ...string) (childResult, int64) {
	t.Helper()
	args := append(wrapper, os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+op, childEnv+"_PATH="+path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s %s: %v\n%s", op, path, err, stderr.String())
	}
	var r childResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child %s output %q: %v", op, out, err)
	}
	return r, r.PeakRSS
}

// A 2 TiB thin disk with a few MiB of data backs up reading only its data and in the same
// memory as a 2 GiB one: nothing in the pipeline grows with the apparent size. (How long it
// takes is logged, not asserted: speed belongs in `make bench`.)
func TestHugeSparseDiskMemoryIsFlat(t *testing.T) {
	const mib = 1 << 20
	regions := []region{
		{0, memblobs.RandBytes(1, 2*mib)},
		{1 << 30, memblobs.RandBytes(2, 3*mib)},
		{2<<30 - mib, memblobs.RandBytes(3, mib)},
	}
	small := tempPath(t, "small.img")
	makeSparse(t, small, 2<<30, regions...)
	huge := tempPath(t, "huge.img")
	makeSparse(t, huge, 2<<40, append(regions, region{2<<40 - 5*mib, memblobs.RandBytes(4, 2*mib)})...)

	smallRes, smallRSS := child(t, "backup-discard", small)
	start := time.Now()
	hugeRes, hugeRSS := child(t, "backup-discard", huge)
	elapsed := time.Since(start)
	t.Logf("2 GiB: rss %d MiB; 2 TiB: rss %d MiB, %v, read %d MiB, %d map chunks",
		smallRSS>>20, hugeRSS>>20, elapsed, hugeRes.Stats.BytesRead>>20, len(hugeRes.Disk.Map))
	if hugeRes.Disk.Size != 2<<40 || len(hugeRes.Disk.Map) != 512 {
		t.Fatalf("2 TiB disk: size %d, %d map chunks, want 512", hugeRes.Disk.Size, len(hugeRes.Disk.Map))
	}
	if hugeRes.Stats.BytesRead != 8*mib || smallRes.Stats.BytesRead != 6*mib {
		t.Fatalf("read %d and %d bytes, want only the allocated blocks", smallRes.Stats.BytesRead, hugeRes.Stats.BytesRead)
	}
	slack, limit := int64(24*mib), int64(48*mib)
	if raceEnabled { // shadow memory for the 64 MiB of short-lived map-chunk encodings
		slack, limit = 64*mib, 256*mib
	}
	if hugeRSS > smallRSS+slack || hugeRSS > limit {
		t.Fatalf("peak RSS %d MiB for 2 TiB vs %d MiB for 2 GiB: memory grows with the disk size", hugeRSS>>20, smallRSS>>20)
	}
}

// Where SEEK_DATA is unsupported (EINVAL), backup reads everything and still finds the holes
// by their zeros. strace makes every lseek fail in a real child process.
func TestBackupWithoutSeekData(t *testing.T) {
	strace := testkit.RequireTool(t, "strace")
	src, size, _, _ := roundTripImage(t)
	want, _ := child(t, "backup-mem", src)
	got, _ := child(t, "backup-mem", src, strace, "-f", "-qq", "-o", "/dev/null",
		"-e", "trace=lseek", "-e", "inject=lseek:error=EINVAL")
	if got.Stats.BytesRead != size {
		t.Fatalf("without SEEK_DATA read %d bytes, want the whole %d", got.Stats.BytesRead, size)
	}
	if want.Stats.BytesRead >= size {
		t.Fatalf("with SEEK_DATA read %d bytes of %d: holes were read", want.Stats.BytesRead, size)
	}
	if fmt.Sprint(got.Disk.Map) != fmt.Sprint(want.Disk.Map) || got.Disk.Allocated != want.Disk.Allocated {
		t.Fatal("block map differs when reading everything: zero blocks were not stored as holes")
	}
}

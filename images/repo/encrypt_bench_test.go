package repo

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store/local"
)

// benchImageBackup backs up a 1 GiB image of random (incompressible) 1 MiB blocks into a fresh
// repository per iteration, the way images/disk does: ids, SaveBlob from GOMAXPROCS workers,
// block-map chunks and a snapshot. Compare plain and encrypted with
//
//	go test -run '^$' -bench 'Backup1GiB' -benchtime 1x ./images/repo
func benchImageBackup(b *testing.B, encrypted bool) {
	const blocks = 1024
	ctx := context.Background()
	b.SetBytes(blocks << 20)
	// CPU time is the fair comparison on a shared machine, where wall time follows the load.
	cpu0 := cpuTime()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "repo")
		o := InitOptions{}
		if encrypted {
			o.Password = []byte("bench")
		}
		if _, err := Init(ctx, local.New(dir), o); err != nil {
			b.Fatal(err)
		}
		r, err := Open(ctx, local.New(dir), Options{TempDir: b.TempDir(), Password: o.Password, Hostname: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]ID, blocks)
		b.StartTimer()
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 1<<20)
				for i := w; i < blocks; i += workers {
					var key [32]byte
					key[0], key[1] = byte(i), byte(i>>8)
					_, _ = rand.NewChaCha8(key).Read(buf)
					ids[i] = r.BlobID(buf)
					if _, err := r.SaveBlob(ctx, DataBlob, ids[i], buf); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		disk := Disk{Name: "disk0", Path: "/bench.img", Format: "raw", Size: blocks << 20, BlockSize: 1 << 20}
		for first := 0; first < blocks; first += MapChunkBlocks {
			c := BlockMapChunk{First: uint64(first), IDs: ids[first:min(first+MapChunkBlocks, blocks)]}
			mb, _ := c.MarshalBinary()
			cid := r.BlobID(mb)
			if _, err := r.SaveBlob(ctx, TreeBlob, cid, mb); err != nil {
				b.Fatal(err)
			}
			disk.Map = append(disk.Map, cid)
		}
		if _, err := r.SaveSnapshot(ctx, &Snapshot{Kind: SnapshotImage, Source: "/bench.img", Disks: []Disk{disk}}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		r.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkBackup1GiBRandomPlain(b *testing.B)     { benchImageBackup(b, false) }
func BenchmarkBackup1GiBRandomEncrypted(b *testing.B) { benchImageBackup(b, true) }

package repo

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/snapferry/snapferry/images/store/local"
)

// benchBlocks makes n 1 MiB blocks: half random (incompressible), half text-like, each unique.
func benchBlock(i int, b []byte) {
	var key [32]byte
	key[0], key[1], key[2] = byte(i), byte(i>>8), byte(i>>16)
	rng := rand.NewChaCha8(key)
	if i%2 == 0 {
		_, _ = rng.Read(b)
		return
	}
	words := []string{"snapferry ", "backs ", "up ", "virtual ", "machines ", "over ", "ssh ", "0123456789 "}
	for j := 0; j < len(b); {
		j += copy(b[j:], words[rng.Uint64()%uint64(len(words))])
	}
}

func benchSave(b *testing.B, c Compression) {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "repo")
	if _, err := Init(ctx, local.New(dir), InitOptions{}); err != nil {
		b.Fatal(err)
	}
	r, err := Open(ctx, local.New(dir), Options{TempDir: b.TempDir(), Compression: c})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(1 << 20)
	var next atomic.Int64
	var peak atomic.Uint64
	b.ResetTimer()
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	per := (b.N + workers - 1) / workers
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for k := 0; k < per; k++ {
				i := int(next.Add(1))
				if i > b.N {
					return
				}
				benchBlock(i, buf)
				if _, err := r.SaveBlob(ctx, DataBlob, r.BlobID(buf), buf); err != nil {
					b.Error(err)
					return
				}
				if i%64 == 0 {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := r.Stats()
	b.ReportMetric(float64(st.BytesStored)/float64(st.BytesAdded+1), "stored/added")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

// BenchmarkSaveBlob measures the write path (hash excluded, compression, pack files, upload to a
// local folder) with 1 MiB blocks; -benchtime=2000x backs up ~2 GiB and reports the peak heap.
func BenchmarkSaveBlobAuto(b *testing.B) { benchSave(b, CompressionAuto) }
func BenchmarkSaveBlobFast(b *testing.B) { benchSave(b, CompressionFast) }
func BenchmarkSaveBlobMax(b *testing.B)  { benchSave(b, CompressionMax) }
func BenchmarkSaveBlobOff(b *testing.B)  { benchSave(b, CompressionOff) }

func BenchmarkLoadBlob(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join(b.TempDir(), "repo")
	if _, err := Init(ctx, local.New(dir), InitOptions{}); err != nil {
		b.Fatal(err)
	}
	r, err := Open(ctx, local.New(dir), Options{TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	const n = 64
	ids := make([]ID, n)
	buf := make([]byte, 1<<20)
	for i := range ids {
		benchBlock(i, buf)
		ids[i] = r.BlobID(buf)
		if _, err := r.SaveBlob(ctx, DataBlob, ids[i], buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if buf, err = r.LoadBlob(ctx, DataBlob, ids[i%n], buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIndexMemory loads an index of 1M blobs (as Open does) and reports the heap it holds
// per blob, the number behind the memory bound in docs/repository-format.md.
func BenchmarkIndexMemory(b *testing.B) {
	const packs, perPack = 32768, 32
	var files [][]byte
	for start := 0; start < packs; start += 4096 {
		var ips []indexedPack
		for p := start; p < start+4096; p++ {
			var pid ID
			pid[0], pid[1], pid[2] = byte(p), byte(p>>8), 0xaa
			ip := indexedPack{ID: pid}
			for k := 0; k < perPack; k++ {
				var bid ID
				n := p*perPack + k
				bid[0], bid[1], bid[2], bid[3] = byte(n), byte(n>>8), byte(n>>16), 0xbb
				ip.Blobs = append(ip.Blobs, packBlob{packEntry: packEntry{Type: DataBlob, Stored: 100, Raw: 100, ID: bid}, Offset: uint32(k * 100)})
			}
			ips = append(ips, ip)
		}
		files = append(files, encodeIndexFile(ips))
	}
	var total int64
	for _, f := range files {
		total += int64(len(f))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		x := newIndex()
		x.reserve(total)
		for _, f := range files {
			if err := decodeIndexFile(f, func(p indexedPack) error { x.appendBase(p.ID, p.Blobs); return nil }); err != nil {
				b.Fatal(err)
			}
		}
		x.sortBase()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(x.len()), "heap-bytes/blob")
		runtime.KeepAlive(x)
	}
}

// BenchmarkIndexLoadSpill loads 500 000 blobs into an index with a spill file as Open does
// (reserve, appendBase per pack of 4096, sortBase): the CPU a backup or restore spends on it
// (with the staged, sorted base: ~40 ms more system time than 8-byte keys, writing the
// records twice; user time alike).
func BenchmarkIndexLoadSpill(b *testing.B) {
	const n = 500000
	var packs [][]packBlob
	for from := 0; from < n; from += 4096 {
		var blobs []packBlob
		for i := from; i < min(n, from+4096); i++ {
			var id ID
			binary.BigEndian.PutUint64(id[:], uint64(i)*0x9e3779b97f4a7c15)
			binary.LittleEndian.PutUint64(id[8:], uint64(i))
			blobs = append(blobs, packBlob{packEntry: packEntry{Type: DataBlob, ID: id}, Offset: uint32(i)})
		}
		packs = append(packs, blobs)
	}
	dir := b.TempDir()
	b.ResetTimer()
	for range b.N {
		x := newIndex()
		x.spill = newSpillFile(dir)
		x.reserve(n * indexEntrySize)
		for p, blobs := range packs {
			var pack ID
			binary.LittleEndian.PutUint64(pack[:], uint64(p))
			x.appendBase(pack, blobs)
		}
		x.sortBase()
		x.spill.f.Close()
	}
}

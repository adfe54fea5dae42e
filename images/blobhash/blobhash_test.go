package blobhash

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3"
)

// lengths around every boundary the hasher treats apart: a block, a chunk, a SIMD group, the
// tree's power-of-two subtrees, and a disk block.
var lengths = []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 2049, 3 * 1024, 5*1024 + 7,
	16*1024 - 1, 16 * 1024, 16*1024 + 1, 17 * 1024, 31*1024 + 5, 32 * 1024, 33 * 1024, 100_000,
	1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 12345}

func input(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestSum256MatchesLibrary(t *testing.T) {
	key := input(32, 42)
	for _, n := range lengths {
		data := input(n, uint64(n))
		if got, want := Sum256(data), blake3.Sum256(data); got != want {
			t.Errorf("%d bytes: %x, library %x", n, got, want)
		}
		ref := blake3.New(32, key)
		_, _ = ref.Write(data)
		if got, want := SumKeyed256(key, data), ref.Sum(nil); !bytes.Equal(got[:], want) {
			t.Errorf("%d bytes keyed: %x, library %x", n, got, want)
		}
	}
}

// TestWritesInPiecesMatchLibrary writes the same bytes in random pieces (a pack is hashed blob by
// blob, at any alignment), keyed and unkeyed.
func TestWritesInPiecesMatchLibrary(t *testing.T) {
	key := input(32, 99)
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range lengths {
		data := input(n, uint64(n)+1)
		for round := range 8 {
			for _, keyed := range []bool{false, true} {
				h, ref := New(), blake3.New(32, nil)
				if keyed {
					h, ref = NewKeyed(key), blake3.New(32, key)
				}
				rest := data
				for len(rest) > 0 {
					k := 1 + r.IntN(min(len(rest), []int{7, 1500, 40_000, 600_000}[round%4]))
					_, _ = h.Write(rest[:k])
					rest = rest[k:]
				}
				_, _ = ref.Write(data)
				if got, want := h.Sum(nil), ref.Sum(nil); !bytes.Equal(got, want) {
					t.Fatalf("%d bytes, round %d, keyed %v: %x, library %x", n, round, keyed, got, want)
				}
			}
		}
	}
}

func TestResetAndSumGoOn(t *testing.T) {
	h := NewKeyed(input(32, 5))
	data := input(70_000, 3)
	_, _ = h.Write(data[:40_000])
	_ = h.Sum256() // summing in the middle changes nothing
	_, _ = h.Write(data[40_000:])
	first := h.Sum256()
	h.Reset()
	_, _ = h.Write(data)
	if again := h.Sum256(); again != first {
		t.Fatalf("after Reset: %x, before %x", again, first)
	}
	ref := blake3.New(32, input(32, 5))
	_, _ = ref.Write(data)
	if want := ref.Sum(nil); !bytes.Equal(first[:], want) {
		t.Fatalf("%x, library %x", first, want)
	}
}

// TestNoGoroutines is why the package exists: hashing a disk block starts no goroutine (the
// library's Sum256 starts 64 for 1 MiB).
func TestNoGoroutines(t *testing.T) {
	data := input(1<<20, 4)
	allocs := testing.AllocsPerRun(5, func() { _ = Sum256(data) })
	if allocs != 0 {
		t.Fatalf("Sum256 of 1 MiB allocated %.0f times per call; want 0 (a goroutine allocates)", allocs)
	}
	if lib := testing.AllocsPerRun(5, func() { _ = blake3.Sum256(data) }); lib == 0 {
		t.Fatalf("the library's Sum256 no longer allocates: this package may be unneeded now")
	}
}

func BenchmarkSum256(b *testing.B) {
	data := input(1<<20, 4)
	b.SetBytes(int64(len(data)))
	b.Run("blobhash", func(b *testing.B) {
		for b.Loop() {
			_ = Sum256(data)
		}
	})
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			_ = blake3.Sum256(data)
		}
	})
}

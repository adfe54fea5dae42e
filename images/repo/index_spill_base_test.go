package repo

import (
	"encoding/binary"
	"path/filepath"
	"testing"
)

// loadBase loads n blobs into a fresh index with a spill file the way Open does (reserve,
// appendBase per pack of 4096, sortBase); the first dups blobs are listed by a second pack too.
// stageDir, if set, is where the staging file is to go instead of the spill file's folder. It
// returns the index, the ids and the staging memory (bytes) at the end of the load.
func loadBase(t *testing.T, n, dups int, stageDir string) (*index, []ID, int) {
	t.Helper()
	x := newIndex()
	if x.spill = newSpillFile(t.TempDir()); x.spill == nil {
		t.Fatal("no spill file")
	}
	x.closeSpill()
	if stageDir != "" {
		x.spill.dir = stageDir
	}
	ids := make([]ID, n)
	for i := range ids {
		binary.BigEndian.PutUint64(ids[i][:], uint64(i)*0x9e3779b97f4a7c15) // spread prefixes
		binary.LittleEndian.PutUint64(ids[i][8:], uint64(i))
	}
	x.reserve(int64((n + dups) * indexEntrySize))
	add := func(p int, from, to int) {
		var pack ID
		binary.LittleEndian.PutUint64(pack[:], uint64(p))
		var blobs []packBlob
		for i := from; i < to; i++ {
			blobs = append(blobs, packBlob{packEntry: packEntry{Type: DataBlob, ID: ids[i]}, Offset: uint32(i)})
		}
		x.appendBase(pack, blobs)
	}
	p := 0
	for from := 0; from < n; from += 4096 {
		add(p, from, min(n, from+4096))
		p++
	}
	add(p, 0, dups)
	loading := x.load.memBytes()
	x.sortBase()
	return x, ids, loading
}

// The base that a backup with a parent and a restore load at Open keeps 4 bytes per blob in
// memory at 50 000 blobs and 2.5 at 500 000: its records go to the spill file in the base's
// order, so a key's place gives its record and only the 4-byte id prefix is kept, from 262 144
// blobs only its low half beside a table of 65 537 positions (8 bytes per blob before: the
// prefix and a record number, 4 MB of what grew from 50 000 to 500 000 files). The load stages
// records in buckets: well under a byte per blob of buffers while index files load. Every blob
// is found with the copy sortBase picks; counted with the index's own accounting, not RSS.
func TestLoadedBaseBytesPerBlob(t *testing.T) {
	for _, n := range []int{50000, 500000} {
		x, ids, loading := loadBase(t, n, 100, "")
		// 4 or 2 bytes per blob and a slot for each duplicate listing the load counted, and
		// the table of the split prefixes.
		most := 4 * float64(n+100) / float64(n)
		if n >= splitPrefixesFrom {
			most = (2*float64(n+100) + 4*(1<<16+1)) / float64(n)
		}
		if got := float64(x.cbase.bytes()) / float64(n); got > most {
			t.Errorf("%d blobs loaded: the base holds %.3f bytes per blob, want at most %.3f", n, got, most)
		}
		if got := float64(loading) / float64(n); got > 1 {
			t.Errorf("%d blobs loading: staging held %.2f bytes per blob, want at most 1", n, got)
		}
		if x.len() != n || x.keyBytes != x.cbase.bytes() {
			t.Fatalf("%d blobs: %d indexed, %d key bytes counted for %d held", n, x.len(), x.keyBytes, x.cbase.bytes())
		}
		for i := 0; i < n; i += 37 {
			e, ok := x.lookup(ids[i])
			if !ok || e.offset != uint32(i) || e.pack != uint32(i/4096) {
				t.Fatalf("%d blobs: blob %d: %+v %v", n, i, e, ok)
			}
			if want := 1 + btoi(i < 100); len(x.copies(ids[i])) != want {
				t.Fatalf("%d blobs: blob %d has %d copies, want %d", n, i, len(x.copies(ids[i])), want)
			}
		}
		var other ID
		other[31] = 1
		if _, ok := x.lookup(other); ok {
			t.Fatal("a blob never stored is found")
		}
	}
}

// Without a staging file (its folder cannot take one) the staged chunks stay in memory and the
// base is the same.
func TestLoadedBaseWithoutStagingFile(t *testing.T) {
	const n = 30000
	x, ids, _ := loadBase(t, n, 10, filepath.Join(t.TempDir(), "missing"))
	if x.len() != n {
		t.Fatalf("%d blobs indexed, want %d", x.len(), n)
	}
	for i := range ids {
		if e, ok := x.lookup(ids[i]); !ok || e.offset != uint32(i) {
			t.Fatalf("blob %d: %+v %v", i, e, ok)
		}
	}
}

// Split prefixes give back every prefix, the edges of the high and low halves included, and
// find the first prefix at or above any value.
func TestBasePrefixesSplit(t *testing.T) {
	vals := []uint32{0, 0, 1, 0xffff, 0x10000, 0x10000, 0x1ffff, 0x7fff8000, 0xfffe0000, 0xffff0000, 0xffffffff, 0xffffffff}
	for _, split := range []bool{false, true} {
		p := newBasePrefixes(len(vals), split)
		for _, v := range vals {
			p.add(v)
		}
		p.done()
		if p.len() != len(vals) {
			t.Fatalf("split %v: %d prefixes, want %d", split, p.len(), len(vals))
		}
		for i, v := range vals {
			if got := p.at(i); got != v {
				t.Fatalf("split %v: prefix %d is %#x, want %#x", split, i, got, v)
			}
		}
		for _, v := range append(vals, 2, 0xfffe, 0x20000, 0x80000000, 0xfffeffff, 0xfffffffe) {
			want := len(vals)
			for i, w := range vals {
				if w >= v {
					want = i
					break
				}
			}
			if got := p.first(v); got != want {
				t.Fatalf("split %v: first(%#x) = %d, want %d", split, v, got, want)
			}
		}
	}
}

// The staged base picks the same copy of every blob as the full entries prune and check load
// (sortBase), and keeps the same others: copies in several packs, one marked damaged, a patch
// beside a whole copy, one copy listed by two index files.
func TestLoadedBaseMatchesFullEntries(t *testing.T) {
	full, staged := newIndex(), newIndex()
	if staged.spill = newSpillFile(t.TempDir()); staged.spill == nil {
		t.Fatal("no spill file")
	}
	staged.closeSpill()
	const n = 3000
	ids := make([]ID, n)
	for i := range ids {
		binary.BigEndian.PutUint32(ids[i][:], uint32(i%700)*0x9e3779b9) // shared prefixes too
		binary.LittleEndian.PutUint32(ids[i][28:], uint32(i))
	}
	staged.reserve(4 * n * indexEntrySize)
	for p := range 4 {
		var pack ID
		pack[0] = byte(p + 1)
		var blobs []packBlob
		for i := range ids {
			if (i+p)%3 == 0 {
				continue // each pack holds two thirds of the blobs
			}
			b := packBlob{packEntry: packEntry{Type: DataBlob, ID: ids[i]}, Offset: uint32(i)}
			switch {
			case p == 0 && i%5 == 0:
				b.Flags |= blobFlagDamaged
			case p == 1 && i%7 == 0:
				b.Flags |= blobFlagPatch
			}
			blobs = append(blobs, b)
		}
		for _, x := range []*index{full, staged} {
			x.appendBase(pack, blobs)
			if p == 2 {
				x.appendBase(pack, blobs[:50]) // the same copies listed again
			}
		}
	}
	full.sortBase()
	staged.sortBase()
	if full.len() != staged.len() {
		t.Fatalf("%d blobs with full entries, %d staged", full.len(), staged.len())
	}
	for i, id := range ids {
		a, b := full.copies(id), staged.copies(id)
		if len(a) == 0 || len(a) != len(b) {
			t.Fatalf("blob %d: copies %+v with full entries, %+v staged", i, a, b)
		}
		for k := range a {
			if a[k] != b[k] {
				t.Fatalf("blob %d: copies %+v with full entries, %+v staged", i, a, b)
			}
		}
	}
}

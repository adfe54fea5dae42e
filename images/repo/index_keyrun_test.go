package repo

import (
	"encoding/binary"
	"testing"
)

// fillCompact indexes n blobs the way a first backup does: sealed in runs of every blobs (an
// index file each), merged as they come. It returns the index and the ids.
func fillCompact(t *testing.T, n, every int) (*index, []ID) {
	t.Helper()
	x := newIndex()
	if x.spill = newSpillFile(t.TempDir()); x.spill == nil {
		t.Fatal("no spill file")
	}
	x.closeSpill()
	ids := make([]ID, 0, n)
	for len(ids) < n {
		var pack ID
		binary.LittleEndian.PutUint64(pack[:], uint64(len(ids)))
		num := x.addPack(pack)
		ip := indexedPack{ID: pack}
		for i := len(ids); i < min(n, len(ids)+every); i++ {
			var id ID
			binary.BigEndian.PutUint64(id[:], uint64(i)*0x9e3779b97f4a7c15) // spread prefixes
			binary.LittleEndian.PutUint64(id[8:], uint64(i))
			b := packBlob{packEntry: packEntry{Type: DataBlob, ID: id}, Offset: uint32(i)}
			x.overlay[id] = entryOf(num, b)
			ip.Blobs = append(ip.Blobs, b)
		}
		for _, b := range ip.Blobs {
			ids = append(ids, b.ID)
		}
		x.seal([]indexedPack{ip})
	}
	return x, ids
}

// The compact index of a first backup stays at ~8 bytes per blob at its peak, merges included,
// at 50 000 and at 500 000 blobs: runs are kept in blocks that a merge frees as it consumes
// them. With one array per run the same count gave ~16 bytes per blob at the last big merge
// (both inputs and the output at once). Counted by the index's own block accounting, not RSS.
func TestCompactIndexPeakFlat(t *testing.T) {
	var perBlob [2]float64
	for k, n := range []int{50000, 500000} {
		x, ids := fillCompact(t, n, 2048)
		perBlob[k] = float64(x.peakKeyBytes) / float64(n)
		// 8 bytes per blob and the blocks a merge has partly read or written (one per input,
		// one output, one while trimming): ~1.3 KB/blob at 100 000 blobs, nothing at millions.
		if most := 8 + float64(4*runBlock*spillKeySize)/float64(n); perBlob[k] > most {
			t.Errorf("%d blobs: the compact runs peaked at %.2f bytes per blob, want at most %.2f", n, perBlob[k], most)
		}
		t.Logf("%d blobs: peak %.2f bytes per blob", n, perBlob[k])
		if x.keyBytes != x.memBytes()-cap(x.spill.tail) {
			t.Errorf("%d blobs: %d bytes of keys counted, the runs hold %d", n, x.keyBytes, x.memBytes()-cap(x.spill.tail))
		}
		if x.len() != n {
			t.Fatalf("%d blobs indexed, want %d", x.len(), n)
		}
		for i := 0; i < n; i += 97 {
			if e, ok := x.lookup(ids[i]); !ok || e.offset != uint32(i) {
				t.Fatalf("blob %d: %+v %v", i, e, ok)
			}
		}
		var other ID
		other[31] = 1
		if _, ok := x.lookup(other); ok {
			t.Fatal("a blob never stored is found")
		}
	}
	if perBlob[1] > perBlob[0]*1.1 {
		t.Errorf("peak bytes per blob grew from %.2f to %.2f with ten times the blobs", perBlob[0], perBlob[1])
	}
}

// A positional run (the base loaded at Open) merges like one made of blocks, and merging frees
// both inputs' accounting.
func TestKeyRunPositionalMerge(t *testing.T) {
	for _, split := range []bool{false, true} {
		testKeyRunPositionalMerge(t, split)
	}
}

func testKeyRunPositionalMerge(t *testing.T, split bool) {
	x := newIndex()
	x.spill = newSpillFile(t.TempDir())
	x.closeSpill()
	pre := newBasePrefixes(3*runBlock+5, split)
	first := x.spill.next()
	for i := range 3*runBlock + 5 {
		var id ID
		binary.BigEndian.PutUint32(id[:], uint32(2*i))
		x.spill.add(id, indexEntry{offset: uint32(i)})
		pre.add(prefixOf(id))
	}
	pre.done()
	a := x.positionalRun(pre, first)
	var b keyRun
	for i := range runBlock + 1 {
		var id ID
		binary.BigEndian.PutUint32(id[:], uint32(2*i+1))
		x.push(&b, x.keyOf(id, indexEntry{offset: uint32(i)}))
	}
	x.trim(&b)
	out := x.mergeRuns(a, b)
	if out.n != 4*runBlock+6 || x.keyBytes != out.bytes() {
		t.Fatalf("merged %d keys holding %d bytes, %d counted; want %d keys", out.n, out.bytes(), x.keyBytes, 4*runBlock+6)
	}
	for i := 1; i < out.n; i++ {
		if out.at(i-1).pfx >= out.at(i).pfx {
			t.Fatalf("key %d out of order", i)
		}
	}
	for i := range out.n {
		id, e, ok := x.spill.read(out.at(i).ref)
		if want := out.at(i).pfx / 2; !ok || prefixOf(id) != out.at(i).pfx || e.offset != want {
			t.Fatalf("key %d: record %x offset %d, want offset %d", i, id[:4], e.offset, want)
		}
	}
}

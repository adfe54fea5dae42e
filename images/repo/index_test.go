package repo

import (
	"testing"

	"lukechampine.com/blake3"
)

// TestIndexSealKeepsEveryBlob simulates a long first backup: packs are uploaded and indexed in
// batches; every blob must stay findable, the map must empty, and segments stay few.
func TestIndexSealKeepsEveryBlob(t *testing.T) {
	x := newIndex()
	var loaded []packBlob
	for i := 0; i < 100; i++ {
		loaded = append(loaded, packBlob{packEntry: packEntry{Type: DataBlob, ID: blake3.Sum256([]byte{byte(i), 1})}})
	}
	var pack0 ID
	pack0[0] = 1
	x.appendBase(pack0, loaded)
	x.sortBase()
	n := 0
	for batch := 0; batch < 300; batch++ {
		var packs []indexedPack
		for p := 0; p < 3; p++ {
			var pid ID
			pid[0], pid[1], pid[2] = 2, byte(batch), byte(p)
			num := x.addPack(pid)
			ip := indexedPack{ID: pid}
			for b := 0; b < 7; b++ {
				n++
				bl := packBlob{packEntry: packEntry{Type: DataBlob, ID: blake3.Sum256([]byte{byte(n), byte(n >> 8), 2})}, Offset: uint32(b)}
				x.overlay[bl.ID] = entryOf(num, bl)
				ip.Blobs = append(ip.Blobs, bl)
			}
			packs = append(packs, ip)
		}
		x.seal(packs)
		if len(x.overlay) != 0 {
			t.Fatalf("batch %d: %d blobs left in the map", batch, len(x.overlay))
		}
		if len(x.segs) > 12 {
			t.Fatalf("batch %d: %d segments", batch, len(x.segs))
		}
	}
	if x.len() != 100+n {
		t.Fatalf("index holds %d blobs, want %d", x.len(), 100+n)
	}
	for i := 1; i <= n; i++ {
		if _, ok := x.lookup(blake3.Sum256([]byte{byte(i), byte(i >> 8), 2})); !ok {
			t.Fatalf("blob %d lost", i)
		}
	}
	for i := 0; i < 100; i++ {
		if _, ok := x.lookup(blake3.Sum256([]byte{byte(i), 1})); !ok {
			t.Fatalf("loaded blob %d lost", i)
		}
	}
}

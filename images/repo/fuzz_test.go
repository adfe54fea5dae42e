package repo

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func samplePackEntries() []packEntry {
	var a, b ID
	a[0], b[0] = 1, 2
	return []packEntry{
		{Type: DataBlob, Compression: compressionZstd, Stored: 10, Raw: 100, ID: a},
		{Type: TreeBlob, Compression: compressionNone, Stored: 7, Raw: 7, ID: b},
	}
}

// FuzzDecodePackTail: any bytes either decode to entries that re-encode to the same header, or
// give an error; never a panic or a huge allocation.
func FuzzDecodePackTail(f *testing.F) {
	tail := encodePackTail(samplePackEntries(), nil)
	pack := append(make([]byte, 17), tail...)
	f.Add(pack)
	f.Add(encodePackTail(nil, nil))
	f.Add(pack[:len(pack)-1])
	f.Add(append([]byte{0}, pack...))
	bad := bytes.Clone(pack)
	bad[20] ^= 1
	f.Add(bad)
	f.Fuzz(func(t *testing.T, b []byte) {
		blobs, err := decodePackTail(b, int64(len(b)), nil)
		if err != nil {
			return
		}
		entries := make([]packEntry, len(blobs))
		var off uint32
		for i, bl := range blobs {
			entries[i] = bl.packEntry
			if bl.Offset != off {
				t.Fatalf("blob %d at offset %d, want %d", i, bl.Offset, off)
			}
			off += bl.Stored
		}
		re := encodePackTail(entries, nil)
		if !bytes.Equal(re, b[len(b)-len(re):]) || int(off)+len(re) != len(b) {
			t.Fatalf("decoded header does not re-encode to the input")
		}
	})
}

func FuzzDecodeIndexFile(f *testing.F) {
	var p ID
	p[3] = 9
	blobs := []packBlob{{packEntry: samplePackEntries()[0]}, {packEntry: samplePackEntries()[1], Offset: 10}}
	good := encodeIndexFile([]indexedPack{{ID: p, Blobs: blobs}})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(encodeIndexFile(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var packs []indexedPack
		err := decodeIndexFile(b, func(p indexedPack) error {
			p.Blobs = append([]packBlob(nil), p.Blobs...)
			packs = append(packs, p)
			return nil
		})
		if err == nil && !bytes.Equal(encodeIndexFile(packs), b) {
			t.Fatalf("decoded index file does not re-encode to the input")
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	var id ID
	id[0] = 7
	sn := Snapshot{Version: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Host: "esx1", Kind: SnapshotVM,
		Source: "web01", Tree: &id, Disks: []Disk{{Name: "vmdk0", Map: []ID{id}, Size: 1 << 30, BlockSize: 1 << 20}},
		VM: &VMInfo{Name: "web01", Mode: "hot"}}
	good, _ := json.Marshal(sn)
	f.Add(good)
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"tree":"zz"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		if s.Version != SnapshotVersion {
			t.Fatalf("accepted version %d", s.Version)
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		s2, err := decodeSnapshot(again)
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if s2.Source != s.Source || len(s2.Disks) != len(s.Disks) {
			t.Fatalf("round trip changed the snapshot")
		}
	})
}

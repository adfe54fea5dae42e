package repo

import (
	"bytes"
	"testing"
	"time"
)

func fuzzCryptor(t testing.TB) *cryptor {
	mk := &masterKey{Repository: "fuzz", Encrypt: bytes.Repeat([]byte{7}, 32), IDKey: bytes.Repeat([]byte{9}, 32)}
	c, err := newCryptor(mk)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzDecodeSealedPackTail: the tail of an encrypted repository's pack either opens and decodes
// to entries that are all sealed and fill the pack, or gives an error; never a panic.
func FuzzDecodeSealedPackTail(f *testing.F) {
	c := fuzzCryptor(f)
	entries := samplePackEntries()
	for i := range entries {
		entries[i].Flags = blobFlagSealed
		entries[i].Stored = entries[i].Raw + sealOverhead
		if entries[i].Compression == compressionZstd {
			entries[i].Stored = 60
		}
	}
	var body int
	for _, e := range entries {
		body += int(e.Stored)
	}
	pack := append(make([]byte, body), encodePackTail(entries, c)...)
	f.Add(pack)
	f.Add(encodePackTail(nil, c))
	f.Add(encodePackTail(entries, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		blobs, err := decodePackTail(b, int64(len(b)), c)
		if err != nil {
			return
		}
		var off int64
		for i, bl := range blobs {
			if bl.Flags&blobFlagSealed == 0 || int64(bl.Offset) != off {
				t.Fatalf("blob %d: flags %#x offset %d (want sealed at %d)", i, bl.Flags, bl.Offset, off)
			}
			off += int64(bl.Stored)
		}
		if off+packTailSize(len(blobs), c) != int64(len(b)) {
			t.Fatalf("blobs and header do not fill the pack")
		}
	})
}

// FuzzDecodeKeyFile: key files come from the store, which the threat model does not trust.
// Decoding never panics, and whatever decodes asks for bounded scrypt memory; opening it with a
// password fails cleanly (only small parameters are tried, to keep the fuzzer fast).
func FuzzDecodeKeyFile(f *testing.F) {
	// Fixed key material: fuzz workers run this setup again and must agree with the seeds the
	// coordinator sends them.
	mk := &masterKey{Repository: "fuzz", Encrypt: bytes.Repeat([]byte{1}, 32), IDKey: bytes.Repeat([]byte{2}, 32)}
	good, err := sealMasterKey(mk, []byte("pw"), KDFParams{N: 16, R: 1, P: 1}, time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"kdf":"scrypt","n":1073741824,"r":8,"p":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA==","data":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := decodeKeyFile(b)
		if err != nil {
			return
		}
		if mem := 128 * int64(kf.N) * int64(kf.R) * int64(kf.P); mem > maxKDFMemory {
			t.Fatalf("key file asks for %d bytes of scrypt memory", mem)
		}
		if kf.N*kf.R*kf.P <= 1<<10 {
			if got, err := kf.unseal([]byte("pw"), "fuzz"); err == nil && !bytes.Equal(got.Encrypt, mk.Encrypt) {
				t.Fatalf("a changed key file opened to another master key")
			}
		}
	})
}

// FuzzBlockMapChunk: block maps are read by restore and check; a decoded chunk re-encodes to
// its input and never covers more than MapChunkBlocks blocks.
func FuzzBlockMapChunk(f *testing.F) {
	c := BlockMapChunk{First: 4096, IDs: []ID{{1}, {}, {3}}}
	b, _ := c.MarshalBinary()
	f.Add(b)
	f.Add(b[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		var c BlockMapChunk
		if err := c.UnmarshalBinary(b); err != nil {
			return
		}
		if len(c.IDs) > MapChunkBlocks {
			t.Fatalf("%d ids in one chunk", len(c.IDs))
		}
		if re, _ := c.MarshalBinary(); !bytes.Equal(re, b) {
			t.Fatalf("chunk re-encodes differently")
		}
	})
}

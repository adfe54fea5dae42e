package wire

import (
	"bytes"
	"testing"

	"github.com/snapferry/snapferry/images/store"
)

// FuzzDecodeStoreArgs: the argument decoders a server runs on every client request never panic,
// and what they accept re-encodes to the same bytes (one encoding per value).
func FuzzDecodeStoreArgs(f *testing.F) {
	f.Add(EncodeHandle(store.Handle{Kind: store.KindData, Name: "ab01"}))
	f.Add(EncodeLoadArgs(LoadArgs{Handle: store.Handle{Kind: store.KindIndex, Name: "x"}, Offset: 5, Length: -1}))
	f.Add(EncodeKind(store.KindSnapshots))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := DecodeHandle(b); err == nil && !bytes.Equal(EncodeHandle(h), b) {
			t.Fatalf("handle %q re-encodes differently", h)
		}
		if a, err := DecodeLoadArgs(b); err == nil && !bytes.Equal(EncodeLoadArgs(a), b) {
			t.Fatalf("load args %+v re-encode differently", a)
		}
		if k, err := DecodeKind(b); err == nil && !bytes.Equal(EncodeKind(k), b) {
			t.Fatalf("kind %q re-encodes differently", k)
		}
		if fi, err := DecodeFileInfo(b); err == nil && fi.Size < 0 {
			t.Fatalf("file info with negative size %d", fi.Size)
		}
	})
}

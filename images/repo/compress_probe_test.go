package repo

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The probe says yes to text and zeros, no to random bytes, and always yes for small blobs.
func TestWorthCompressing(t *testing.T) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	random := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{7}).Read(random)
	text := bytes.Repeat([]byte("snapferry backs up VMs on ESXi hosts. "), 1<<20/38+1)[:1<<20]
	scratch := make([]byte, 0, 128<<10)
	if worthCompressing(enc, random, scratch) {
		t.Error("random data judged compressible")
	}
	if !worthCompressing(enc, text, scratch) || !worthCompressing(enc, make([]byte, 1<<20), scratch) {
		t.Error("text or zeros judged incompressible")
	}
	if !worthCompressing(enc, random[:100<<10], scratch) {
		t.Error("small blobs must always be tried")
	}
}

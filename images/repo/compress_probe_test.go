package repo

import (
	"bytes"
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
	if _, err := (randSource{seed: 7}).Read(random); err != nil {
		t.Fatal(err)
	}
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

// randSource is a deterministic xorshift stream (incompressible).
type randSource struct{ seed uint64 }

func (r randSource) Read(p []byte) (int, error) {
	x := r.seed | 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x)
	}
	return len(p), nil
}

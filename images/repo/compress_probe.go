package repo

import "github.com/klauspost/compress/zstd"

// Probe sizes: blobs of at least probeMin bytes are probed with probeParts samples of
// probeSample bytes each before being compressed whole.
const (
	probeMin    = 256 << 10
	probeSample = 16 << 10
	probeParts  = 3
	// probeKeep: a probe must shrink to at most this share of its size for the blob to be
	// compressed; random data (encrypted guest disks, media, archives) comes out at ~100%.
	probeKeep = 0.97
)

// worthCompressing guesses, at about 5% of the cost of compressing it, whether data would
// shrink: it compresses samples from its start, middle and end. Incompressible blocks are
// common in disk images (encrypted volumes, compressed files), and zstd spends as long on them
// as on text only to give up; borg's "auto" mode makes the same bet with a cheap trial. A
// mixed block whose samples all miss its compressible part is stored raw: bigger, never wrong.
func worthCompressing(enc *zstd.Encoder, data []byte, scratch []byte) bool {
	if len(data) < probeMin {
		return true
	}
	sample := scratch[:0]
	step := (len(data) - probeSample) / (probeParts - 1)
	for i := 0; i < probeParts; i++ {
		off := i * step
		sample = append(sample, data[off:off+probeSample]...)
	}
	out := enc.EncodeAll(sample, sample[len(sample):len(sample)])
	return float64(len(out)) <= probeKeep*float64(len(sample))
}

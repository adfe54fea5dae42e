package repo

import (
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression is what a writer does with each new blob. It is a per-run choice (backup
// --compression) with a per-repository default (init --compression, the config's
// "compression"); every blob records the codec it was stored with, so one repository holds any
// mix and every reader reads all of them.
type Compression string

const (
	// CompressionAuto is zstd at its fastest level after a cheap compressibility probe: the
	// default, and what repositories made before the choice existed use.
	CompressionAuto Compression = "auto"
	// CompressionFast is S2 (a Snappy successor): several times zstd's speed for ~15% more
	// bytes on disk images, for hosts whose backup window is CPU-bound.
	CompressionFast Compression = "fast"
	// CompressionMax is zstd at its "better" level: smaller, about twice the CPU of auto.
	CompressionMax Compression = "max"
	// CompressionOff stores blobs raw (already compressed or encrypted data).
	CompressionOff Compression = "off"
)

// configZstd is the config word for CompressionAuto, kept so older snapferry versions still
// open repositories made with the default.
const configZstd = "zstd"

// Codec bytes in pack headers and index entries. compPatch (0x80) and compDamaged (0x40) are
// kept free.
const (
	compressionNone = 0
	compressionZstd = 1
	compressionS2   = 2
)

// ParseCompression reads a user's --compression word. The empty string is "use the
// repository's default".
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(strings.ToLower(strings.TrimSpace(s))); c {
	case "", CompressionAuto, CompressionFast, CompressionMax, CompressionOff:
		return c, nil
	case configZstd:
		return CompressionAuto, nil
	}
	return "", fmt.Errorf("compression %q: want auto, fast, max or off", s)
}

// configWord is how c is written into a new config.
func (c Compression) configWord() string {
	if c == "" || c == CompressionAuto {
		return configZstd
	}
	return string(c)
}

// knownCodec says whether a pack or index entry's codec byte is one this version decodes.
func knownCodec(b uint8) bool {
	return b == compressionNone || b == compressionZstd || b == compressionS2
}

// codecs holds the encoders and the decoder of an open repository. The zstd encoder at the
// fastest level is always there (the probe uses it); the "better" encoder is made on first
// use, since only --compression=max runs need its larger tables.
type codecs struct {
	n    int
	fast *zstd.Encoder
	dec  *zstd.Decoder

	maxOnce sync.Once
	max     *zstd.Encoder
	maxErr  error
}

// fastWindow is the zstd window of the default (auto) encoder; see newCodecs.
const fastWindow = 1 << 20

// newCodecs makes the zstd coders; at most n run at once (memory: see maxCodecs).
func newCodecs(n int) (*codecs, error) {
	// No frame checksum: every blob is verified against its id (BLAKE3, or a keyed hash) when
	// read, so zstd's own xxhash would only cost time. Frames that carry one still decode.
	//
	// The window is 1 MiB, an image block, instead of the level's 4 MiB: each of the n encoders
	// keeps a history of window+128 KiB for good, so 4 MiB chunks of a file-tree backup pinned
	// 8 MiB on two cores. Image blocks compress exactly as before; a tree chunk loses only
	// matches more than 1 MiB back. Ids hash the plaintext, so deduplication is unaffected.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false),
		zstd.WithEncoderConcurrency(n), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(fastWindow))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(n),
		zstd.WithDecoderMaxMemory(MaxBlobSize), zstd.WithDecoderLowmem(true))
	if err != nil {
		enc.Close()
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &codecs{n: n, fast: enc, dec: dec}, nil
}

func defaultCodecs() int { return min(runtime.GOMAXPROCS(0), maxCodecs) }

func (c *codecs) close() {
	c.fast.Close()
	c.dec.Close()
	if c.max != nil {
		c.max.Close()
	}
}

// encode compresses data into scratch as mode asks and returns the codec byte and the stored
// bytes; it returns (compressionNone, data) when compressing would not make data smaller.
func (c *codecs) encode(mode Compression, data, scratch []byte) (uint8, []byte, error) {
	var out []byte
	var codec uint8
	switch mode {
	case CompressionOff:
		return compressionNone, data, nil
	case CompressionFast:
		// S2 gives up on incompressible input by itself, about as fast as a probe would.
		out, codec = s2.Encode(scratch[:cap(scratch)], data), compressionS2
	case CompressionMax:
		c.maxOnce.Do(func() {
			c.max, c.maxErr = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
				zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(c.n), zstd.WithLowerEncoderMem(true))
		})
		if c.maxErr != nil {
			return 0, nil, fmt.Errorf("zstd encoder: %w", c.maxErr)
		}
		out, codec = c.max.EncodeAll(data, scratch[:0]), compressionZstd
	default:
		if !worthCompressing(c.fast, data, scratch[:0]) {
			return compressionNone, data, nil
		}
		out, codec = c.fast.EncodeAll(data, scratch[:0]), compressionZstd
	}
	if len(out) >= len(data) {
		return compressionNone, data, nil
	}
	return codec, out, nil
}

// decode turns stored bytes of the given codec into exactly raw bytes in buf. A hostile or
// damaged blob gives ErrCorrupt, never an allocation much beyond raw.
func (c *codecs) decode(codec uint8, stored, buf []byte, raw int) ([]byte, error) {
	out, err := c.decodeAny(codec, stored, buf, raw)
	if err == nil && len(out) != raw {
		err = fmt.Errorf("decoded %d bytes, the entry says %d: %w", len(out), raw, ErrCorrupt)
	}
	return out, err
}

func (c *codecs) decodeAny(codec uint8, stored, buf []byte, raw int) ([]byte, error) {
	switch codec {
	case compressionNone:
		return append(buf[:0], stored...), nil
	case compressionZstd:
		out, err := c.dec.DecodeAll(stored, grow(buf, raw)[:0])
		if err != nil {
			return nil, fmt.Errorf("decompress: %v: %w", err, ErrCorrupt)
		}
		return out, nil
	case compressionS2:
		n, err := s2.DecodedLen(stored)
		if err != nil || n != raw {
			return nil, fmt.Errorf("decompress s2: length %d, want %d (%v): %w", n, raw, err, ErrCorrupt)
		}
		out, err := s2.Decode(grow(buf, raw), stored)
		if err != nil {
			return nil, fmt.Errorf("decompress s2: %v: %w", err, ErrCorrupt)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown compression %d: %w", codec, ErrCorrupt)
}

package tape

import (
	"encoding/hex"
	"hash"

	"lukechampine.com/blake3"
)

// streamHash is the BLAKE3-256 of a save set's stream, carried in its trailer.
type streamHash struct{ h hash.Hash }

func newStreamHash() *streamHash { return &streamHash{h: blake3.New(32, nil)} }

func (s *streamHash) Write(p []byte) { s.h.Write(p) }

func (s *streamHash) Sum() string { return hex.EncodeToString(s.h.Sum(nil)) }

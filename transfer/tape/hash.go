package tape

import (
	"encoding/hex"

	"github.com/snapferry/snapferry/images/blobhash"
)

// streamHash is the BLAKE3-256 of a save set's stream, carried in its trailer.
type streamHash struct{ h *blobhash.Hasher }

func newStreamHash() *streamHash { return &streamHash{h: blobhash.New()} }

func (s *streamHash) Write(p []byte) { s.h.Write(p) }

func (s *streamHash) Sum() string { return hex.EncodeToString(s.h.Sum(nil)) }

package tape

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// SetHeader opens a save set's stream in a tape file: the first record of the set on each
// volume it touches (Part counts from 1; Offset is how many stream bytes earlier parts hold).
type SetHeader struct {
	Set    string    `json:"set"`
	Part   int       `json:"part"`
	Offset int64     `json:"offset"`
	Stream uint32    `json:"stream"`
	Pool   string    `json:"pool"`
	Volume string    `json:"volume"`
	Host   string    `json:"host"`
	Source string    `json:"source"`
	Kind   string    `json:"kind"`
	Time   time.Time `json:"time"`
	JobID  string    `json:"job_id,omitempty"`
	Tags   []string  `json:"tags,omitempty"`
}

// SetTrailer closes a save set: totals over all parts and the BLAKE3-256 of its whole stream.
type SetTrailer struct {
	Set      string `json:"set"`
	Snapshot string `json:"snapshot"` // id of the snapshot manifest carried in the stream
	Records  int64  `json:"records"`  // data records, all parts
	Bytes    int64  `json:"bytes"`    // stream bytes, all parts
	Blobs    int    `json:"blobs"`
	Raw      int64  `json:"raw"`      // plaintext bytes of the blobs
	Checksum string `json:"checksum"` // hex BLAKE3-256 of the stream
}

// SetInfo is what a writer knows about a save set when it finishes it.
type SetInfo struct {
	Snapshot string
	Blobs    int
	Raw      int64
}

// NewSetID returns a fresh save set id (32 hex digits). Restores name a set by a unique prefix.
func NewSetID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package jobrun

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// NewID returns a job id: sortable by start time, unique across hosts and processes, and safe
// in VM snapshot names (snapferry-<id>) and registry lines (no spaces, no tabs).
func NewID(now time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

package guestfs

import (
	"bytes"
	"io"
	"strings"
)

func containsAny(s string, subs ...string) bool {
	s = strings.ToLower(s)
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// readerOf is an io.ReaderAt over b.
func readerOf(b []byte) io.ReaderAt { return bytes.NewReader(b) }

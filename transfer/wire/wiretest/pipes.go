package wiretest

import (
	"os"
	"testing"
)

// Link is two OS pipes: what the client writes to ClientW the server reads from ServerR, and
// what the server writes to ServerW the client reads from ClientR. Every end is closed when the
// test ends; closing one earlier simulates a cut link.
type Link struct {
	ClientR, ClientW *os.File
	ServerR, ServerW *os.File
}

// Pipes makes a Link.
func Pipes(t testing.TB) *Link {
	t.Helper()
	sr, cw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cr, sw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	l := &Link{ClientR: cr, ClientW: cw, ServerR: sr, ServerW: sw}
	t.Cleanup(func() {
		for _, f := range []*os.File{cr, cw, sr, sw} {
			f.Close()
		}
	})
	return l
}

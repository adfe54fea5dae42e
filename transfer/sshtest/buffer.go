package sshtest

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer collects a remote command's output while the test reads it: a session copies into it
// from its own goroutine, so a plain bytes.Buffer would race.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor fails the test unless s shows up in the buffer within 10 seconds.
func (b *Buffer) WaitFor(t testing.TB, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%q did not arrive within 10s; got %q", s, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

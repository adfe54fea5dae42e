package jobrun

import (
	"os"
	"path/filepath"
	"testing"
)

// Reading counts as being busy, and the counter's own reads of /proc/self/io do not.
func TestIOCounterSeesReadsButNotItself(t *testing.T) {
	if _, err := os.Stat("/proc/self/io"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("/proc/self/io is required: %v", err)
		}
		t.Skip("no /proc/self/io")
	}
	p := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(p, make([]byte, 4*ioBusyBytes), 0o600); err != nil {
		t.Fatal(err)
	}
	var c ioCounter
	c.busy()
	for i := 0; i < 3; i++ {
		if c.busy() {
			t.Fatalf("sample %d: busy without reading anything", i)
		}
	}
	if _, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	if !c.busy() {
		t.Fatal("not busy after reading 64 KiB")
	}
	if c.busy() {
		t.Fatal("still busy on the next sample")
	}
}

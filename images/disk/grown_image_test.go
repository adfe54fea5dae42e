package disk

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/memblobs"
	"github.com/snapferry/snapferry/images/progress"
)

// growOnStart is a progress reporter that appends to a file when the backup starts reading it:
// after its size was taken, before its blocks are read.
type growOnStart struct {
	progress.Nop
	t    *testing.T
	path string
}

func (g growOnStart) Start(string, int64) {
	f, err := os.OpenFile(g.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		g.t.Error(err)
		return
	}
	defer f.Close()
	if _, err := f.Write(memblobs.RandBytes(5, 8192)); err != nil {
		g.t.Error(err)
	}
}

// An image that grows while it is read is stored as its first (stat) size bytes, and the
// backup says so through Options.Warn (it used to store the prefix without a word).
func TestBackupWarnsAboutImageThatGrew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "growing.img")
	if err := os.WriteFile(path, memblobs.RandBytes(4, 3*testBlock), 0o644); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	d, _, err := Backup(context.Background(), memblobs.New(testBlock), path, Options{
		Progress: growOnStart{t: t, path: path},
		Warn:     func(s string) { warnings = append(warnings, s) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != 3*testBlock {
		t.Errorf("stored size %d, want the %d bytes seen at the start", d.Size, 3*testBlock)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], path) || !strings.Contains(warnings[0], "grew from") {
		t.Fatalf("warnings %q: want one naming %s and its growth", warnings, path)
	}
	// Unchanged: no warning.
	warnings = nil
	if _, _, err := Backup(context.Background(), memblobs.New(testBlock), path, Options{Warn: func(s string) { warnings = append(warnings, s) }}); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings for an unchanged image: %q", warnings)
	}
}

package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend { return New(filepath.Join(t.TempDir(), "repo")) })
}

func TestLayoutAndTempFiles(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	be := New(root)
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	name := storetest.Name(1)
	if err := be.Save(ctx, store.Handle{Kind: store.KindData, Name: name}, strings.NewReader("")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "data", name[:2], name)); err != nil {
		t.Errorf("pack not in its shard folder: %v", err)
	}
	// A temp file left by a crashed writer is never listed, and Cleanup removes it.
	stale := filepath.Join(root, "data", name[:2], tempPrefix+"123")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := be.List(ctx, store.KindData, func(fi store.FileInfo) error {
		n++
		if fi.Name != name || fi.ModTime.IsZero() {
			t.Errorf("listed %+v, want only %s with a ModTime", fi, name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("listed %d files, want 1", n)
	}
	if removed, err := be.Cleanup(ctx); err != nil || removed != 1 {
		t.Errorf("Cleanup = %d, %v; want 1 temp file removed", removed, err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("temp file survived Cleanup: %v", err)
	}
	free, err := be.FreeSpace(ctx)
	if err != nil || free <= 0 {
		t.Errorf("FreeSpace = %d, %v", free, err)
	}
	for _, bad := range []string{"", "..", "a/b", tempPrefix + "x"} {
		if err := be.Save(ctx, store.Handle{Kind: store.KindIndex, Name: bad}, strings.NewReader("")); err == nil {
			t.Errorf("Save accepted the name %q", bad)
		}
	}
}

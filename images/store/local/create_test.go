package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/store"
)

// Create accepts only a missing or empty folder and says what it found otherwise; it writes
// nothing into a refused one.
func TestCreateAcceptsOnlyMissingOrEmpty(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := New(filepath.Join(dir, "missing")).Create(ctx); err != nil {
		t.Fatalf("missing folder: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	if err := New(empty).Create(ctx); err != nil {
		t.Fatalf("empty folder: %v", err)
	}
	full := filepath.Join(dir, "full")
	for i := range 740 {
		p := filepath.Join(full, fmt.Sprintf("d%d", i%7), fmt.Sprintf("f%d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("user data"), 0o644)
	}
	err := New(full).Create(ctx)
	if !errors.Is(err, store.ErrExist) || !strings.Contains(err.Error(), "740 files") {
		t.Fatalf("folder of 740 files: %v", err)
	}
	if _, err := os.Stat(filepath.Join(full, "data")); err == nil {
		t.Fatal("Create wrote into a refused folder")
	}
	be := New(empty)
	be.Save(ctx, store.Handle{Kind: store.KindConfig}, strings.NewReader("{}"))
	err = be.Create(ctx)
	if !errors.Is(err, store.ErrExist) || !strings.Contains(err.Error(), "a repository already exists") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("existing repository: %v", err)
	}
}

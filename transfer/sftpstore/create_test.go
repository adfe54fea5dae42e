package sftpstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// Over SFTP as locally: Create takes a missing or empty folder only and says what it found.
func TestCreateRefusesAFolderWithFiles(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	ctx := context.Background()
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	for i := range 740 {
		p := filepath.Join(full, fmt.Sprintf("d%d", i%5), fmt.Sprintf("f%d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("user data"), 0o644)
	}
	st := newStore(t, s, full)
	defer st.Close()
	if err := st.Create(ctx); !errors.Is(err, store.ErrExist) || !strings.Contains(err.Error(), "740 files") {
		t.Fatalf("Create in a folder of 740 files: %v", err)
	}
	if _, err := os.Stat(filepath.Join(full, "data")); err == nil {
		t.Fatal("Create wrote into a refused folder")
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	for _, root := range []string{empty, filepath.Join(dir, "missing")} {
		st := newStore(t, s, root)
		if err := st.Create(ctx); err != nil {
			t.Fatalf("Create in %s: %v", root, err)
		}
		st.Close()
	}
}

package sftpstore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/sftpstore"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

func newStore(t *testing.T, s *sshtest.Server, root string) *sftpstore.Store {
	t.Helper()
	c := s.Dial(t)
	st, err := sftpstore.New(c.Client, root, "sftp://"+s.Addr+root, sftpstore.Options{})
	if err != nil {
		t.Fatalf("sftpstore.New: %v", err)
	}
	return st
}

func TestConformance(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	storetest.Run(t, func(t *testing.T) store.Backend {
		return newStore(t, s, filepath.Join(t.TempDir(), "repo"))
	})
}

// TestLayoutMatchesLocal writes through SFTP and reads the same folder with the local backend,
// and the other way round: the two layouts must be one.
func TestLayoutMatchesLocal(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	root := filepath.Join(t.TempDir(), "repo")
	ctx := context.Background()
	remote := newStore(t, s, root)
	defer remote.Close()
	if err := remote.Create(ctx); err != nil {
		t.Fatal(err)
	}
	lb := local.New(root)
	handles := []store.Handle{
		{Kind: store.KindConfig},
		{Kind: store.KindData, Name: storetest.Name(1)},
		{Kind: store.KindIndex, Name: storetest.Name(2)},
		{Kind: store.KindSnapshots, Name: storetest.Name(3)},
	}
	for i, h := range handles {
		data := storetest.Data(uint64(i), 1000+i)
		if err := remote.Save(ctx, h, bytes.NewReader(data)); err != nil {
			t.Fatalf("sftp save %s: %v", h, err)
		}
		rc, err := lb.Load(ctx, h, 0, 0)
		if err != nil {
			t.Fatalf("local load of sftp-written %s: %v", h, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("%s differs between sftp and local", h)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "data", storetest.Name(1)[:2], storetest.Name(1))); err != nil {
		t.Fatalf("data file not in its shard folder: %v", err)
	}
	h := store.Handle{Kind: store.KindLocks, Name: "lock-1"}
	if err := lb.Save(ctx, h, strings.NewReader("held")); err != nil {
		t.Fatal(err)
	}
	if fi, err := remote.Stat(ctx, h); err != nil || fi.Size != 4 {
		t.Fatalf("sftp stat of local-written lock: %+v %v", fi, err)
	}
}

// TestNoSpace fills a small tmpfs behind the SFTP server: the write must fail as
// store.ErrNoSpace and leave no temp file.
func TestNoSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		testkit.Require(t, false, "cannot mount a tmpfs here (CI runs as root and must be able to): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	s := sshtest.Start(t, sshtest.Options{})
	st := newStore(t, s, dir)
	defer st.Close()
	ctx := context.Background()
	if err := st.Create(ctx); err != nil {
		t.Fatal(err)
	}
	free, err := st.FreeSpace(ctx)
	if err != nil || free <= 0 || free > 2<<20 {
		t.Fatalf("FreeSpace = %d, %v; want (0, 2 MiB]", free, err)
	}
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(5)}
	err = st.Save(ctx, h, storetest.NewReader(5, 8<<20))
	if !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("save of 8 MiB into 2 MiB: want ErrNoSpace, got %v", err)
	}
	var left []string
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Fatalf("failed save left files: %v", left)
	}
}

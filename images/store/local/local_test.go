package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/images/writeback"
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
	// Counting removes nothing; a time before the file's last write spares it.
	if rep, err := be.CleanTemp(ctx, time.Time{}); err != nil || rep.Found != 1 || rep.Removed != 0 {
		t.Errorf("CleanTemp(zero) = %+v, %v; want 1 found, none removed", rep, err)
	}
	if rep, err := be.CleanTemp(ctx, time.Now().Add(-time.Hour)); err != nil || rep.Removed != 0 {
		t.Errorf("CleanTemp(an hour ago) = %+v, %v; want the younger file spared", rep, err)
	}
	if rep, err := be.CleanTemp(ctx, time.Now().Add(time.Minute)); err != nil || rep.Removed != 1 {
		t.Errorf("CleanTemp(now) = %+v, %v; want 1 temp file removed", rep, err)
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

// A streamed save abandoned mid-way (the writer was killed) leaves a temp file in the kind's
// folder: never listed, removed by Cleanup.
func TestAbandonedStreamIsCleanedUp(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	be := New(root)
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := be.SaveStream(ctx, store.KindData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(storetest.Data(1, 100000)); err != nil {
		t.Fatal(err)
	}
	temps, _ := filepath.Glob(filepath.Join(root, "data", tempPrefix+"*"))
	if len(temps) != 1 {
		t.Fatalf("temp files in data/: %v", temps)
	}
	if err := be.List(ctx, store.KindData, func(fi store.FileInfo) error {
		t.Errorf("listed %s while a stream is pending", fi.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rep, err := be.CleanTemp(ctx, time.Now().Add(time.Minute)); err != nil || rep.Removed != 1 {
		t.Fatalf("cleanup: %+v, %v", rep, err)
	}
	if _, err := os.Stat(temps[0]); !os.IsNotExist(err) {
		t.Errorf("temp file still there: %v", err)
	}
}

// TestStreamWritesOutAsItGoes: a streamed pack asks the kernel to write it out every
// writebackEvery bytes, so its Commit's fsync waits for the last stretch only, and Commit
// waits for a request still running before it fsyncs.
func TestStreamWritesOutAsItGoes(t *testing.T) {
	ctx := context.Background()
	be := New(t.TempDir())
	if err := be.Create(ctx); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	be.writeOut = func(fd int) error {
		calls.Add(1)
		return writeback.SyncWrite(fd)
	}
	p, err := be.SaveStream(ctx, store.KindData)
	if err != nil {
		t.Fatal(err)
	}
	data := storetest.Data(2, 3*writebackEvery+1000)
	for off := 0; off < len(data); off += 256 << 10 { // the pack writer's write size
		if _, err := p.Write(data[off:min(len(data), off+256<<10)]); err != nil {
			t.Fatal(err)
		}
	}
	h := store.Handle{Kind: store.KindData, Name: strings.Repeat("ab", 32)}
	if err := p.Commit(ctx, h); err != nil {
		t.Fatal(err)
	}
	// A request made while the last one still runs is dropped (that one covers the pages).
	if got := calls.Load(); got < 1 || got > 3 {
		t.Fatalf("%d write-out requests for a stream of 3 stretches and a bit, want 1 to 3", got)
	}
}

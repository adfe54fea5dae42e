package tapewire_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/tape/tapewire"
)

// pair runs Serve on a Local library over in-process pipes and returns a client for it and a
// function that waits for the server to end.
func pair(t *testing.T, d *tape.Drive) (*tapewire.Client, func() error) {
	t.Helper()
	cr, sw := io.Pipe()
	sr, cw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := tapewire.Serve(context.Background(), sr, sw, tapewire.ServeOptions{Library: &tape.Local{Drive: d}, Program: "test"})
		sw.Close()
		done <- err
	}()
	c, err := tapewire.New(context.Background(), cr, cw, "test-tape", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, func() error { return <-done }
}

func newDrive(t *testing.T) *tape.Drive {
	dir := t.TempDir()
	d := &tape.Drive{Path: filepath.Join(dir, "tape"), Catalog: tape.NewCatalogFile(filepath.Join(dir, "state"))}
	if _, err := d.Label(context.Background(), tape.LabelOptions{Pool: "p", Volume: "REMOTE1", BlockSize: 8 << 10}); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRemoteSetsRoundTrip(t *testing.T) {
	d := newDrive(t)
	c, wait := pair(t, d)
	ctx := context.Background()
	data := [][]byte{memblobs.RandBytes(1, 300<<10), memblobs.RandBytes(2, 170<<10)}
	entries := make([]tape.SetEntry, len(data))
	sets := make([]tape.SetStream, len(data))
	for i := range data {
		var err error
		if sets[i], err = c.OpenSet(ctx, "p", tape.SetHeader{Host: "h", Source: fmt.Sprint("src", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range data {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := 0; off < len(data[i]); off += 10000 {
				if _, err := sets[i].Write(data[i][off:min(off+10000, len(data[i]))]); err != nil {
					t.Error(err)
					return
				}
			}
			e, err := sets[i].Finish(tape.SetInfo{Snapshot: fmt.Sprint("snap", i)})
			if err != nil {
				t.Error(err)
			}
			entries[i] = e
		}()
	}
	wg.Wait()
	if entries[0].Parts[0].File != entries[1].Parts[0].File || entries[0].Parts[0].Stream == entries[1].Parts[0].Stream {
		t.Fatalf("concurrent remote sets were not multiplexed: %+v / %+v", entries[0].Parts, entries[1].Parts)
	}
	// A set left open when the client goes away stays incomplete.
	left, err := c.OpenSet(ctx, "p", tape.SetHeader{Source: "left-open"})
	if err != nil {
		t.Fatal(err)
	}
	left.Write([]byte("partial"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	c, wait = pair(t, d)
	defer func() { c.Close(); wait() }()
	cat, err := c.Catalog(ctx)
	if err != nil || len(cat.Sets) != 3 {
		t.Fatalf("catalog: %v %+v", err, cat)
	}
	for _, s := range cat.Sets {
		if s.Source == "left-open" && s.Complete {
			t.Fatalf("abandoned set is complete: %+v", s)
		}
	}
	for i, e := range entries {
		var got bytes.Buffer
		if _, err := c.ReadSet(ctx, e.ID, "", &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), data[i]) {
			t.Fatalf("set %d: read back %d bytes, wrote %d", i, got.Len(), len(data[i]))
		}
	}
	if _, err := c.ReadSet(ctx, "latest", "left-open", io.Discard); err == nil || !strings.Contains(err.Error(), "no complete save set") {
		t.Fatalf("read of the incomplete set: %v", err)
	}
}

func TestRemoteWrongPoolRefused(t *testing.T) {
	d := newDrive(t)
	c, wait := pair(t, d)
	_, err := c.OpenSet(context.Background(), "other", tape.SetHeader{Source: "x"})
	if err == nil || !strings.Contains(err.Error(), "not pool \"other\"") {
		t.Fatalf("wrong pool over the wire: %v", err)
	}
	c.Close()
	wait()
}

package tapewire_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/tape/device"
	"github.com/snapferry/snapferry/transfer/tape/tapewire"
)

// TestSharedDriveTwoClients plays two `serve --tape` processes for two hosts: each forwards its
// client to the drive daemon (the first starts it). Both hosts' sets are multiplexed into one
// tape file, and the daemon releases the drive when the last client is gone.
func TestSharedDriveTwoClients(t *testing.T) {
	d := newDrive(t)
	socket := filepath.Join(t.TempDir(), "drive.sock")
	daemonDone := make(chan error, 1)
	var starts atomic.Int32
	opts := tapewire.ShareOptions{Socket: socket, Start: func() error {
		starts.Add(1)
		go func() {
			daemonDone <- tapewire.RunDaemon(context.Background(), socket, &tape.Local{Drive: d}, tapewire.ServeOptions{Program: "daemon"})
		}()
		return nil
	}}
	client := func() (*tapewire.Client, chan error) {
		cr, sw := io.Pipe()
		sr, cw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := tapewire.Forward(context.Background(), sr, sw, opts)
			sw.Close()
			done <- err
		}()
		c, err := tapewire.New(context.Background(), cr, cw, "host", "test", nil)
		if err != nil {
			t.Fatal(err)
		}
		return c, done
	}
	ctx := context.Background()
	a, aDone := client()
	b, bDone := client()
	if n := starts.Load(); n != 1 {
		t.Fatalf("daemon started %d times for two clients", n)
	}
	sa, err := a.OpenSet(ctx, "p", tape.SetHeader{Host: "esxi-a", Source: "vm-a"})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.OpenSet(ctx, "p", tape.SetHeader{Host: "esxi-b", Source: "vm-b"})
	if err != nil {
		t.Fatal(err)
	}
	da, db := memblobs.RandBytes(7, 100<<10), memblobs.RandBytes(8, 60<<10)
	sa.Write(da)
	sb.Write(db)
	ea, err := sa.Finish(tape.SetInfo{})
	if err != nil {
		t.Fatal(err)
	}
	eb, err := sb.Finish(tape.SetInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if ea.Parts[0].File != eb.Parts[0].File || ea.Parts[0].Stream == eb.Parts[0].Stream {
		t.Fatalf("two hosts' sets were not multiplexed: %+v / %+v", ea.Parts, eb.Parts)
	}
	a.Close()
	<-aDone
	// The drive is still held for b.
	if dev, err := device.Open(d.Path, device.Options{}); err == nil {
		dev.Close()
		t.Fatal("the daemon let go of the drive while a client was still connected")
	}
	var got bytes.Buffer
	if _, err := b.ReadSet(ctx, ea.ID, "", &got); err == nil {
		t.Fatal("reading while the write session holds the drive should fail as busy")
	}
	b.Close()
	<-bDone
	select {
	case err := <-daemonDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not exit after the last client")
	}
	dev, err := device.Open(d.Path, device.Options{})
	if err != nil {
		t.Fatalf("drive after the daemon exited: %v", err)
	}
	dev.Close()
	// A new client starts a new daemon; the sets read back.
	c, cDone := client()
	for _, e := range []struct {
		id   string
		want []byte
	}{{ea.ID, da}, {eb.ID, db}} {
		got.Reset()
		if _, err := c.ReadSet(ctx, e.id, "", &got); err != nil || !bytes.Equal(got.Bytes(), e.want) {
			t.Fatalf("read back %s: %v (%d bytes)", e.id, err, got.Len())
		}
	}
	c.Close()
	<-cDone
	if err := <-daemonDone; err != nil || starts.Load() != 2 {
		t.Fatalf("second daemon: %v, %d starts", err, starts.Load())
	}
}

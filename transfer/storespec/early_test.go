package storespec_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/sshtest"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// TestEarlyTakeHandsOverTheStoreOnce: the store StartOpen opened works for the first Take, and
// a second Take gets no second owner of it.
func TestEarlyTakeHandsOverTheStoreOnce(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e := storespec.StartOpen(context.Background(), spec("ssh", s, dir), options(t, s))
	be, err := e.Take()
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if err := be.List(context.Background(), store.KindSnapshots, func(store.FileInfo) error { return nil }); err != nil {
		t.Fatalf("list on the early store: %v", err)
	}
	if again, err := e.Take(); err == nil || again != nil {
		t.Fatalf("second Take: %v, %v; want an error", again, err)
	}
	e.Discard() // taken: leaves the store open
	if err := be.List(context.Background(), store.KindSnapshots, func(store.FileInfo) error { return nil }); err != nil {
		t.Fatalf("list after Discard of a taken store: %v", err)
	}
}

// TestEarlyDiscardCancelsAHangingOpen: a command that ends before it needs its store does not
// wait for a host that accepts the connection and never answers (the handshake timeout here is
// ten minutes): Discard cancels the open. The test fails by its own deadline if Discard waits.
func TestEarlyDiscardCancelsAHangingOpen(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{}) // for a client key and known_hosts file
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	o := options(t, s)
	o.SSH.Host, o.SSH.Port = "", 0
	o.SSH.HandshakeTimeout = 10 * time.Minute
	e := storespec.StartOpen(context.Background(), fmt.Sprintf("ssh://%s@%s/repo", s.User, ln.Addr()), o)
	c := <-accepted // the dial reached the silent host
	defer c.Close()
	done := make(chan struct{})
	go func() { e.Discard(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Discard still waits for the SSH handshake of a host that never answers")
	}
	if be, err := e.Take(); err == nil || be != nil {
		t.Fatalf("Take after Discard: %v, %v; want an error", be, err)
	}
}

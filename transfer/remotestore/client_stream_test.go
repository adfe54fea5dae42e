package remotestore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/serve"
	"github.com/snapferry/snapferry/transfer/wire"
	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// tempFileSizes returns the sizes of the temp files below root: the uploads the server holds.
func tempFileSizes(t *testing.T, root string) []int64 {
	t.Helper()
	var sizes []int64
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), store.TempPrefix) {
			if fi, err := d.Info(); err == nil {
				sizes = append(sizes, fi.Size())
			}
		}
		return nil
	})
	return sizes
}

func startStream(t *testing.T, c *Client, k store.Kind) store.Pending {
	t.Helper()
	p, err := c.SaveStream(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStreamSaveWritesThrough: the bytes reach the server's disk while they are written (the
// window bounds what is in flight), not at the commit.
func TestStreamSaveWritesThrough(t *testing.T) {
	root := t.TempDir()
	c := inProcess(t, root, serve.Options{})
	ctx := context.Background()
	if err := c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	p := startStream(t, c, store.KindData)
	data := storetest.Data(7, 8<<20)
	if _, err := p.Write(data); err != nil {
		t.Fatal(err)
	}
	window := int64(c.Server().Window)
	testkit.Eventually(t, 10*time.Second, "holding the written bytes on the server", func() bool {
		s := tempFileSizes(t, root)
		return len(s) == 1 && s[0] >= int64(len(data))-window
	})
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(7)}
	if err := p.Commit(ctx, h); err != nil {
		t.Fatal(err)
	}
	rd, err := c.Load(ctx, h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load after commit: %d bytes, %v", len(got), err)
	}
	// Commit over an existing name: ErrExist, named by op, file and store.
	p = startStream(t, c, store.KindData)
	p.Write([]byte("other"))
	err = p.Commit(ctx, h)
	if !errors.Is(err, store.ErrExist) || !strings.Contains(err.Error(), "save "+h.String()+" on pipe:") {
		t.Errorf("commit over %s: %v", h, err)
	}
}

// TestStreamSaveUnsupported: the cases where the caller must fall back to Save say so with
// errors.ErrUnsupported; a kind that may never be streamed is an error of its own.
func TestStreamSaveUnsupported(t *testing.T) {
	// A server from before streamed saves: it announces the store ops only.
	l := wiretest.Pipes(t)
	go func() {
		sess, _, err := wire.Accept(l.ServerR, l.ServerW,
			func(wire.Hello) wire.HelloReply {
				return wire.HelloReply{Program: "old", Caps: []string{wire.CapStore}}
			},
			func(_ context.Context, st *wire.Stream, req wire.Request) {
				st.RespondError(errors.New("unexpected request " + req.Op.String()))
			})
		if err == nil {
			sess.Wait()
		}
		l.ServerW.Close()
	}()
	old, err := New(context.Background(), l.ClientR, l.ClientW, Options{Location: "pipe:old"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.SaveStream(context.Background(), store.KindData); !errors.Is(err, errors.ErrUnsupported) ||
		!strings.Contains(err.Error(), "stream save data on pipe:old") {
		t.Errorf("streamed save on an old server: %v, want unsupported", err)
	}

	c := inProcess(t, t.TempDir(), serve.Options{})
	if _, err := c.SaveStream(context.Background(), store.KindLocks); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("streamed save of a lock: %v, want unsupported", err)
	}
	if _, err := c.SaveStream(context.Background(), store.KindConfig); err == nil || errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("streamed save of the config: %v, want a refusal that is no fallback", err)
	}
}

// TestStreamSaveServerRefusal: when the server refuses the upload while it runs, Write (and
// then Commit) return the server's reason, not "server answered early".
func TestStreamSaveServerRefusal(t *testing.T) {
	root := t.TempDir()
	c := inProcess(t, root, serve.Options{})
	if err := c.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Remove(filepath.Join(root, "snapshots")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "snapshots")); err != nil {
		t.Fatal(err)
	}
	p := startStream(t, c, store.KindSnapshots)
	_, err := p.Write(make([]byte, 4*int(c.Server().Window))) // more than the window: waits for the answer
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "stream save snapshots on pipe:") {
		t.Fatalf("write refused by the server: %v", err)
	}
	if err2 := p.Commit(context.Background(), store.Handle{Kind: store.KindSnapshots, Name: storetest.Name(8)}); !errors.Is(err2, fs.ErrPermission) {
		t.Errorf("commit after the refusal: %v", err2)
	}
}

func TestStreamAbortDropsServerFile(t *testing.T) {
	root := t.TempDir()
	c := inProcess(t, root, serve.Options{})
	ctx := context.Background()
	if err := c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	p := startStream(t, c, store.KindIndex)
	if _, err := p.Write(storetest.Data(9, 3<<20)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "receiving the upload", func() bool { return len(tempFileSizes(t, root)) == 1 })
	p.Abort()
	testkit.Eventually(t, 10*time.Second, "dropping the aborted upload", func() bool { return len(tempFileSizes(t, root)) == 0 })
	// Its stream slot came back: as many uploads as the server allows can start and finish.
	var ps []store.Pending
	for range c.Server().MaxStreams {
		ps = append(ps, startStream(t, c, store.KindIndex))
	}
	for i, p := range ps {
		p.Write([]byte{byte(i)})
		if err := p.Commit(ctx, store.Handle{Kind: store.KindIndex, Name: storetest.Name(100 + i)}); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
}

// TestStreamKilledServer: a server that dies mid-upload fails the next Write and the Commit
// promptly, with the store named, and nothing becomes visible.
func TestStreamKilledServer(t *testing.T) {
	root := t.TempDir()
	ch := startChild(t, root)
	ctx := context.Background()
	if err := ch.c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	p := startStream(t, ch.c, store.KindData)
	if _, err := p.Write(storetest.Data(10, 3<<20)); err != nil {
		t.Fatal(err)
	}
	ch.Cmd.Process.Kill()
	done := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = p.Write(make([]byte, 1<<20))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, wire.ErrLinkLost) || !strings.Contains(err.Error(), "child:") {
			t.Errorf("write after the kill: %v, want a link-lost error naming the store", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write still pending 5s after the server died")
	}
	if err := p.Commit(ctx, store.Handle{Kind: store.KindData, Name: storetest.Name(10)}); err == nil {
		t.Fatal("commit succeeded on a dead link")
	}
	assertNoFiles(t, root)
}

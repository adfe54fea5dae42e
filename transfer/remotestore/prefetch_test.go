package remotestore

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/serve"
	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// prefetching connects to an in-process serve of root with PrefetchOpen and a trace.
func prefetching(t *testing.T, root string) (*Client, *bytes.Buffer) {
	t.Helper()
	l := wiretest.Pipes(t)
	go func() {
		_ = serve.Serve(context.Background(), l.ServerR, l.ServerW, serve.Options{Root: root})
		l.ServerW.Close()
	}()
	var trace bytes.Buffer
	c, err := New(context.Background(), l.ClientR, l.ClientW, Options{Location: "pipe:" + root, PrefetchOpen: true, Trace: &trace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, &trace
}

func repoRoot(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"index", "data", "snapshots", "locks", "keys"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "config"), []byte("the config"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "index", "aa"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestPrefetchedOpenRequestsServeTheFirstCalls: the config read and the index listing sent with
// the handshake answer the first calls that ask for them, without requests of their own.
func TestPrefetchedOpenRequestsServeTheFirstCalls(t *testing.T) {
	c, trace := prefetching(t, repoRoot(t))
	ctx := context.Background()
	rd, err := c.Load(ctx, store.Handle{Kind: store.KindConfig}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || string(b) != "the config" {
		t.Fatalf("config: %q, %v", b, err)
	}
	var names []string
	if err := c.List(ctx, store.KindIndex, func(fi store.FileInfo) error { names = append(names, fi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "aa" {
		t.Fatalf("index listing %v", names)
	}
	if st := c.Session().Stats(); st.Requests != 2 || st.Serial != 1 {
		t.Errorf("stats %+v: want the 2 prefetched requests in the Hello's round trip\n%s", st, trace)
	}
}

// TestPrefetchDroppedWhenAnotherRequestComesFirst: once the command sent something else, answers
// from before it may be stale (init creates the config): the prefetched ones are dropped, and
// the config read that follows asks the server again.
func TestPrefetchDroppedWhenAnotherRequestComesFirst(t *testing.T) {
	root := t.TempDir()
	c, trace := prefetching(t, root)
	ctx := context.Background()
	if err := c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(ctx, store.Handle{Kind: store.KindConfig}, strings.NewReader("new config")); err != nil {
		t.Fatal(err)
	}
	rd, err := c.Load(ctx, store.Handle{Kind: store.KindConfig}, 0, 0)
	if err != nil {
		t.Fatalf("config written after the prefetch: %v\n%s", err, trace)
	}
	b, _ := io.ReadAll(rd)
	rd.Close()
	if string(b) != "new config" {
		t.Fatalf("config %q, want the one saved after the prefetch", b)
	}
}

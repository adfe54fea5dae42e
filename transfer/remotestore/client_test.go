package remotestore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/serve"
	"github.com/snapferry/snapferry/transfer/wire"
	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// The test binary doubles as a `snapferry serve` child: with envServeRoot set it serves that
// folder on stdin/stdout and exits.
const envServeRoot = "SNAPFERRY_TEST_SERVE_ROOT"

func TestMain(m *testing.M) {
	if root := os.Getenv(envServeRoot); root != "" {
		err := serve.Serve(context.Background(), os.Stdin, os.Stdout, serve.Options{Root: root, Program: "test-child"})
		if err != nil {
			os.Stderr.WriteString("serve: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// inProcess connects a client to Serve over two OS pipes.
func inProcess(t testing.TB, root string, opts serve.Options) *Client {
	t.Helper()
	l := wiretest.Pipes(t)
	opts.Root = root
	done := make(chan error, 1)
	go func() {
		done <- serve.Serve(context.Background(), l.ServerR, l.ServerW, opts)
		l.ServerW.Close()
	}()
	c, err := New(context.Background(), l.ClientR, l.ClientW, Options{Location: "pipe:" + root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not return after the client closed")
		}
	})
	return c
}

type child struct {
	*wiretest.Child
	c *Client
}

// startChild runs the test binary as a serve child over its stdin/stdout.
func startChild(t *testing.T, root string) *child {
	t.Helper()
	ch := wiretest.StartChild(t, envServeRoot+"="+root)
	c, err := New(context.Background(), ch.Stdout, ch.Stdin, Options{Location: "child:" + root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &child{Child: ch, c: c}
}

func TestConformanceInProcess(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend {
		return inProcess(t, t.TempDir(), serve.Options{})
	})
}

func TestConformanceChildProcess(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend {
		return startChild(t, t.TempDir()).c
	})
}

func TestChildExitsWhenClientCloses(t *testing.T) {
	ch := startChild(t, t.TempDir())
	ch.c.Close()
	select {
	case <-ch.Done:
		if ch.Err != nil {
			t.Fatalf("serve child exited with %v, want clean exit on EOF", ch.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve child still running 10s after its input closed")
	}
}

func TestFreeSpaceAndServerInfo(t *testing.T) {
	c := inProcess(t, t.TempDir(), serve.Options{AppendOnly: true, Program: "srv-1"})
	n, err := c.FreeSpace(context.Background())
	if err != nil || n <= 0 {
		t.Fatalf("free space = %d, %v", n, err)
	}
	if info := c.Server(); !info.AppendOnly || info.Program != "srv-1" {
		t.Fatalf("server info %+v", info)
	}
}

// slowReader hands out data and, after limit bytes, blocks until the test cuts the link.
type slowReader struct {
	left    int
	reached chan struct{}
	release chan struct{}
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.left <= 0 {
		close(s.reached)
		<-s.release
		return 0, errors.New("source gave up")
	}
	n := min(len(p), s.left)
	clear(p[:n])
	s.left -= n
	return n, nil
}

func TestKilledServerFailsPendingSaveFastAndLeavesNoFile(t *testing.T) {
	root := t.TempDir()
	ch := startChild(t, root)
	ctx := context.Background()
	if err := ch.c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	h := store.Handle{Kind: store.KindData, Name: storetest.Name(1)}
	src := &slowReader{left: 3 << 20, reached: make(chan struct{}), release: make(chan struct{})}
	defer close(src.release)
	saveErr := make(chan error, 1)
	go func() { saveErr <- ch.c.Save(ctx, h, src) }()
	statErr := make(chan error, 1)
	<-src.reached // the upload is mid-stream: the server holds a temp file
	ch.Cmd.Process.Kill()
	go func() { _, err := ch.c.Stat(ctx, h); statErr <- err }()
	select {
	case err := <-saveErr:
		// The reader is blocked; Save is stuck in Read, so release it.
		t.Fatalf("save returned before the source was released: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	select {
	case err := <-statErr:
		if !errors.Is(err, wire.ErrLinkLost) || !strings.Contains(err.Error(), "child:") {
			t.Errorf("stat after kill: %v, want a link-lost error naming the store", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stat still pending 5s after the server died")
	}
	src.release <- struct{}{}
	select {
	case err := <-saveErr:
		if err == nil {
			t.Fatal("save succeeded on a dead link")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("save still pending 5s after the server died")
	}
	assertNoFiles(t, root)
	// A rerun against a new server completes.
	ch2 := startChild(t, root)
	if err := ch2.c.Save(ctx, h, bytes.NewReader(storetest.Data(1, 3<<20))); err != nil {
		t.Fatalf("rerun save: %v", err)
	}
	rd, err := ch2.c.Load(ctx, h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(got, storetest.Data(1, 3<<20)) {
		t.Fatalf("rerun load: %d bytes, %v", len(got), err)
	}
}

func TestCutPipeMidSaveInProcess(t *testing.T) {
	root := t.TempDir()
	l := wiretest.Pipes(t)
	done := make(chan error, 1)
	go func() {
		done <- serve.Serve(context.Background(), l.ServerR, l.ServerW, serve.Options{Root: root})
		l.ServerW.Close()
	}()
	c, err := New(context.Background(), l.ClientR, l.ClientW, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	src := &slowReader{left: 2 << 20, reached: make(chan struct{}), release: make(chan struct{})}
	saveErr := make(chan error, 1)
	go func() { saveErr <- c.Save(ctx, store.Handle{Kind: store.KindData, Name: storetest.Name(2)}, src) }()
	<-src.reached
	l.ClientW.Close() // the client's side of the link is cut: the server sees EOF mid-upload
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after EOF: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not end 5s after its input closed")
	}
	close(src.release)
	if err := <-saveErr; err == nil {
		t.Fatal("save succeeded on a cut link")
	}
	assertNoFiles(t, root)
}

// assertNoFiles fails when root holds a finished repository file besides the config (temp files
// are allowed: they never show to List).
func assertNoFiles(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".tmp-") && d.Name() != "config" {
			t.Errorf("partial file visible after a cut link: %s", p)
		}
		return nil
	})
}

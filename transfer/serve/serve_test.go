package serve

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/sshtest"
	"github.com/snapferry/snapferry/transfer/wire"
	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// conn is a raw wire client on an in-process server, so tests can send what a well-behaved
// client never would.
type conn struct {
	t     testing.TB
	sess  *wire.Session
	hello wire.HelloReply
	log   *sshtest.Buffer // Serve writes its own lines (session start, dropped uploads) at any time
	// hangUp closes the client's side of the link and returns what Serve returned. The test's
	// cleanup calls it too; only the first call closes.
	hangUp func() error
}

func connect(t testing.TB, opts Options) *conn {
	t.Helper()
	l := wiretest.Pipes(t)
	log := &sshtest.Buffer{}
	opts.Log = log
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), l.ServerR, l.ServerW, opts); l.ServerW.Close() }()
	sess, hello, err := wire.Dial(context.Background(), l.ClientR, l.ClientW, wire.Hello{Program: "serve-test"})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var serveErr error
	hangUp := func() error {
		once.Do(func() {
			sess.Close()
			l.ClientW.Close()
			serveErr = <-done
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := hangUp(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &conn{t: t, sess: sess, hello: hello, log: log, hangUp: hangUp}
}

func (c *conn) call(op wire.Op, args []byte, upload []byte) ([]byte, error) {
	st, err := c.sess.Open(context.Background(), op, args, upload != nil)
	if err != nil {
		c.t.Fatal(err)
	}
	defer st.Close()
	if upload != nil {
		st.Write(upload)
		st.CloseWrite()
	}
	resp, err := st.Response()
	if err != nil {
		return nil, err
	}
	if resp.Streamed {
		return io.ReadAll(st)
	}
	return resp.Body, nil
}

func (c *conn) save(h store.Handle, data []byte) error {
	_, err := c.call(wire.OpSave, wire.EncodeHandle(h), data)
	return err
}

func (c *conn) load(h store.Handle) ([]byte, error) {
	return c.call(wire.OpLoad, wire.EncodeLoadArgs(wire.LoadArgs{Handle: h}), nil)
}

func newRepo(t testing.TB, opts Options) (*conn, string) {
	root := t.TempDir()
	opts.Root = root
	c := connect(t, opts)
	if _, err := c.call(wire.OpCreate, nil, nil); err != nil {
		t.Fatal(err)
	}
	return c, root
}

func TestRefusesNamesOutsideTheRoot(t *testing.T) {
	c, root := newRepo(t, Options{})
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600)
	bad := []store.Handle{
		{Kind: store.KindIndex, Name: ".."},
		{Kind: store.KindIndex, Name: "../../etc/passwd"},
		{Kind: store.KindIndex, Name: "/etc/passwd"},
		{Kind: store.KindIndex, Name: outside + "/secret"},
		{Kind: store.KindIndex, Name: "a\x00b"},
		{Kind: store.KindIndex, Name: "a\nb"},
		{Kind: store.KindIndex, Name: ""},
		{Kind: store.KindIndex, Name: ".snapferry-journal"},
		{Kind: store.Kind("../etc"), Name: "passwd"},
		{Kind: store.Kind("tmp"), Name: "x"},
	}
	for _, h := range bad {
		if err := c.save(h, []byte("x")); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("save %q/%q: %v, want refused", h.Kind, h.Name, err)
		}
		if _, err := c.load(h); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("load %q/%q: %v, want refused", h.Kind, h.Name, err)
		}
	}
	// Nothing was written anywhere outside the repository folders.
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside folder now holds %d entries", len(entries))
	}
	if !strings.Contains(c.log.String(), "refused") {
		t.Errorf("refusals were not logged: %q", c.log.String())
	}
	_ = root
}

func TestRefusesSymlinkEscapes(t *testing.T) {
	c, root := newRepo(t, Options{})
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600)
	// snapshots/ leads outside; a file in index/ links outside; a data shard dangles outside.
	os.Remove(filepath.Join(root, "snapshots"))
	must(t, os.Symlink(outside, filepath.Join(root, "snapshots")))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "index", "leak")))
	must(t, os.MkdirAll(filepath.Join(root, "data"), 0o700))
	must(t, os.Symlink(filepath.Join(outside, "newdir"), filepath.Join(root, "data", "ab")))

	if _, err := c.load(store.Handle{Kind: store.KindSnapshots, Name: "secret"}); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("load through a symlinked folder: %v", err)
	}
	if err := c.save(store.Handle{Kind: store.KindSnapshots, Name: "new"}, []byte("x")); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("save through a symlinked folder: %v", err)
	}
	if _, err := c.load(store.Handle{Kind: store.KindIndex, Name: "leak"}); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("load of a symlink to outside: %v", err)
	}
	if err := c.save(store.Handle{Kind: store.KindData, Name: "ab" + strings.Repeat("0", 62)}, []byte("x")); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("save through a dangling symlink: %v", err)
	}
	if _, err := c.call(wire.OpList, wire.EncodeKind(store.KindSnapshots), nil); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("list of a symlinked folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "newdir")); err == nil {
		t.Errorf("a folder was created outside the root")
	}
	// A symlink that stays inside the root is fine.
	must(t, os.WriteFile(filepath.Join(root, "index", "real"), []byte("inside"), 0o600))
	must(t, os.Symlink("real", filepath.Join(root, "index", "alias")))
	if got, err := c.load(store.Handle{Kind: store.KindIndex, Name: "alias"}); err != nil || string(got) != "inside" {
		t.Errorf("load of an inside symlink: %q, %v", got, err)
	}
}

func TestRefusesUnknownOps(t *testing.T) {
	c, _ := newRepo(t, Options{})
	for _, op := range []wire.Op{0, 11, 19, 99, 255} {
		_, err := c.call(op, []byte{1, 2, 3}, nil)
		if !errors.Is(err, wire.ErrRefused) || !strings.Contains(err.Error(), "does not know") {
			t.Errorf("op %d: %v, want refused", op, err)
		}
	}
	// Malformed arguments of a known op are refused as such, and the session survives them.
	if _, err := c.call(wire.OpStat, []byte{0xff}, nil); err == nil {
		t.Errorf("stat with garbage arguments succeeded")
	}
	if _, err := c.call(wire.OpFreeSpace, nil, nil); err != nil {
		t.Errorf("session broken after refusals: %v", err)
	}
}

func TestAppendOnly(t *testing.T) {
	c, root := newRepo(t, Options{AppendOnly: true})
	data := store.Handle{Kind: store.KindData, Name: "ab01" + strings.Repeat("0", 60)}
	lock := store.Handle{Kind: store.KindLocks, Name: strings.Repeat("1", 64)}
	must(t, c.save(data, []byte("one")))
	must(t, c.save(lock, []byte("lock")))
	if err := c.save(data, []byte("two")); !errors.Is(err, store.ErrExist) {
		t.Errorf("overwrite: %v, want ErrExist", err)
	}
	if _, err := c.call(wire.OpRemove, wire.EncodeHandle(data), nil); !errors.Is(err, wire.ErrRefused) {
		t.Errorf("remove in append-only: %v, want refused", err)
	}
	if got, err := c.load(data); err != nil || string(got) != "one" {
		t.Errorf("data after refused overwrite/remove: %q, %v", got, err)
	}
	if _, err := c.call(wire.OpRemove, wire.EncodeHandle(lock), nil); err != nil {
		t.Errorf("remove of a lock in append-only: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "locks", lock.Name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock still there: %v", err)
	}
	log := c.log.String()
	if !strings.Contains(log, "refused remove of data/ab01") || !strings.Contains(log, "refused overwrite of data/ab01") {
		t.Errorf("log lacks the refusals:\n%s", log)
	}
}

func TestRootMustExist(t *testing.T) {
	err := Serve(context.Background(), strings.NewReader(""), io.Discard, Options{Root: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("serve of a missing root: %v", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

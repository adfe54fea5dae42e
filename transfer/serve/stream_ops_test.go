package serve

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/wire"
)

// saveStream uploads body as a streamed file of kind k and returns the token it may be
// committed by.
func (c *conn) saveStream(k store.Kind, body []byte) (string, error) {
	st, err := c.sess.Open(context.Background(), wire.OpSaveStream, wire.EncodeKind(k), true)
	if err != nil {
		c.t.Fatal(err)
	}
	defer st.Close()
	st.Write(body)
	st.CloseWrite()
	resp, err := st.Response()
	if err != nil {
		return "", err
	}
	return wire.DecodeStreamToken(resp.Body)
}

func (c *conn) commitStream(tok string, h store.Handle) error {
	_, err := c.call(wire.OpCommitStream, wire.EncodeCommitStreamArgs(wire.CommitStreamArgs{Token: tok, Handle: h}), nil)
	return err
}

// tempFiles lists the temp files below root: the uploads the server holds.
func tempFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), store.TempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func streamName(i int) string { return strings.Repeat(string(rune('a'+i%6)), 64) }

func TestStreamCommitRoundTrip(t *testing.T) {
	c, root := newRepo(t, Options{})
	if !c.hello.HasCap(wire.CapStream) {
		t.Fatalf("server does not announce %q: %v", wire.CapStream, c.hello.Caps)
	}
	body := bytes.Repeat([]byte("pack bytes "), 300_000) // several windows
	tok, err := c.saveStream(store.KindData, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 32 {
		t.Errorf("token %q: want 16 bytes in hex", tok)
	}
	if n := len(tempFiles(t, root)); n != 1 {
		t.Errorf("%d temp files while the upload waits for its commit, want 1", n)
	}
	if l, err := c.call(wire.OpList, wire.EncodeKind(store.KindData), nil); err != nil || len(l) != 0 {
		t.Errorf("list before the commit: %q, %v", l, err)
	}
	h := store.Handle{Kind: store.KindData, Name: streamName(0)}
	must(t, c.commitStream(tok, h))
	if got, err := c.load(h); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("load after the commit: %d bytes, %v; want %d", len(got), err, len(body))
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temp files after the commit: %v", tmp)
	}
	// A token works once.
	if err := c.commitStream(tok, store.Handle{Kind: store.KindData, Name: streamName(1)}); err == nil ||
		!strings.Contains(err.Error(), "unknown stream token") {
		t.Errorf("second commit of one token: %v", err)
	}
}

func TestStreamUnknownToken(t *testing.T) {
	c, root := newRepo(t, Options{})
	h := store.Handle{Kind: store.KindIndex, Name: streamName(2)}
	if err := c.commitStream(strings.Repeat("0", 32), h); err == nil || !strings.Contains(err.Error(), "unknown stream token") {
		t.Errorf("commit of a token never given out: %v", err)
	}
	if _, err := c.call(wire.OpCommitStream, wire.EncodeCommitStreamArgs(wire.CommitStreamArgs{Handle: h}), nil); err == nil ||
		!strings.Contains(err.Error(), "malformed") {
		t.Errorf("commit without a token: %v, want malformed", err)
	}
	if _, err := os.Stat(filepath.Join(root, "index", h.Name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists: %v", h, err)
	}
	if _, err := c.call(wire.OpFreeSpace, nil, nil); err != nil {
		t.Errorf("session broken after the refusals: %v", err)
	}
}

func TestStreamKindsAndNamesRefused(t *testing.T) {
	c, root := newRepo(t, Options{})
	for _, k := range []store.Kind{store.KindConfig, store.KindLocks, "../x", "tmp", "locks/../snapshots", ""} {
		if _, err := c.saveStream(k, []byte("x")); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("streamed save of kind %q: %v, want refused", k, err)
		}
		if !strings.Contains(c.log.String(), "refused save-stream "+`"`+string(k)+`"`) {
			t.Errorf("refusal of kind %q not logged:\n%s", k, c.log.String())
		}
	}
	// A kind folder that leads outside the root: no temp file may be made there.
	outside := t.TempDir()
	must(t, os.Remove(filepath.Join(root, "snapshots")))
	must(t, os.Symlink(outside, filepath.Join(root, "snapshots")))
	if _, err := c.saveStream(store.KindSnapshots, []byte("x")); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("streamed save through a symlinked folder: %v, want refused", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("files made outside the root: %v", ents)
	}
	// Names are checked at the commit as Save checks them, and the refused upload is dropped.
	for _, h := range []store.Handle{
		{Kind: store.KindData, Name: "../../config"},
		{Kind: store.KindData, Name: ".hidden"},
		{Kind: store.KindIndex, Name: streamName(3)}, // uploaded as data
	} {
		tok, err := c.saveStream(store.KindData, []byte("x"))
		must(t, err)
		if err := c.commitStream(tok, h); err == nil {
			t.Errorf("commit of a data upload as %q/%q accepted", h.Kind, h.Name)
		}
	}
	if !strings.Contains(c.log.String(), `refused commit-stream "data/../../config"`) {
		t.Errorf("refused commit not logged:\n%s", c.log.String())
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temp files left by refused commits: %v", tmp)
	}
}

// TestStreamAppendOnly: streamed saves add files, so an append-only server takes them, but a
// commit over an existing name is refused and logged like Save's overwrite.
func TestStreamAppendOnly(t *testing.T) {
	c, root := newRepo(t, Options{AppendOnly: true})
	h := store.Handle{Kind: store.KindSnapshots, Name: streamName(4)}
	must(t, c.save(h, []byte("first")))
	tok, err := c.saveStream(store.KindSnapshots, []byte("ransom note"))
	must(t, err)
	if err := c.commitStream(tok, h); !errors.Is(err, store.ErrExist) {
		t.Errorf("streamed overwrite of %s: %v, want ErrExist", h, err)
	}
	if got, err := c.load(h); err != nil || string(got) != "first" {
		t.Errorf("%s after the refused commit: %q, %v", h, got, err)
	}
	if !strings.Contains(c.log.String(), "refused overwrite of "+h.String()+" (append-only)") {
		t.Errorf("log lacks the refusal:\n%s", c.log.String())
	}
	bad := store.Handle{Kind: store.KindSnapshots, Name: "not-an-id"}
	tok, err = c.saveStream(store.KindSnapshots, []byte("stray"))
	must(t, err)
	if err := c.commitStream(tok, bad); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("streamed save as %s: %v, want refused", bad, err)
	}
	h2 := store.Handle{Kind: store.KindSnapshots, Name: streamName(5)}
	tok, err = c.saveStream(store.KindSnapshots, []byte("second"))
	must(t, err)
	if err := c.commitStream(tok, h2); err != nil {
		t.Errorf("streamed save of a new file in append-only mode: %v", err)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

func TestStreamPendingLimit(t *testing.T) {
	c, root := newRepo(t, Options{})
	var toks []string
	for i := range maxPending - 1 {
		tok, err := c.saveStream(store.KindData, []byte{byte(i)})
		if err != nil {
			t.Fatalf("upload %d: %v", i+1, err)
		}
		toks = append(toks, tok)
	}
	// Two uploads that started while there was room for one: the one that ends second is
	// refused at its end, and its temp file goes.
	var last [2]*wire.Stream
	for i := range last {
		st, err := c.sess.Open(context.Background(), wire.OpSaveStream, wire.EncodeKind(store.KindData), true)
		must(t, err)
		defer st.Close()
		st.Write([]byte("racing"))
		last[i] = st
	}
	testkit.Eventually(t, 10*time.Second, "receiving both racing uploads", func() bool { return len(tempFiles(t, root)) == maxPending+1 })
	for i, st := range last {
		st.CloseWrite()
		resp, err := st.Response()
		switch {
		case i == 0 && err == nil:
			tok, err := wire.DecodeStreamToken(resp.Body)
			must(t, err)
			toks = append(toks, tok)
		case i == 1 && errors.Is(err, wire.ErrRefused):
		default:
			t.Fatalf("racing upload %d: %v", i, err)
		}
	}
	if n := len(tempFiles(t, root)); n != maxPending {
		t.Errorf("%d temp files after the refused racer, want %d", n, maxPending)
	}
	// One too many is refused before its body: the answer comes while the body is still open.
	st, err := c.sess.Open(context.Background(), wire.OpSaveStream, wire.EncodeKind(store.KindData), true)
	must(t, err)
	st.Write([]byte("one too many"))
	answered := make(chan error, 1)
	go func() { _, err := st.Response(); answered <- err }()
	select {
	case err := <-answered:
		if !errors.Is(err, wire.ErrRefused) || !strings.Contains(err.Error(), "16 streamed files already wait for their commit") {
			t.Fatalf("upload %d: %v, want refused", maxPending+1, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("upload %d: no answer before its body ended", maxPending+1)
	}
	st.Close()
	if !strings.Contains(c.log.String(), "refused save-stream data") {
		t.Errorf("refusal not logged:\n%s", c.log.String())
	}
	if n := len(tempFiles(t, root)); n != maxPending {
		t.Errorf("%d temp files, want %d", n, maxPending)
	}
	// A commit makes room again.
	must(t, c.commitStream(toks[0], store.Handle{Kind: store.KindData, Name: streamName(0)}))
	if _, err := c.saveStream(store.KindData, []byte("fits again")); err != nil {
		t.Errorf("upload after a commit made room: %v", err)
	}
}

// TestStreamUploadEndedEarly: an upload the client ends with an error, or gives up, leaves no
// temp file and no token.
func TestStreamUploadEndedEarly(t *testing.T) {
	c, root := newRepo(t, Options{})
	st, err := c.sess.Open(context.Background(), wire.OpSaveStream, wire.EncodeKind(store.KindData), true)
	must(t, err)
	st.Write(make([]byte, 300<<10))
	st.CloseWithError(errors.New("source broke"))
	if _, err := st.Response(); err == nil || !strings.Contains(err.Error(), "source broke") {
		t.Errorf("upload ended with an error: %v", err)
	}
	st.Close()
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temp files after an upload ended with an error: %v", tmp)
	}
	st, err = c.sess.Open(context.Background(), wire.OpSaveStream, wire.EncodeKind(store.KindData), true)
	must(t, err)
	st.Write(make([]byte, 300<<10))
	testkit.Eventually(t, 10*time.Second, "receiving the upload", func() bool { return len(tempFiles(t, root)) == 1 })
	st.Close() // cancels the request
	testkit.Eventually(t, 10*time.Second, "dropping the canceled upload", func() bool { return len(tempFiles(t, root)) == 0 })
}

// TestStreamSessionEndDropsTempFiles: uploads that wait for a commit and one still running are
// all removed when the client goes away.
func TestStreamSessionEndDropsTempFiles(t *testing.T) {
	c, root := newRepo(t, Options{})
	for i := range 2 {
		if _, err := c.saveStream(store.KindData, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := c.sess.Open(context.Background(), wire.OpSaveStream, wire.EncodeKind(store.KindIndex), true)
	must(t, err)
	st.Write(make([]byte, 200<<10))
	testkit.Eventually(t, 10*time.Second, "receiving the third upload", func() bool { return len(tempFiles(t, root)) == 3 })
	if err := c.hangUp(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Errorf("temp files after the session ended: %v", tmp)
	}
	if !strings.Contains(c.log.String(), "dropped 2 streamed file(s) the client never committed") {
		t.Errorf("drop not logged:\n%s", c.log.String())
	}
}

// TestCleanTemp: the temp files a killed upload left are counted over the link and removed when
// last written before the time the client names; an append-only server only counts them.
func TestCleanTemp(t *testing.T) {
	for _, appendOnly := range []bool{false, true} {
		c, root := newRepo(t, Options{AppendOnly: appendOnly})
		leftover := filepath.Join(root, "data", store.TempPrefix+"killed")
		must(t, os.WriteFile(leftover, make([]byte, 1000), 0o600))
		old := time.Now().Add(-time.Hour)
		must(t, os.Chtimes(leftover, old, old))
		young := filepath.Join(root, "index", store.TempPrefix+"writing")
		must(t, os.WriteFile(young, []byte("x"), 0o600))
		call := func(before time.Time) store.TempReport {
			var ns uint64
			if !before.IsZero() {
				ns = uint64(before.UnixNano())
			}
			p, err := c.call(wire.OpCleanTemp, wire.EncodeUint(ns), nil)
			must(t, err)
			rep, err := wire.DecodeTempReport(p)
			must(t, err)
			return rep
		}
		if rep := call(time.Time{}); rep.Found != 2 || rep.BytesFound != 1001 || rep.Removed != 0 {
			t.Errorf("append-only %v: count: %+v", appendOnly, rep)
		}
		rep := call(time.Now().Add(-time.Minute))
		_, errOld := os.Stat(leftover)
		_, errYoung := os.Stat(young)
		switch {
		case errYoung != nil:
			t.Errorf("append-only %v: a temp file written after the given time was removed", appendOnly)
		case appendOnly && (rep.Removed != 0 || errOld != nil):
			t.Errorf("append-only server removed temp files: %+v", rep)
		case !appendOnly && (rep.Removed != 1 || errOld == nil):
			t.Errorf("old temp file not removed: %+v, %v", rep, errOld)
		}
	}
}

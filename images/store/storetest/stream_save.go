package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/snapferry/snapferry/images/store"
)

// streamTests are the conformance subtests of store.StreamSaver; Run runs them against every
// backend that implements it (and says so in the log for one that does not).
var streamTests = []struct {
	name string
	fn   func(t *testing.T, be store.Backend, ss store.StreamSaver)
}{
	{"stream-commit", testStreamCommit},
	{"stream-exist", testStreamExist},
	{"stream-abort", testStreamAbort},
	{"stream-kind", testStreamKind},
	{"stream-concurrent", testStreamConcurrent},
}

func streamSaver(t *testing.T, be store.Backend) (store.StreamSaver, bool) {
	ss, ok := be.(store.StreamSaver)
	if !ok {
		t.Logf("%s is no store.StreamSaver", be.Location())
		return nil, false
	}
	p, err := ss.SaveStream(context.Background(), store.KindData)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Logf("%s: streamed saves unsupported: %v", be.Location(), err)
		return nil, false
	}
	if err != nil {
		t.Fatalf("save stream in %s: %v", be.Location(), err)
	}
	p.Abort()
	return ss, true
}

func startStream(t *testing.T, ss store.StreamSaver, k store.Kind) store.Pending {
	t.Helper()
	p, err := ss.SaveStream(context.Background(), k)
	if err != nil {
		t.Fatalf("save stream %s: %v", k, err)
	}
	return p
}

func testStreamCommit(t *testing.T, be store.Backend, ss store.StreamSaver) {
	ctx := context.Background()
	h := store.Handle{Kind: store.KindData, Name: Name(40)}
	p := startStream(t, ss, store.KindData)
	want := append(Data(40, 1000), Data(41, LargeSize)...)
	if _, err := p.Write(want[:1000]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(p, bytes.NewReader(want[1000:])); err != nil {
		t.Fatal(err)
	}
	if n := len(list(t, be, store.KindData)); n != 0 {
		t.Errorf("%d files listed before commit", n)
	}
	if err := p.Commit(ctx, h); err != nil {
		t.Fatalf("commit %s: %v", h, err)
	}
	if got := load(t, be, h, 0, 0); !bytes.Equal(got, want) {
		t.Fatalf("load %s after commit: %d bytes, want %d", h, len(got), len(want))
	}
	if m := list(t, be, store.KindData); len(m) != 1 || m[h.Name] != int64(len(want)) {
		t.Errorf("list after commit: %v", m)
	}
	if err := p.Commit(ctx, store.Handle{Kind: store.KindData, Name: Name(42)}); err == nil {
		t.Errorf("second commit of one pending file succeeded")
	}
	p.Abort() // after commit: nothing to do, and the file stays
	if !exists(t, be, h) {
		t.Errorf("abort after commit removed %s", h)
	}
}

func testStreamExist(t *testing.T, be store.Backend, ss store.StreamSaver) {
	h := store.Handle{Kind: store.KindIndex, Name: Name(43)}
	first := Data(43, 5000)
	save(t, be, h, first)
	p := startStream(t, ss, store.KindIndex)
	if _, err := p.Write(Data(44, 7000)); err != nil {
		t.Fatal(err)
	}
	if err := p.Commit(context.Background(), h); !errors.Is(err, store.ErrExist) {
		t.Errorf("commit over %s: want ErrExist, got %v", h, err)
	}
	if got := load(t, be, h, 0, 0); !bytes.Equal(got, first) {
		t.Errorf("commit changed %s (%d bytes, want the first %d)", h, len(got), len(first))
	}
	if m := list(t, be, store.KindIndex); len(m) != 1 {
		t.Errorf("list after the refused commit: %v", m)
	}
}

func testStreamAbort(t *testing.T, be store.Backend, ss store.StreamSaver) {
	p := startStream(t, ss, store.KindSnapshots)
	if _, err := p.Write(Data(45, 3<<20)); err != nil {
		t.Fatal(err)
	}
	p.Abort()
	p.Abort()
	if err := p.Commit(context.Background(), store.Handle{Kind: store.KindSnapshots, Name: Name(45)}); err == nil {
		t.Errorf("commit after abort succeeded")
	}
	if m := list(t, be, store.KindSnapshots); len(m) != 0 {
		t.Errorf("aborted file listed: %v", m)
	}
}

func testStreamKind(t *testing.T, be store.Backend, ss store.StreamSaver) {
	if p, err := ss.SaveStream(context.Background(), store.KindConfig); err == nil {
		p.Abort()
		t.Errorf("streamed save of the config accepted")
	}
	if p, err := ss.SaveStream(context.Background(), store.Kind("../x")); err == nil {
		p.Abort()
		t.Errorf("streamed save of kind ../x accepted")
	}
	p := startStream(t, ss, store.KindIndex)
	if _, err := p.Write([]byte("index bytes")); err != nil {
		t.Fatal(err)
	}
	h := store.Handle{Kind: store.KindData, Name: Name(46)}
	if err := p.Commit(context.Background(), h); err == nil {
		t.Errorf("an index stream committed as %s", h)
	}
	if exists(t, be, h) {
		t.Errorf("%s exists after the refused commit", h)
	}
	p = startStream(t, ss, store.KindData)
	bad := store.Handle{Kind: store.KindData, Name: "../../config"}
	if err := p.Commit(context.Background(), bad); err == nil {
		t.Errorf("commit as %q accepted", bad.Name)
	}
}

// Several pending files at once, written in interleaved pieces and committed in reverse order:
// what a repository with several open packs does.
func testStreamConcurrent(t *testing.T, be store.Backend, ss store.StreamSaver) {
	const n = 4
	ps := make([]store.Pending, n)
	want := make([][]byte, n)
	for i := range ps {
		ps[i] = startStream(t, ss, store.KindData)
		want[i] = Data(uint64(50+i), 1<<20+i*4099)
	}
	for off := 0; off < 1<<20+n*4099; off += 65536 {
		for i, p := range ps {
			if off < len(want[i]) {
				if _, err := p.Write(want[i][off:min(off+65536, len(want[i]))]); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := n - 1; i >= 0; i-- {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = ps[i].Commit(context.Background(), store.Handle{Kind: store.KindData, Name: Name(50 + i)})
		}(i)
	}
	wg.Wait()
	for i := range ps {
		if errs[i] != nil {
			t.Fatalf("commit %d: %v", i, errs[i])
		}
		if got := load(t, be, store.Handle{Kind: store.KindData, Name: Name(50 + i)}, 0, 0); !bytes.Equal(got, want[i]) {
			t.Errorf("file %d: %d bytes, want %d", i, len(got), len(want[i]))
		}
	}
}

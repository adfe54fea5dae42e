package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// LargeSize is the size of the file the "large" subtest streams through Save and Load: bigger
// than a default pack (32 MiB would be slow over SSH in CI), big enough that a backend that buffers
// whole files or truncates at a chunk boundary fails.
const LargeSize = 24<<20 + 12345

// Run runs every conformance subtest against backends made by open.
func Run(t *testing.T, open func(t *testing.T) store.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, be store.Backend)
	}{
		{"create", testCreate},
		{"create-refuses-packs-without-config", testCreateRefusesLostConfig},
		{"save-load", testSaveLoad},
		{"offset-length", testOffsetLength},
		{"stat", testStat},
		{"missing", testMissing},
		{"exist", testExist},
		{"list", testList},
		{"remove", testRemove},
		{"empty-file", testEmpty},
		{"large-file", testLarge},
		{"concurrent-saves", testConcurrent},
		{"concurrent-same-name", testConcurrentSameName},
		{"context-cancel", testCancel},
		{"failing-reader", testFailingReader},
	}
	created := func(t *testing.T) store.Backend {
		be := open(t)
		t.Cleanup(func() {
			if err := be.Close(); err != nil {
				t.Errorf("close backend %s: %v", be.Location(), err)
			}
		})
		if err := be.Create(context.Background()); err != nil {
			t.Fatalf("create %s: %v", be.Location(), err)
		}
		return be
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, created(t)) })
	}
	for _, tc := range streamTests {
		t.Run(tc.name, func(t *testing.T) {
			be := created(t)
			if ss, ok := streamSaver(t, be); ok {
				tc.fn(t, be, ss)
			}
		})
	}
}

// Data returns n deterministic pseudo-random bytes for seed.
func Data(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = NewReader(seed, int64(n)).Read(b)
	return b
}

// NewReader returns a reader of n deterministic pseudo-random bytes, so large files need no memory.
func NewReader(seed uint64, n int64) io.Reader {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	key[2] = byte(seed >> 16)
	return io.LimitReader(rand.NewChaCha8(key), n)
}

// Name returns a 64-hex-digit name like the repository uses (ids of packs, index files, snapshots).
func Name(i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("storetest-%d", i)))
	return fmt.Sprintf("%x", sum)
}

func save(t *testing.T, be store.Backend, h store.Handle, data []byte) {
	t.Helper()
	if err := be.Save(context.Background(), h, bytes.NewReader(data)); err != nil {
		t.Fatalf("save %s: %v", h, err)
	}
}

func load(t *testing.T, be store.Backend, h store.Handle, off, length int64) []byte {
	t.Helper()
	rd, err := be.Load(context.Background(), h, off, length)
	if err != nil {
		t.Fatalf("load %s at %d+%d: %v", h, off, length, err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("read %s at %d+%d: %v", h, off, length, err)
	}
	return b
}

func list(t *testing.T, be store.Backend, k store.Kind) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	err := be.List(context.Background(), k, func(fi store.FileInfo) error {
		if _, dup := m[fi.Name]; dup {
			t.Errorf("list %s: %s listed twice", k, fi.Name)
		}
		m[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", k, err)
	}
	return m
}

func exists(t *testing.T, be store.Backend, h store.Handle) bool {
	t.Helper()
	_, err := be.Stat(context.Background(), h)
	if err == nil {
		return true
	}
	if !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("stat %s: want nil or ErrNotExist, got %v", h, err)
	}
	return false
}

func testCreate(t *testing.T, be store.Backend) {
	if be.Location() == "" {
		t.Error("Location is empty")
	}
	for _, k := range store.Kinds {
		if got := list(t, be, k); len(got) != 0 {
			t.Errorf("fresh backend lists %d %s files", len(got), k)
		}
	}
	save(t, be, store.Handle{Kind: store.KindConfig}, []byte(`{"version":1}`))
	if err := be.Create(context.Background()); err == nil {
		t.Error("Create over an existing config succeeded; want an error")
	}
	if got := load(t, be, store.Handle{Kind: store.KindConfig}, 0, 0); string(got) != `{"version":1}` {
		t.Errorf("config after second Create = %q", got)
	}
}

// A location with packs but no config is a repository whose config was lost: a new config
// there would make every old pack unreadable (another repository id, another key).
func testCreateRefusesLostConfig(t *testing.T, be store.Backend) {
	save(t, be, store.Handle{Kind: store.KindData, Name: Name(1)}, Data(1, 100))
	err := be.Create(context.Background())
	if !errors.Is(err, store.ErrExist) || !strings.Contains(err.Error(), "no config") {
		t.Fatalf("Create over packs without a config: %v; want ErrExist saying the config is missing", err)
	}
	if _, err := be.Stat(context.Background(), store.Handle{Kind: store.KindConfig}); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("config after the refused Create: %v", err)
	}
}

func testSaveLoad(t *testing.T, be store.Backend) {
	for i, k := range store.Kinds {
		h := store.Handle{Kind: k, Name: Name(i)}
		want := Data(uint64(i), 1000+i*777)
		save(t, be, h, want)
		if got := load(t, be, h, 0, 0); !bytes.Equal(got, want) {
			t.Errorf("load %s: got %d bytes, want %d equal bytes", h, len(got), len(want))
		}
	}
}

func testOffsetLength(t *testing.T, be store.Backend) {
	want := Data(7, 100_000)
	h := store.Handle{Kind: store.KindData, Name: Name(1)}
	save(t, be, h, want)
	for _, c := range []struct{ off, length int64 }{
		{0, 0}, {0, 1}, {1, 0}, {4096, 4096}, {99_999, 1}, {99_999, 0}, {12_345, 54_321}, {0, 100_000},
	} {
		end := int64(len(want))
		if c.length > 0 {
			end = c.off + c.length
		}
		if got := load(t, be, h, c.off, c.length); !bytes.Equal(got, want[c.off:end]) {
			t.Errorf("load at %d+%d: got %d bytes, want %d equal bytes", c.off, c.length, len(got), end-c.off)
		}
	}
}

func testStat(t *testing.T, be store.Backend) {
	h := store.Handle{Kind: store.KindIndex, Name: Name(2)}
	save(t, be, h, Data(2, 4321))
	fi, err := be.Stat(context.Background(), h)
	if err != nil {
		t.Fatalf("stat %s: %v", h, err)
	}
	if fi.Size != 4321 || fi.Name != h.Name {
		t.Errorf("stat %s = %+v, want name %s size 4321", h, fi, h.Name)
	}
	// ModTime is optional, but if given it must be the store's idea of "now": prune trusts it to
	// spare young packs, so a zone or unit error (1970, or hours off) would delete the wrong ones.
	if !fi.ModTime.IsZero() {
		if d := time.Since(fi.ModTime); d < -time.Hour || d > time.Hour {
			t.Errorf("stat %s: ModTime %s is %s away from now", h, fi.ModTime, d)
		}
	}
	err = be.List(context.Background(), store.KindIndex, func(li store.FileInfo) error {
		if li.Name == h.Name && !li.ModTime.Equal(fi.ModTime) && !li.ModTime.IsZero() {
			t.Errorf("list and stat disagree about %s's ModTime: %s vs %s", h, li.ModTime, fi.ModTime)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
}

func testMissing(t *testing.T, be store.Backend) {
	ctx := context.Background()
	h := store.Handle{Kind: store.KindSnapshots, Name: Name(3)}
	if _, err := be.Stat(ctx, h); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("stat missing: want ErrNotExist, got %v", err)
	}
	if rd, err := be.Load(ctx, h, 0, 0); !errors.Is(err, store.ErrNotExist) {
		if err == nil {
			rd.Close()
		}
		t.Errorf("load missing: want ErrNotExist, got %v", err)
	}
	if err := be.Remove(ctx, h); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("remove missing: want ErrNotExist, got %v", err)
	}
	if _, err := be.Stat(ctx, store.Handle{Kind: store.KindConfig}); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("stat missing config: want ErrNotExist, got %v", err)
	}
}

func testExist(t *testing.T, be store.Backend) {
	h := store.Handle{Kind: store.KindData, Name: Name(4)}
	first := Data(4, 5000)
	save(t, be, h, first)
	err := be.Save(context.Background(), h, bytes.NewReader(Data(5, 6000)))
	if !errors.Is(err, store.ErrExist) {
		t.Errorf("second save of %s: want ErrExist, got %v", h, err)
	}
	if got := load(t, be, h, 0, 0); !bytes.Equal(got, first) {
		t.Errorf("second save changed %s (%d bytes, want the first %d)", h, len(got), len(first))
	}
	cfg := store.Handle{Kind: store.KindConfig}
	save(t, be, cfg, []byte("a"))
	if err := be.Save(context.Background(), cfg, bytes.NewReader([]byte("b"))); !errors.Is(err, store.ErrExist) {
		t.Errorf("second save of config: want ErrExist, got %v", err)
	}
}

func testList(t *testing.T, be store.Backend) {
	want := map[store.Kind]map[string]int64{store.KindData: {}, store.KindSnapshots: {}, store.KindLocks: {}}
	i := 0
	for k := range want {
		for j := 0; j < 20; j++ {
			i++
			name := Name(i)
			save(t, be, store.Handle{Kind: k, Name: name}, Data(uint64(i), i))
			want[k][name] = int64(i)
		}
	}
	for _, k := range store.Kinds {
		got := list(t, be, k)
		if fmt.Sprint(sortedKeys(got)) != fmt.Sprint(sortedKeys(want[k])) {
			t.Errorf("list %s: got %d names, want %d: %v", k, len(got), len(want[k]), sortedKeys(got))
			continue
		}
		for name, size := range want[k] {
			if got[name] != size {
				t.Errorf("list %s: %s has size %d, want %d", k, name, got[name], size)
			}
		}
	}
	stop := errors.New("stop")
	n := 0
	err := be.List(context.Background(), store.KindData, func(store.FileInfo) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("list returning an error from fn: got %v after %d calls, want the error after 1", err, n)
	}
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func testRemove(t *testing.T, be store.Backend) {
	ctx := context.Background()
	a := store.Handle{Kind: store.KindLocks, Name: Name(5)}
	b := store.Handle{Kind: store.KindLocks, Name: Name(6)}
	save(t, be, a, []byte("a"))
	save(t, be, b, []byte("b"))
	if err := be.Remove(ctx, a); err != nil {
		t.Fatalf("remove %s: %v", a, err)
	}
	if exists(t, be, a) {
		t.Errorf("%s still exists after Remove", a)
	}
	if got := list(t, be, store.KindLocks); len(got) != 1 || got[b.Name] != 1 {
		t.Errorf("list after remove = %v, want only %s", got, b.Name)
	}
	// A removed name may be written again (lock files are rewritten under the same scheme).
	save(t, be, a, []byte("again"))
	if got := load(t, be, a, 0, 0); string(got) != "again" {
		t.Errorf("load re-saved %s = %q", a, got)
	}
}

func testEmpty(t *testing.T, be store.Backend) {
	h := store.Handle{Kind: store.KindKeys, Name: Name(7)}
	save(t, be, h, nil)
	if got := load(t, be, h, 0, 0); len(got) != 0 {
		t.Errorf("load empty file: got %d bytes", len(got))
	}
	fi, err := be.Stat(context.Background(), h)
	if err != nil || fi.Size != 0 {
		t.Errorf("stat empty file = %+v, %v; want size 0", fi, err)
	}
	if got := list(t, be, store.KindKeys); len(got) != 1 {
		t.Errorf("list keys = %v, want the empty file", got)
	}
}

func testLarge(t *testing.T, be store.Backend) {
	h := store.Handle{Kind: store.KindData, Name: Name(8)}
	if err := be.Save(context.Background(), h, NewReader(8, LargeSize)); err != nil {
		t.Fatalf("save %d bytes: %v", LargeSize, err)
	}
	want := sha256.New()
	_, _ = io.Copy(want, NewReader(8, LargeSize))
	rd, err := be.Load(context.Background(), h, 0, 0)
	if err != nil {
		t.Fatalf("load large: %v", err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rd)
	rd.Close()
	if err != nil || n != LargeSize || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("load large: %d bytes, err %v, hash equal %v; want %d equal bytes", n, err,
			bytes.Equal(got.Sum(nil), want.Sum(nil)), LargeSize)
	}
	// A range near the end of a large file (pack headers are read this way).
	all := Data(8, LargeSize)
	off := int64(LargeSize - 70_000)
	if tail := load(t, be, h, off, 65_536); !bytes.Equal(tail, all[off:off+65_536]) {
		t.Errorf("range near the end of the large file differs")
	}
}

func testConcurrent(t *testing.T, be store.Backend) {
	const workers, each = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for j := 0; j < each; j++ {
				i := 100 + w*each + j
				h := store.Handle{Kind: store.KindData, Name: Name(i)}
				if err := be.Save(context.Background(), h, bytes.NewReader(Data(uint64(i), 10_000+i))); err != nil {
					errs <- fmt.Errorf("save %s: %w", h, err)
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := list(t, be, store.KindData)
	if len(got) != workers*each {
		t.Fatalf("list after concurrent saves: %d files, want %d", len(got), workers*each)
	}
	for i := 100; i < 100+workers*each; i++ {
		h := store.Handle{Kind: store.KindData, Name: Name(i)}
		if !bytes.Equal(load(t, be, h, 0, 0), Data(uint64(i), 10_000+i)) {
			t.Errorf("%s differs after concurrent saves", h)
		}
	}
}

func testConcurrentSameName(t *testing.T, be store.Backend) {
	const writers = 6
	h := store.Handle{Kind: store.KindIndex, Name: Name(9)}
	data := Data(9, 300_000)
	var wg sync.WaitGroup
	results := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- be.Save(context.Background(), h, bytes.NewReader(data))
		}()
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrExist):
			t.Errorf("concurrent save of one name: want nil or ErrExist, got %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("concurrent saves of one name: %d succeeded, want exactly 1", ok)
	}
	if !bytes.Equal(load(t, be, h, 0, 0), data) {
		t.Errorf("%s differs after concurrent saves of one name", h)
	}
}

// cancelReader cancels its context after the first read and keeps delivering data, like a slow
// source interrupted by SIGINT.
type cancelReader struct {
	r      io.Reader
	cancel context.CancelFunc
	reads  int
}

func (c *cancelReader) Read(p []byte) (int, error) {
	c.reads++
	if c.reads == 2 {
		c.cancel()
	}
	return c.r.Read(p)
}

func testCancel(t *testing.T, be store.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h := store.Handle{Kind: store.KindData, Name: Name(10)}
	if err := be.Save(ctx, h, bytes.NewReader([]byte("x"))); err == nil {
		t.Errorf("save with a cancelled context succeeded")
	}
	if exists(t, be, h) {
		t.Errorf("save with a cancelled context left %s", h)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	h = store.Handle{Kind: store.KindData, Name: Name(11)}
	err := be.Save(ctx, h, &cancelReader{r: NewReader(11, 16<<20), cancel: cancel})
	if err == nil {
		t.Errorf("save cancelled mid-stream succeeded")
	}
	if exists(t, be, h) {
		t.Errorf("save cancelled mid-stream left %s", h)
	}
	if got := list(t, be, store.KindData); len(got) != 0 {
		t.Errorf("cancelled saves left files: %v", got)
	}
}

type failingReader struct {
	r     io.Reader
	after int64
}

var errSource = errors.New("storetest: source read failed")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errSource
	}
	if int64(len(p)) > f.after {
		p = p[:f.after]
	}
	n, err := f.r.Read(p)
	f.after -= int64(n)
	return n, err
}

func testFailingReader(t *testing.T, be store.Backend) {
	h := store.Handle{Kind: store.KindSnapshots, Name: Name(12)}
	err := be.Save(context.Background(), h, &failingReader{r: NewReader(12, 1<<20), after: 200_000})
	if err == nil {
		t.Fatalf("save from a failing reader succeeded")
	}
	if exists(t, be, h) {
		t.Errorf("save from a failing reader left %s", h)
	}
	if got := list(t, be, store.KindSnapshots); len(got) != 0 {
		t.Errorf("failed save is listed: %v", got)
	}
	// The name is still free afterwards.
	save(t, be, h, []byte("ok"))
}

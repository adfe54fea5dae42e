package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/storetest"
)

// batchResult is what LoadBlobs delivered for one position.
type batchResult struct {
	calls int
	data  []byte
	err   error
}

func loadBatch(t *testing.T, bs BlobStore, ids []ID) []batchResult {
	t.Helper()
	got := make([]batchResult, len(ids))
	err := LoadBlobs(context.Background(), bs, DataBlob, ids, func(i int, data []byte, err error) error {
		got[i].calls++
		got[i].data, got[i].err = bytes.Clone(data), err
		return nil
	})
	if err != nil {
		t.Fatalf("LoadBlobs: %v", err)
	}
	return got
}

// saveSmall stores n small blobs of varied sizes (some compressible) and returns them.
func saveSmall(t *testing.T, r *Repository, n int) ([]ID, [][]byte) {
	t.Helper()
	ids, datas := make([]ID, n), make([][]byte, n)
	for i := range n {
		d := randBlock(uint64(100+i), 200+(i*977)%6000)
		if i%3 == 0 {
			d = bytes.Repeat([]byte{byte(i), 'x', 'y'}, 300+i)
		}
		ids[i], datas[i] = mustSaveWhole(t, r, d), d
	}
	mustFlush(t, r)
	return ids, datas
}

func TestLoadBlobsFewLoadsEveryPosition(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "encrypted"}[enc], func(t *testing.T) {
			dir, r, mod := newRepoEncryptedIf(t, enc)
			ids, datas := saveSmall(t, r, 120)
			cb := &storetest.LoadCounter{Backend: local.New(dir)}
			rb := testOpenOn(t, cb, mod)
			// Reverse order, a blob asked for twice, and one the repository lacks.
			var ask []ID
			var want [][]byte
			for i := len(ids) - 1; i >= 0; i-- {
				ask, want = append(ask, ids[i]), append(want, datas[i])
			}
			ask, want = append(ask, ids[7]), append(want, datas[7])
			missing := rb.BlobID([]byte("never stored"))
			ask, want = append(ask, missing), append(want, nil)

			before := cb.PackLoads.Load()
			got := loadBatch(t, rb, ask)
			loads := cb.PackLoads.Load() - before
			for i, g := range got {
				if g.calls != 1 {
					t.Fatalf("position %d delivered %d times", i, g.calls)
				}
				if want[i] == nil {
					if !errors.Is(g.err, ErrBlobNotFound) {
						t.Fatalf("missing blob: err %v, want ErrBlobNotFound", g.err)
					}
					continue
				}
				if g.err != nil || !bytes.Equal(g.data, want[i]) {
					t.Fatalf("position %d: err %v, %d bytes, want %d", i, g.err, len(g.data), len(want[i]))
				}
			}
			packs := countFiles(t, cb.Backend, store.KindData)
			if loads == 0 || loads > int64(packs) {
				t.Fatalf("%d pack loads for %d blobs in %d packs, want at most one per pack", loads, len(ask), packs)
			}
		})
	}
}

func TestLoadBlobsDamagedBlobSpoilsOnlyItself(t *testing.T) {
	dir, r := newRepo(t)
	ids, datas := saveSmall(t, r, 40)
	e, pack, err := r.locate(DataBlob, ids[20])
	if err != nil {
		t.Fatal(err)
	}
	path := local.New(dir).Path(store.Handle{Kind: store.KindData, Name: pack.String()})
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], int64(e.offset)+int64(e.stored)/2); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], int64(e.offset)+int64(e.stored)/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got := loadBatch(t, r, ids)
	for i, g := range got {
		if i == 20 {
			if !errors.Is(g.err, ErrCorrupt) {
				t.Fatalf("damaged blob: err %v, want ErrCorrupt", g.err)
			}
			continue
		}
		if g.err != nil || !bytes.Equal(g.data, datas[i]) {
			t.Fatalf("blob %d next to the damaged one: err %v", i, g.err)
		}
	}
}

func TestLoadBlobsPackGoneFailsItsBlobs(t *testing.T) {
	dir, r := newRepo(t)
	ids, datas := saveSmall(t, r, 60)
	_, pack, err := r.locate(DataBlob, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(local.New(dir).Path(store.Handle{Kind: store.KindData, Name: pack.String()})); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for i, g := range loadBatch(t, r, ids) {
		_, p, _ := r.locate(DataBlob, ids[i])
		if p == pack {
			lost++
			if g.err == nil || !errors.Is(g.err, store.ErrNotExist) {
				t.Fatalf("blob %d of the removed pack: err %v", i, g.err)
			}
			continue
		}
		if g.err != nil || !bytes.Equal(g.data, datas[i]) {
			t.Fatalf("blob %d of another pack: err %v", i, g.err)
		}
	}
	if lost == 0 || lost == len(ids) {
		t.Fatalf("%d of %d blobs lost: the test needs blobs in and outside the pack", lost, len(ids))
	}
}

func TestLoadBlobsStopsOnCallbackError(t *testing.T) {
	_, r := newRepo(t)
	ids, _ := saveSmall(t, r, 30)
	stop := errors.New("enough")
	calls := 0
	err := LoadBlobs(context.Background(), r, DataBlob, ids, func(int, []byte, error) error {
		calls++
		if calls == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 5 {
		t.Fatalf("err %v after %d calls, want the callback's error after 5", err, calls)
	}
}

func TestLoadBlobsRebuildsPatches(t *testing.T) {
	_, r := newRepo(t)
	base := randBlock(1, testBlockSize)
	block := changeSubs(base, testSubSize, []int{2, 9}, 1)
	baseID := mustSaveWhole(t, r, base)
	id, _ := mustPatch(t, r, base, block, []int{2, 9})
	mustFlush(t, r)
	if !isPatchBlob(r, id) {
		t.Fatal("the changed block was not stored as a patch")
	}
	got := loadBatch(t, r, []ID{id, baseID})
	if got[0].err != nil || !bytes.Equal(got[0].data, block) || got[1].err != nil || !bytes.Equal(got[1].data, base) {
		t.Fatalf("patch: err %v; base: err %v", got[0].err, got[1].err)
	}
}

// plainStore hides Repository's LoadBlobs: the package function must fall back to LoadBlob.
type plainStore struct{ BlobStore }

func TestLoadBlobsFallsBackBlobByBlob(t *testing.T) {
	_, r := newRepo(t)
	ids, datas := saveSmall(t, r, 10)
	if _, ok := BlobStore(plainStore{r}).(BatchLoader); ok {
		t.Fatal("plainStore is a BatchLoader")
	}
	for i, g := range loadBatch(t, plainStore{r}, append(ids, ids[3])) {
		want := datas[i%len(datas)]
		if i == len(ids) {
			want = datas[3]
		}
		if g.calls != 1 || g.err != nil || !bytes.Equal(g.data, want) {
			t.Fatalf("position %d: %d calls, err %v", i, g.calls, g.err)
		}
	}
}

func TestBatchRunLimits(t *testing.T) {
	blob := func(pack, off, n uint32) batchBlob {
		return batchBlob{e: indexEntry{pack: pack, offset: off, stored: n}}
	}
	cases := []struct {
		name  string
		blobs []batchBlob
		want  int
	}{
		{"adjacent", []batchBlob{blob(0, 0, 100), blob(0, 100, 100), blob(0, 200, 5)}, 3},
		{"gap within", []batchBlob{blob(0, 0, 100), blob(0, 100+batchGap, 10)}, 2},
		{"gap too wide", []batchBlob{blob(0, 0, 100), blob(0, 101+batchGap, 10)}, 1},
		{"other pack", []batchBlob{blob(0, 0, 100), blob(1, 100, 10)}, 1},
		{"span", []batchBlob{blob(0, 0, batchSpan/2), blob(0, batchSpan/2, batchSpan/2), blob(0, batchSpan, 1)}, 2},
	}
	for _, c := range cases {
		if got := batchRun(c.blobs); got != c.want {
			t.Errorf("%s: run of %d, want %d", c.name, got, c.want)
		}
	}
}

package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestInitOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	if _, err := Open(ctx, local.New(dir), Options{}); !errors.Is(err, ErrNotRepository) || !IsPermanent(err) {
		t.Fatalf("open missing repo: want permanent ErrNotRepository, got %v", err)
	}
	testInit(t, dir)
	if _, err := Init(ctx, local.New(dir), InitOptions{}); !errors.Is(err, store.ErrExist) {
		t.Errorf("init twice: want ErrExist, got %v", err)
	}
	r := testOpen(t, dir, nil)
	cfg := r.Config()
	if cfg.Version != 3 || !r.PatchesEnabled() || cfg.BlockSize != testBlockSize || cfg.Compression != "zstd" || cfg.Encryption != "none" ||
		len(cfg.ID) != 32 || cfg.Created.IsZero() {
		t.Errorf("config = %+v", cfg)
	}

	newer := filepath.Join(t.TempDir(), "newer")
	testInit(t, newer)
	b, _ := os.ReadFile(filepath.Join(newer, "config"))
	b = bytes.Replace(b, []byte(`"version": 3`), []byte(`"version": 7`), 1)
	if err := os.WriteFile(filepath.Join(newer, "config"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, local.New(newer), Options{})
	if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), "repository format 7 is newer than this snapferry supports (3); upgrade snapferry") {
		t.Errorf("open newer format: got %v", err)
	}

	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "config"), []byte("[core]\nbare = false\n"), 0o600)
	if _, err := Open(ctx, local.New(junk), Options{}); !errors.Is(err, ErrNotRepository) {
		t.Errorf("open a folder with a foreign config: want ErrNotRepository, got %v", err)
	}
	if _, err := Init(ctx, local.New(t.TempDir()), InitOptions{BlockSize: 1000}); err == nil || !strings.Contains(err.Error(), "block size 1000") {
		t.Errorf("init with a bad block size: got %v", err)
	}
	if IsPermanent(&LockError{}) {
		t.Error("a lock conflict must be retryable")
	}
}

func TestBlobRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	blobs := [][]byte{
		{},
		[]byte("hello"),
		bytes.Repeat([]byte("compressible "), 5000),
		image{seed: 1, blocks: 1}.block(1), // random: stored raw
	}
	for _, b := range blobs {
		added, err := r.SaveBlob(ctx, DataBlob, r.BlobID(b), b)
		if err != nil || !added {
			t.Fatalf("save %d bytes: added %v, %v", len(b), added, err)
		}
		if added, _ := r.SaveBlob(ctx, DataBlob, r.BlobID(b), b); added {
			t.Errorf("second save of the same blob reported added")
		}
		if !r.HasBlob(DataBlob, r.BlobID(b)) {
			t.Errorf("HasBlob false for a queued blob")
		}
	}
	if _, err := r.LoadBlob(ctx, DataBlob, r.BlobID(blobs[1]), nil); err == nil || !strings.Contains(err.Error(), "Flush") {
		t.Errorf("load before flush: want an unfinished-pack error, got %v", err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if st.BlobsNew != 4 || st.BlobsReused != 4 || st.PacksUploaded != 1 || st.IndexFiles != 1 {
		t.Errorf("stats = %+v", st)
	}
	r2 := testOpen(t, dir, nil)
	buf := make([]byte, 0, 10)
	for _, b := range blobs {
		got, err := r2.LoadBlob(ctx, DataBlob, r2.BlobID(b), buf)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("reload %d-byte blob: %d bytes, %v", len(b), len(got), err)
		}
	}
	var missing ID
	missing[0] = 1
	if _, err := r2.LoadBlob(ctx, DataBlob, missing, nil); !errors.Is(err, ErrBlobNotFound) {
		t.Errorf("load missing blob: %v", err)
	}
	if _, err := r2.SaveBlob(ctx, DataBlob, missing, make([]byte, MaxBlobSize+1)); err == nil {
		t.Error("saving a blob over the limit succeeded")
	}
}

// spoolOnly hides the local store's StreamSaver, as an sftp:// store or a --bwlimit wrapper does.
type spoolOnly struct{ store.Backend }

// A store that cannot stream packs gets them through a temp file in Options.TempDir, which must
// then be set; a streaming store (a local folder, ssh://) needs none.
func TestSaveBlobNeedsTempDir(t *testing.T) {
	ctx := context.Background()
	dir, _ := newRepo(t)
	r, err := Open(ctx, spoolOnly{local.New(dir)}, Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.SaveBlob(ctx, DataBlob, r.BlobID([]byte("x")), []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "TempDir") {
		t.Fatalf("save without TempDir: %v", err)
	}
	if r.HasBlob(DataBlob, r.BlobID([]byte("x"))) {
		t.Error("a failed save left the blob reserved")
	}

	s := testOpen(t, dir, func(o *Options) { o.TempDir = "" })
	if _, err := s.SaveBlob(ctx, DataBlob, s.BlobID([]byte("y")), []byte("y")); err != nil {
		t.Fatalf("save into a streaming store without TempDir: %v", err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := testOpen(t, dir, nil).LoadBlob(ctx, DataBlob, s.BlobID([]byte("y")), nil); err != nil || string(got) != "y" {
		t.Fatalf("load the streamed blob: %q, %v", got, err)
	}
}

func TestImageBackupDedupeAcrossRuns(t *testing.T) {
	dir, r := newRepo(t)
	im := image{seed: 3, blocks: 40}
	s1 := backupImage(t, r, "/vmfs/volumes/ds1/a.img", im, t0)
	st1 := r.Stats()
	if st1.PacksUploaded < 2 {
		t.Errorf("first backup wrote %d packs, want several (pack size %d)", st1.PacksUploaded, testPackSize)
	}
	r2 := testOpen(t, dir, nil)
	s2 := backupImage(t, r2, "/vmfs/volumes/ds1/a.img", im, t0.Add(time.Hour))
	st2 := r2.Stats()
	if st2.BlobsNew != 0 || st2.BytesStored != 0 {
		t.Errorf("unchanged second backup stored %d new blobs, %d bytes; want none", st2.BlobsNew, st2.BytesStored)
	}
	if s1 == s2 {
		t.Error("two snapshots at different times have one id")
	}
	changed := image{seed: 3, blocks: 45} // 5 more blocks, the first 40 equal
	r3 := testOpen(t, dir, nil)
	s3 := backupImage(t, r3, "/vmfs/volumes/ds1/a.img", changed, t0.Add(2*time.Hour))
	if st := r3.Stats(); st.BlobsNew > 6 || st.BlobsReused < 30 {
		t.Errorf("grown image: %d new, %d reused blobs", st.BlobsNew, st.BlobsReused)
	}
	r4 := testOpen(t, dir, nil)
	verifyImage(t, r4, s1, im)
	verifyImage(t, r4, s2, im)
	verifyImage(t, r4, s3, changed)
	mustCheck(t, r4, true)
}

func TestConcurrentSaveBlob(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	im := image{seed: 4, blocks: 60}
	var wg sync.WaitGroup
	var added sync.Map
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < im.blocks; i++ {
				b := im.block((i + w*7) % im.blocks) // every worker saves every block, in another order
				if b == nil {
					continue
				}
				id := r.BlobID(b)
				ok, err := r.SaveBlob(ctx, DataBlob, id, b)
				if err != nil {
					errs <- err
					return
				}
				if ok {
					if _, dup := added.LoadOrStore(id, w); dup {
						errs <- fmt.Errorf("blob %s added twice", id.Short())
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	distinct := 0
	added.Range(func(any, any) bool { distinct++; return true })
	// Every pack together holds each blob exactly once.
	stored := 0
	err := r.forEachIndexFile(ctx, func(_ ID, p indexedPack) error { stored += len(p.Blobs); return nil }, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := im.blocks - im.blocks/7; distinct != want || stored != want {
		t.Errorf("added %d, stored %d blobs; want %d each", distinct, stored, want)
	}
	r2 := testOpen(t, dir, nil)
	for i := 0; i < im.blocks; i++ {
		if b := im.block(i); b != nil {
			got, err := r2.LoadBlob(ctx, DataBlob, r2.BlobID(b), nil)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("block %d: %v", i, err)
			}
		}
	}
}

func TestSnapshotsFind(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	a1 := backupImage(t, r, "a", image{seed: 5, blocks: 3}, t0)
	a2 := backupImage(t, r, "a", image{seed: 5, blocks: 3}, t0.Add(time.Hour))
	b1 := backupImage(t, r, "b", image{seed: 6, blocks: 3}, t0.Add(2*time.Hour))
	all, err := r.ListSnapshots(ctx, SnapshotFilter{Source: "a"})
	if err != nil || len(all) != 2 || all[0].ID != a1 || all[1].ID != a2 {
		t.Fatalf("list = %v, %v", all, err)
	}
	got, err := r.FindSnapshot(ctx, "latest", SnapshotFilter{Source: "a"})
	if err != nil || got.ID != a2 {
		t.Errorf("latest of a = %v, %v; want %s", got.ID.Short(), err, a2.Short())
	}
	got, err = r.FindSnapshot(ctx, "latest", SnapshotFilter{Host: "testhost"})
	if err != nil || got.ID != b1 {
		t.Errorf("latest = %v, %v", got.ID.Short(), err)
	}
	if got, err := r.FindSnapshot(ctx, a1.Short(), SnapshotFilter{}); err != nil || got.ID != a1 {
		t.Errorf("find by prefix: %v, %v", got.ID.Short(), err)
	}
	if got, err := r.FindSnapshot(ctx, strings.ToUpper(a1.String()), SnapshotFilter{}); err != nil || got.ID != a1 {
		t.Errorf("find by full id: %v", err)
	}
	if _, err := r.FindSnapshot(ctx, "", SnapshotFilter{}); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("empty ref: %v", err)
	}
	// 17 snapshots: by pigeonhole two share a first hex digit, so some one-digit prefix is ambiguous.
	for i := 0; i < 14; i++ {
		backupImage(t, r, "c", image{seed: 5, blocks: 3}, t0.Add(time.Duration(10+i)*time.Hour))
	}
	ambiguous := false
	for _, d := range "0123456789abcdef" {
		_, err := r.FindSnapshot(ctx, string(d), SnapshotFilter{})
		if errors.Is(err, ErrAmbiguousSnapshot) {
			ambiguous = true
			if !strings.Contains(err.Error(), "give more digits") {
				t.Errorf("ambiguous message: %v", err)
			}
		}
	}
	if !ambiguous {
		t.Error("no one-digit prefix was reported ambiguous among 17 snapshots")
	}
	if _, err := r.FindSnapshot(ctx, "zz", SnapshotFilter{}); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("non-hex ref: %v", err)
	}
	if _, err := r.FindSnapshot(ctx, b1.Short(), SnapshotFilter{Source: "a"}); !errors.Is(err, ErrSnapshotNotFound) ||
		!strings.Contains(err.Error(), "source=a") {
		t.Errorf("filtered-out id: %v", err)
	}
	if _, err := r.FindSnapshot(ctx, "latest", SnapshotFilter{Host: "other"}); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("latest of unknown host: %v", err)
	}
	if err := r.RemoveSnapshot(ctx, a1); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveSnapshot(ctx, a1); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("remove twice: %v", err)
	}
	if _, err := r.LoadSnapshot(ctx, a1); !errors.Is(err, ErrSnapshotNotFound) {
		t.Errorf("load removed: %v", err)
	}
}

func TestSnapshotRefusesMissingBlobs(t *testing.T) {
	_, r := newRepo(t)
	var ghost ID
	ghost[5] = 9
	_, err := r.SaveSnapshot(context.Background(), &Snapshot{Time: t0, Source: "x", Kind: SnapshotImage,
		Disks: []Disk{{Name: "d", Map: []ID{ghost}}}})
	if !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("snapshot naming a missing map chunk: %v", err)
	}
	if n := countFiles(t, r.Backend(), store.KindSnapshots); n != 0 {
		t.Errorf("%d snapshots written", n)
	}
	// Time and host default to now and this host, so retention can group and order it.
	id, err := r.SaveSnapshot(context.Background(), &Snapshot{Source: "y", Kind: SnapshotFiles})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := r.LoadSnapshot(context.Background(), id)
	if err != nil || sn.Host != "testhost" || time.Since(sn.Time) > time.Minute || sn.Version != 1 {
		t.Errorf("defaults: %+v, %v", sn, err)
	}
}

func TestTreeSnapshotCheck(t *testing.T) {
	ctx := context.Background()
	_, r := newRepo(t)
	file := []byte("file content")
	fid := r.BlobID(file)
	mustSave(t, r, DataBlob, file)
	sub := &Tree{Nodes: []Node{{Name: "f", Type: NodeFile, Content: []ID{fid}, Size: uint64(len(file))}}}
	sb, _ := sub.Marshal()
	sid := mustSave(t, r, TreeBlob, sb)
	root := &Tree{Nodes: []Node{{Name: "etc", Type: NodeDir, Subtree: &sid}}}
	rb, _ := root.Marshal()
	rid := mustSave(t, r, TreeBlob, rb)
	snap, err := r.SaveSnapshot(ctx, &Snapshot{Time: t0, Host: "h", Kind: SnapshotFiles, Source: "/etc", Tree: &rid})
	if err != nil {
		t.Fatal(err)
	}
	mustCheck(t, r, true)
	// Remove the index: check must say the snapshot's blobs are missing and the packs unindexed.
	removeAll(t, r.Backend(), store.KindIndex)
	rep, err := r.Check(ctx, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || len(rep.DamagedSnapshots) != 1 || rep.DamagedSnapshots[0] != snap || len(rep.UnindexedPacks) == 0 {
		t.Fatalf("check without index: %+v", rep)
	}
	rb2, err := r.RebuildIndex(ctx)
	if err != nil || rb2.Blobs != 3 || len(rb2.BadPacks) != 0 {
		t.Fatalf("rebuild index: %+v, %v", rb2, err)
	}
	mustCheck(t, r, true)
}

func mustSave(t testing.TB, r *Repository, typ BlobType, b []byte) ID {
	t.Helper()
	id := r.BlobID(b)
	if _, err := r.SaveBlob(context.Background(), typ, id, b); err != nil {
		t.Fatal(err)
	}
	return id
}

func removeAll(t testing.TB, be store.Backend, k store.Kind) {
	t.Helper()
	var names []string
	be.List(context.Background(), k, func(fi store.FileInfo) error { names = append(names, fi.Name); return nil })
	for _, n := range names {
		if err := be.Remove(context.Background(), store.Handle{Kind: k, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
}

// ctxBoundStore's pending files fail once the context SaveStream got is done, as the ssh://
// client's do (its upload stream lives in that context).
type ctxBoundStore struct{ *local.Backend }

func (c ctxBoundStore) SaveStream(ctx context.Context, k store.Kind) (store.Pending, error) {
	p, err := c.Backend.SaveStream(ctx, k)
	if err != nil {
		return nil, err
	}
	return ctxBoundPending{p, ctx}, nil
}

type ctxBoundPending struct {
	store.Pending
	ctx context.Context
}

func (p ctxBoundPending) Write(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	return p.Pending.Write(b)
}

// A pack is opened by one SaveBlob call and finished by a later one or by Flush: the end of the
// opening call's context must not break its upload.
func TestStreamedPackOutlivesItsOpeningCall(t *testing.T) {
	dir, _ := newRepo(t)
	r, err := Open(context.Background(), ctxBoundStore{local.New(dir)}, Options{Hostname: "testhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	data := bytes.Repeat([]byte("outlive "), 1000)
	if _, err := r.SaveBlob(ctx, DataBlob, r.BlobID(data), data); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := r.Flush(context.Background()); err != nil {
		t.Fatalf("flush after the opening call's context ended: %v", err)
	}
	if got, err := testOpen(t, dir, nil).LoadBlob(context.Background(), DataBlob, r.BlobID(data), nil); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load: %d bytes, %v", len(got), err)
	}
}

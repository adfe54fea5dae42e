package repo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// plantFakes stores garbage under every blob id the repository indexes, through a second client
// that ignores the index (as a hostile append-only client would), and back-dates the index file
// naming them so it loads first: the worst case, in which the fakes are the copies the index
// uses. It returns the fake index file's id.
func plantFakes(t *testing.T, dir string, mod func(*Options)) ID {
	t.Helper()
	ctx := context.Background()
	victim := testOpen(t, dir, mod)
	att := testOpen(t, dir, mod)
	att.idx = newIndex()
	before := map[ID]bool{}
	for _, id := range victim.indexFiles {
		before[id] = true
	}
	type blob struct {
		id  ID
		typ BlobType
	}
	var blobs []blob
	victim.idx.forEach(func(id ID, e indexEntry) { blobs = append(blobs, blob{id, e.typ}) })
	for _, b := range blobs {
		fake := make([]byte, 300)
		copy(fake, b.id[:])
		if _, err := att.SaveBlob(ctx, b.typ, b.id, fake); err != nil {
			t.Fatal(err)
		}
	}
	if err := att.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var planted ID
	for _, id := range att.indexFiles {
		if !before[id] {
			planted = id
		}
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "index", planted.String()), old, old); err != nil {
		t.Fatal(err)
	}
	return planted
}

func packFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.Walk(filepath.Join(dir, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out[filepath.Base(p)] = true
		}
		return err
	})
	return out
}

// TestPruneKeepsGenuineCopiesWhateverTheIndexOrder: with fake copies of every blob loaded first
// (so the index uses them), reads fall back to the genuine copies and prune verifies before it
// drops a copy: the genuine packs stay, the fakes go, check --read-data is clean.
func TestPruneKeepsGenuineCopiesWhateverTheIndexOrder(t *testing.T) {
	for _, enc := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", enc), func(t *testing.T) {
			ctx := context.Background()
			dir, r, mod := newRepoEncryptedIf(t, enc)
			im := image{seed: 7, blocks: 40}
			sid := backupImage(t, r, "vm1", im, time.Now())
			genuine := packFiles(t, dir)
			plantFakes(t, dir, mod)

			r2 := testOpen(t, dir, mod)
			if n := len(r2.idx.dups); n == 0 {
				t.Fatal("no duplicates indexed")
			}
			var e indexEntry
			r2.idx.forEach(func(_ ID, got indexEntry) { e = got })
			if genuine[r2.idx.packs[e.pack].String()] {
				t.Fatal("the test meant the fake copies to be the ones the index uses")
			}
			verifyImage(t, r2, sid, im) // falls back to the genuine copies
			rep, err := r2.Prune(ctx, PruneOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("prune: %+v", rep)
			after := packFiles(t, dir)
			for p := range genuine {
				if !after[p] {
					t.Fatalf("prune deleted genuine pack %s", p[:8])
				}
			}
			if len(after) != len(genuine) {
				t.Fatalf("%d packs after prune, want the %d genuine ones", len(after), len(genuine))
			}
			r3 := testOpen(t, dir, mod)
			mustCheck(t, r3, true)
			verifyImage(t, r3, sid, im)
		})
	}
}

// TestPruneTrustsPackHeadersOverLyingIndex: an index file that names a genuine pack with a
// made-up blob list (nothing snapshots use), loaded first, does not make prune delete it.
func TestPruneTrustsPackHeadersOverLyingIndex(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepo(t)
	im := image{seed: 9, blocks: 30}
	sid := backupImage(t, r, "vm1", im, time.Now())
	genuine := packFiles(t, dir)
	var lies []indexedPack
	for p := range genuine {
		id, _ := ParseID(p)
		junk := []byte("not in this pack")
		lies = append(lies, indexedPack{ID: id, Blobs: []packBlob{{packEntry: packEntry{Type: DataBlob, ID: r.BlobID(junk),
			Stored: uint32(len(junk)), Raw: uint32(len(junk))}}}})
	}
	liar, err := saveFile(ctx, r.be, store.KindIndex, encodeIndexFile(lies), nil)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "index", liar.String()), old, old)

	r2 := testOpen(t, dir, nil)
	if _, err := r2.Prune(ctx, PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	after := packFiles(t, dir)
	for p := range genuine {
		if !after[p] {
			t.Fatalf("prune deleted genuine pack %s named by a lying index", p[:8])
		}
	}
	r3 := testOpen(t, dir, nil)
	mustCheck(t, r3, true)
	verifyImage(t, r3, sid, im)
}

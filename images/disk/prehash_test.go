package disk

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/memblobs"
)

// prehashDone starts the pass for fx's image and waits until it has looked at the whole image
// (the backup would stop it wherever it got to).
func prehashDone(t *testing.T, fx *cacheFixture) *Prehash {
	t.Helper()
	p := StartPrehash(context.Background(), fx.src, filepath.Dir(fx.cache))
	if p == nil {
		t.Fatalf("no prehash pass for %s with the cache %s", fx.src, fx.cache)
	}
	<-p.done
	return p
}

// writeImageAt writes data at off in the image.
func writeImageAt(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// TestPrehashSkipsTheBlocksItFoundUnchanged: blocks the pass found unchanged are not read again
// by the backup. Block 7 is changed before the pass (the pass sees it and the backup stores it),
// block 300 after it (the backup trusts the pass and keeps the old blob, and warns that the image
// was modified while it was read: the read began with the pass).
func TestPrehashSkipsTheBlocksItFoundUnchanged(t *testing.T) {
	fx := newCacheFixture(t)
	first := backupCounted(t, fx.r, fx.src, fx.opts())
	fx.commit(t, first.d)
	writeImageAt(t, fx.src, 7*testBlock+100, memblobs.RandBytes(50, 64))

	p := prehashDone(t, fx)
	for _, i := range []int64{0, 6, 8, 24, 300, 301} { // data blocks of roundTripImage
		if !p.Unchanged(i) {
			t.Fatalf("block %d: not found unchanged by the pass", i)
		}
	}
	for _, i := range []int64{16, 17, 18, 19} {
		if p.Unchanged(i) {
			t.Fatalf("block %d is all zeros (no cache entry) but marked unchanged", i)
		}
	}
	if p.Unchanged(7) {
		t.Fatal("block 7 changed before the pass but is marked unchanged")
	}
	writeImageAt(t, fx.src, 300*testBlock, memblobs.RandBytes(60, testBlock))

	var warned []string
	o := fx.opts()
	o.Prehash = p
	o.Warn = func(s string) { warned = append(warned, s) }
	second := backupCounted(t, fx.r, fx.src, o)
	if second.hashed != 1 || second.saves != 1 || second.st.BlocksCached != fx.data-1 {
		t.Fatalf("with the pass: %d hashed, %d saved, %d cached; want 1, 1, %d", second.hashed, second.saves, second.st.BlocksCached, fx.data-1)
	}
	if second.d.Map == nil || len(warned) != 1 || !strings.Contains(warned[0], "modified while being read") {
		t.Fatalf("warnings %q: want one saying the image was modified while being read", warned)
	}
	if second.st.BytesRead != first.st.BytesRead {
		t.Fatalf("bytes read %d, want %d (the pass's reads count)", second.st.BytesRead, first.st.BytesRead)
	}
}

// TestPrehashMarksAreDroppedWhenTheyDoNotHold: with --rehash, another cache file or another
// image under the same path, the backup reads every block itself and sees a change the pass
// missed.
func TestPrehashMarksAreDroppedWhenTheyDoNotHold(t *testing.T) {
	cases := map[string]func(t *testing.T, fx *cacheFixture, o *Options){
		"rehash": func(t *testing.T, fx *cacheFixture, o *Options) { o.Rehash = true },
		"other cache": func(t *testing.T, fx *cacheFixture, o *Options) {
			o.Cache = CachePath(filepath.Dir(fx.cache), fx.repoID, "/other/key")
		},
		"other file": func(t *testing.T, fx *cacheFixture, o *Options) {
			b, err := os.ReadFile(fx.src)
			if err != nil {
				t.Fatal(err)
			}
			tmp := fx.src + ".new"
			if err := os.WriteFile(tmp, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, fx.src); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			fx := newCacheFixture(t)
			first := backupCounted(t, fx.r, fx.src, fx.opts())
			fx.commit(t, first.d)
			p := prehashDone(t, fx)
			if !p.Unchanged(300) {
				t.Fatal("block 300 not marked unchanged")
			}
			o := fx.opts()
			o.Prehash = p
			change(t, fx, &o)
			writeImageAt(t, fx.src, 300*testBlock, memblobs.RandBytes(61, testBlock))
			second := backupCounted(t, fx.r, fx.src, o)
			fx.commit(t, second.d)
			fx.restoreSame(t, second.d) // block 300 as it is now, not as the pass saw it
		})
	}
}

// TestPrehashedBlockWhoseBlobIsGoneIsStoredAgain: the pass vouches for blocks whose blobs a prune
// removed since; the backup asks the repository, reads those blocks and stores them.
func TestPrehashedBlockWhoseBlobIsGoneIsStoredAgain(t *testing.T) {
	fx := newCacheFixture(t)
	first := backupCounted(t, fx.r, fx.src, fx.opts())
	id := fx.commit(t, first.d)
	fx.forgetAndPrune(t, id)
	o := fx.opts()
	o.Workers = 1
	o.Prehash = prehashDone(t, fx)
	second := backupCounted(t, fx.r, fx.src, o)
	if second.saves < int64(fx.data-1) {
		t.Fatalf("after prune: %d blocks saved, want at least %d", second.saves, fx.data-1)
	}
	fx.commit(t, second.d)
	fx.restoreSame(t, second.d)
}

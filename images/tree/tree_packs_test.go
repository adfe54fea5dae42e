package tree

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/images/store/metacache"
	"github.com/snapferry/snapferry/images/store/storetest"
)

// A file backup writes its directory trees into packs that hold no file data, so a host
// without a cache reads a parent's trees from tree packs alone (docs/repository-format.md).
func TestTreesInPacksOfTheirOwn(t *testing.T) {
	ctx := context.Background()
	_, src := makeFixture(t)
	manyDirs(t, src, 30)
	repoDir, r := memblobs.LocalRepo(t, 1<<20, repo.ChunkerParams(smallChunks))
	if _, err := Backup(ctx, r, []string{src}, Options{Chunking: Chunking(r.Config().Chunker)}); err != nil {
		t.Fatal(err)
	}
	must(t, r.Flush(ctx))
	kinds := map[repo.BlobType]int{}
	for pack, types := range packTypes(t, repoDir) {
		if types[repo.TreeBlob] > 0 && types[repo.DataBlob] > 0 {
			t.Errorf("pack %s holds %d tree blobs and %d data blobs, want one kind per pack",
				pack[:12], types[repo.TreeBlob], types[repo.DataBlob])
		}
		for k, n := range types {
			kinds[k] += n
		}
	}
	if kinds[repo.TreeBlob] < 30 || kinds[repo.DataBlob] < 30 {
		t.Fatalf("the packs hold %d tree and %d data blobs, want 30 or more of each", kinds[repo.TreeBlob], kinds[repo.DataBlob])
	}
}

// A backup with a parent, from a host whose metadata cache is empty, reads the parent's trees
// in a few store requests, not one per tree or per small batch of siblings (an s3:// store
// takes a GET for each).
func TestColdCacheParentTreesFewLoads(t *testing.T) {
	const dirs = 120
	ctx := context.Background()
	_, src := makeFixture(t)
	manyDirs(t, src, dirs)
	repoDir, r := memblobs.LocalRepo(t, 1<<20, repo.ChunkerParams(smallChunks))
	chunking := Chunking(r.Config().Chunker)
	first, err := Backup(ctx, r, []string{src}, Options{Chunking: chunking})
	if err != nil {
		t.Fatal(err)
	}
	must(t, r.Flush(ctx))
	r.Close()

	inner := &storetest.LoadCounter{Backend: local.New(repoDir)}
	cold := memblobs.OpenRepoOn(t, metacache.New(inner, t.TempDir()))
	again, err := Backup(ctx, cold, []string{src}, Options{Chunking: chunking, Parent: &first.Root})
	if err != nil {
		t.Fatal(err)
	}
	if again.Stats.BytesRead != 0 || again.Stats.FilesUnchanged < dirs {
		t.Fatalf("backup with parent: %+v, want every file unchanged and unread", again.Stats)
	}
	// The trees of this run fit one tree pack; a second allows for the folders above src.
	if n := inner.PackLoads.Load(); n > 2 {
		t.Errorf("reading the parent's %d+ trees with a cold cache took %d pack loads, want at most 2", dirs, n)
	}
	// A second cold host reading the same trees through the first one's cache: no pack load.
	inner.PackLoads.Store(0)
	if _, err := Backup(ctx, cold, []string{src}, Options{Chunking: chunking, Parent: &first.Root}); err != nil {
		t.Fatal(err)
	}
	if n := inner.PackLoads.Load(); n != 0 {
		t.Errorf("with the trees cached, %d pack loads, want none", n)
	}
}

// manyDirs adds n folders below src, in two levels, each with one small file.
func manyDirs(t *testing.T, src string, n int) {
	t.Helper()
	for i := range n {
		p := filepath.Join(src, "many", fmt.Sprintf("g%d", i%7), fmt.Sprintf("d%03d", i), "f.txt")
		writeFile(t, p, []byte(fmt.Sprintf("file %d\n", i)), 0o644)
	}
	// The folders' mtimes must not change between backups: fix them in the past.
	old := time.Now().Add(-time.Hour)
	must(t, filepath.Walk(filepath.Join(src, "many"), func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	}))
	must(t, os.Chtimes(src, old, old))
}

// packTypes reads the header of every pack of the unencrypted repository in dir as
// docs/repository-format.md describes it (trailer: u32 header length, u32 CRC, "SFPK"; header:
// 8 bytes, then 44 bytes per blob, the first its type) and counts each pack's blobs by type.
func packTypes(t *testing.T, dir string) map[string]map[repo.BlobType]int {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(dir, "data", "*", "*"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no packs in %s: %v", dir, err)
	}
	out := map[string]map[repo.BlobType]int{}
	for _, p := range packs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 12 || string(b[len(b)-4:]) != "SFPK" {
			t.Fatalf("pack %s: no pack trailer", p)
		}
		hlen := int(binary.LittleEndian.Uint32(b[len(b)-12:]))
		hdr := b[len(b)-12-hlen : len(b)-12]
		count := int(binary.LittleEndian.Uint32(hdr[4:8]))
		types := map[repo.BlobType]int{}
		for i := range count {
			types[repo.BlobType(hdr[8+44*i])]++
		}
		out[filepath.Base(p)] = types
	}
	return out
}

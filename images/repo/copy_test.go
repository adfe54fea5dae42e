package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fileTree stores a two-level tree (a file in the root, a file in a subfolder) like images/tree
// does and commits a files snapshot; it returns the snapshot and the file contents by path.
func fileTree(t testing.TB, r *Repository, source string, seed byte, when time.Time) (ID, map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	files := map[string][]byte{}
	saveFile := func(name string, n int) Node {
		data := bytes.Repeat([]byte{seed, byte(n)}, n*1000)
		files[name] = data
		var content []ID
		for off := 0; off < len(data); off += 7000 {
			chunk := data[off:min(off+7000, len(data))]
			id := r.BlobID(chunk)
			if _, err := r.SaveBlob(ctx, DataBlob, id, chunk); err != nil {
				t.Fatal(err)
			}
			content = append(content, id)
		}
		return Node{Name: name, Type: NodeFile, Mode: 0o644, Size: uint64(len(data)), Content: content}
	}
	saveTree := func(tr *Tree) ID {
		b, err := tr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		id := r.BlobID(b)
		if _, err := r.SaveBlob(ctx, TreeBlob, id, b); err != nil {
			t.Fatal(err)
		}
		return id
	}
	sub := saveTree(&Tree{Nodes: []Node{saveFile("inner.txt", 9)}})
	root := saveTree(&Tree{Nodes: []Node{saveFile("top.txt", 20), {Name: "dir", Type: NodeDir, Mode: 0o755, Subtree: &sub}}})
	sid, err := r.SaveSnapshot(ctx, &Snapshot{Time: when, Host: "testhost", Kind: SnapshotFiles, Source: source, Tree: &root})
	if err != nil {
		t.Fatal(err)
	}
	return sid, files
}

// readTree returns every file of a snapshot's tree by path, read from r.
func readTree(t testing.TB, r *Repository, sid ID) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	sn, err := r.LoadSnapshot(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	var walk func(ID)
	walk = func(id ID) {
		b, err := r.LoadBlob(ctx, TreeBlob, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := UnmarshalTree(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tr.Nodes {
			if n.Subtree != nil {
				walk(*n.Subtree)
				continue
			}
			var data []byte
			for _, c := range n.Content {
				b, err := r.LoadBlob(ctx, DataBlob, c, nil)
				if err != nil {
					t.Fatalf("%s: %v", n.Name, err)
				}
				data = append(data, b...)
			}
			out[n.Name] = data
		}
	}
	walk(*sn.Tree)
	return out
}

// findCopy returns the id of dst's snapshot of source.
func findCopy(t testing.TB, r *Repository, source string) ID {
	t.Helper()
	si, err := r.FindSnapshot(context.Background(), "latest", SnapshotFilter{Source: source})
	if err != nil {
		t.Fatalf("no copy of %s: %v", source, err)
	}
	return si.ID
}

// TestCopy copies an image and a files snapshot between every pairing of plain and encrypted
// repositories (different keys: every tree and block map is rewritten), verifies every byte in
// the target, and runs again to see nothing sent twice.
func TestCopy(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ srcEnc, dstEnc bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("encrypted-%v-to-%v", c.srcEnc, c.dstEnc), func(t *testing.T) {
			_, src, _ := newRepoEncryptedIf(t, c.srcEnc)
			dstDir, dst, dstOpen := newRepoEncryptedIf(t, c.dstEnc)
			im := image{seed: 7, blocks: 23}
			backupImage(t, src, "disk.img", im, time.Now().Add(-time.Hour))
			_, files := fileTree(t, src, "/etc", 3, time.Now())
			rep, err := Copy(ctx, src, dst, CopyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Snapshots != 2 || rep.BlobsSent == 0 || rep.Reencoded != (c.srcEnc || c.dstEnc) {
				t.Errorf("report %+v: want 2 snapshots sent, re-encoded %v", rep, c.srcEnc || c.dstEnc)
			}
			dst.Close()
			dst = testOpen(t, dstDir, dstOpen)
			verifyImage(t, dst, findCopy(t, dst, "disk.img"), im)
			got := readTree(t, dst, findCopy(t, dst, "/etc"))
			for name, want := range files {
				if !bytes.Equal(got[name], want) {
					t.Errorf("%s differs in the copy", name)
				}
			}
			if r := mustCheck(t, dst, true); !r.OK() {
				t.Errorf("check of the target: %+v", r)
			}
			again, err := Copy(ctx, src, dst, CopyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if again.Snapshots != 0 || again.Existing != 2 || again.BlobsSent != 0 {
				t.Errorf("second copy %+v: want nothing sent, 2 existing", again)
			}
		})
	}
}

// TestCopyLatest: --latest=1 copies the newest snapshot of each source, and a source filter
// narrows the sources.
func TestCopyLatest(t *testing.T) {
	ctx := context.Background()
	_, src := newRepo(t)
	_, dst := newRepo(t)
	now := time.Now()
	for i := 0; i < 3; i++ {
		backupImage(t, src, "a.img", image{seed: uint64(10 + i), blocks: 6}, now.Add(time.Duration(i)*time.Minute))
		backupImage(t, src, "b.img", image{seed: uint64(20 + i), blocks: 6}, now.Add(time.Duration(i)*time.Minute))
	}
	if _, err := Copy(ctx, src, dst, CopyOptions{Latest: 1, Filter: SnapshotFilter{Source: "a.img"}}); err != nil {
		t.Fatal(err)
	}
	list, err := dst.ListSnapshots(ctx, SnapshotFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Snapshot.Source != "a.img" || !list[0].Snapshot.Time.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("copied %d snapshots (%+v), want the newest of a.img", len(list), list)
	}
	verifyImage(t, dst, list[0].ID, image{seed: 12, blocks: 6})
	rep, err := Copy(ctx, src, dst, CopyOptions{Latest: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Snapshots != 1 || rep.Existing != 1 {
		t.Errorf("latest of every source: %+v, want b.img copied and a.img there", rep)
	}
}

// TestCopyKilled: a copy SIGKILLed after some packs reached the target leaves the target clean
// (check passes, no half snapshot); the rerun finishes and sends only what the killed run had not
// indexed.
func TestCopyKilled(t *testing.T) {
	srcDir := filepath.Join(t.TempDir(), "src")
	dstDir := filepath.Join(t.TempDir(), "dst")
	testInit(t, srcDir)
	testInit(t, dstDir)
	src := testOpen(t, srcDir, nil)
	im := image{seed: 9, blocks: 120}
	backupImage(t, src, "big.img", im, time.Now())
	src.Close()

	j := helperJob{Repo: srcDir, Tmp: t.TempDir(), Source: dstDir, KillAt: HookIndexSaved, KillNth: 2}
	runKilled(t, "copy", j)
	dst := testOpen(t, dstDir, nil)
	if r := mustCheck(t, dst, true); r.Snapshots != 0 || !r.OK() {
		t.Fatalf("target after the kill: %+v", r)
	}
	dst.Close()

	j.KillAt = ""
	var full, rerun CopyReport
	runHelperJSON(t, "copy", j, &rerun)
	fresh := filepath.Join(t.TempDir(), "fresh")
	testInit(t, fresh)
	runHelperJSON(t, "copy", helperJob{Repo: srcDir, Tmp: t.TempDir(), Source: fresh}, &full)
	if rerun.Snapshots != 1 || rerun.BlobsPresent == 0 || rerun.BlobsSent >= full.BlobsSent {
		t.Errorf("rerun %+v vs a full copy %+v: want the rerun to send less, reusing what the killed run indexed", rerun, full)
	}
	dst = testOpen(t, dstDir, nil)
	verifyImage(t, dst, findCopy(t, dst, "big.img"), im)
	mustCheck(t, dst, true)
}

// runCopyHelper is the helper process's "copy" mode: H_REPO to H_SOURCE (the target folder),
// dying at H_KILL_AT through the target's hook; it prints the CopyReport.
func runCopyHelper(ctx context.Context, hook func(string)) error {
	src, err := Open(ctx, localBackend(os.Getenv("H_REPO")), Options{Hostname: "testhost"})
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.MkdirTemp("", "copy-pack-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dst, err := Open(ctx, localBackend(os.Getenv("H_SOURCE")), Options{TempDir: tmp, Hostname: "testhost", IndexEvery: 2, Hook: hook})
	if err != nil {
		return err
	}
	defer dst.Close()
	rep, err := Copy(ctx, src, dst, CopyOptions{})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/disk/disktest"
)

// TestLocalImageAndFilesRoundTrip drives init, two backups, snapshots, ls, check, restore and
// forget+prune through the real binary, and proves restores identical and sparse.
func TestLocalImageAndFilesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	home, repoDir := filepath.Join(dir, "state"), filepath.Join(dir, "repo")
	img := filepath.Join(dir, "disk.img")
	sparseImage(t, img, 1<<30, 0, 5, 300, 900)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "sub"), 0o755)
	os.WriteFile(filepath.Join(tree, "a.txt"), []byte(strings.Repeat("hello\n", 5000)), 0o640)
	os.Symlink("a.txt", filepath.Join(tree, "link"))

	mustSF(t, home, 0, "init", repoDir)
	first := mustSF(t, home, 0, "backup", img, tree, "--to", repoDir, "--json")
	if !strings.Contains(first.stdout, `"event": "summary"`) {
		t.Fatalf("--json backup printed no summary:\n%s", first.stdout)
	}
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	writeRandom(t, f, 300)
	f.Close()
	second := mustSF(t, home, 0, "backup", img, "--to="+repoDir, "--json")
	var sum struct {
		Items []backupItem `json:"items"`
	}
	if err := json.Unmarshal([]byte(second.stdout), &sum); err != nil || len(sum.Items) != 1 {
		t.Fatalf("decode summary %q: %v", second.stdout, err)
	}
	if st := sum.Items[0].Stats; st.BlobsNew > 3 || st.BlobsReused < 3 || st.BytesAdded > 2<<20 {
		t.Fatalf("incremental stored too much after one changed MiB: %+v", st)
	}
	// The folder again, unchanged: the previous files snapshot is found as the parent, so its
	// file is not read again and the new snapshot names it.
	again := mustSF(t, home, 0, "backup", tree, "--to", repoDir, "--json")
	var sum2 struct {
		Items []backupItem `json:"items"`
	}
	if err := json.Unmarshal([]byte(again.stdout), &sum2); err != nil || len(sum2.Items) != 1 {
		t.Fatalf("decode summary %q: %v", again.stdout, err)
	}
	if st := sum2.Items[0].Stats; st.FilesUnchanged != 1 || st.BytesRead != 0 {
		t.Fatalf("unchanged folder was read again: %+v", st)
	}
	var listed []struct {
		Snapshot struct {
			Source string `json:"source"`
			Parent string `json:"parent"`
		} `json:"snapshot"`
	}
	js := mustSF(t, home, 0, "snapshots", "--repo", repoDir, "--json")
	if err := json.Unmarshal([]byte(js.stdout), &listed); err != nil {
		t.Fatal(err)
	}
	parents := 0
	for _, l := range listed {
		if l.Snapshot.Parent != "" {
			parents++
		}
	}
	if parents != 2 { // the second image and the second folder snapshot
		t.Fatalf("want 2 snapshots with a parent, got %d:\n%s", parents, js.stdout)
	}
	mustSF(t, home, 0, "forget", "--repo", repoDir, "--keep-last", "1", "--source", tree)
	snaps := mustSF(t, home, 0, "snapshots", "--repo", repoDir)
	if !strings.Contains(snaps.stdout, "3 snapshots") {
		t.Fatalf("want 3 snapshots:\n%s", snaps.stdout)
	}
	ls := mustSF(t, home, 0, "ls", "latest", "--source", tree, "--repo", repoDir)
	if !strings.Contains(ls.stdout, filepath.Join(tree, "a.txt")) || !strings.Contains(ls.stdout, filepath.Join(tree, "link")) {
		t.Fatalf("ls misses entries:\n%s", ls.stdout)
	}
	mustSF(t, home, 0, "check", "--repo", repoDir, "--read-data")

	out := filepath.Join(dir, "out")
	mustSF(t, home, 0, "restore", "latest", "--source", img, "--from", repoDir, "--target", out)
	got := filepath.Join(out, "disk.img")
	if disktest.FileSum(t, got) != disktest.FileSum(t, img) {
		t.Fatal("restored image differs from the source")
	}
	if a, b := disktest.Allocated(t, got), disktest.Allocated(t, img); a > b+b/20 {
		t.Fatalf("restored image not sparse: %d bytes allocated, source %d", a, b)
	}
	// A second restore into the same place finds the image identical and leaves it alone.
	mustSF(t, home, 0, "restore", "latest", "--source", img, "--from", repoDir, "--target", out)
	mustSF(t, home, 0, "restore", "latest:"+filepath.Join(tree, "a.txt"), "--source", tree, "--from", repoDir, "--target", out)
	if b, err := os.ReadFile(filepath.Join(out, tree, "a.txt")); err != nil || len(b) != 30000 {
		t.Fatalf("restored file: %v, %d bytes", err, len(b))
	}

	mustSF(t, home, 0, "forget", "--repo", repoDir, "--keep-last", "1", "--prune")
	snaps = mustSF(t, home, 0, "snapshots", "--repo", repoDir)
	if !strings.Contains(snaps.stdout, "2 snapshots") {
		t.Fatalf("after forget --keep-last 1 per source want 2 snapshots:\n%s", snaps.stdout)
	}
	mustSF(t, home, 0, "check", "--repo", repoDir, "--read-data")
}

// TestExitCodes pins the documented exit codes for bad input.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	if r := mustSF(t, home, 2, "backup", "--bogus-flag"); !strings.Contains(r.stderr, "bogus-flag") {
		t.Fatalf("bad flag message: %s", r.stderr)
	}
	mustSF(t, home, 2, "nosuchcommand")
	mustSF(t, home, 2, "backup", dir) // no --to
	r := mustSF(t, home, 10, "snapshots", "--repo", filepath.Join(dir, "nothing-here"))
	if !strings.Contains(r.stderr, "not a snapferry repository") {
		t.Fatalf("not-a-repo message: %s", r.stderr)
	}
	repoDir := filepath.Join(dir, "repo")
	mustSF(t, home, 0, "init", repoDir)
	mustSF(t, home, 1, "init", repoDir)                                           // exists already
	mustSF(t, home, 2, "restore", "latest", "--from", repoDir, "--datastore", "") // no --target
	// A newer format version is refused with the upgrade hint.
	cfgPath := filepath.Join(repoDir, "config")
	b, _ := os.ReadFile(cfgPath)
	os.Chmod(cfgPath, 0o600)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(b), `"version": 3`, `"version": 99`, 1)), 0o600)
	if r := mustSF(t, home, 10, "snapshots", "--repo", repoDir); !strings.Contains(r.stderr, "upgrade") {
		t.Fatalf("newer format message: %s", r.stderr)
	}
}

// TestUnreadableFileIsPartial: a file that cannot be read does not stop the backup; the run
// exits 3, names it, and the readable files are in the snapshot. Root reads everything, so the
// backup runs as nobody.
func TestUnreadableFileIsPartial(t *testing.T) {
	dir := t.TempDir()
	openUp(t, dir)
	home, repoDir := filepath.Join(dir, "state"), filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "ok.txt"), []byte("fine"), 0o644)
	os.WriteFile(filepath.Join(tree, "secret.txt"), []byte("hidden"), 0o000)
	mustSF(t, home, 0, "init", repoDir)
	chownTree(t, dir, nobody)
	r := sfAs(t, nobody, home, "backup", tree, "--to", repoDir)
	if r.code != exitPartial || !strings.Contains(r.stdout+r.stderr, "secret.txt") {
		t.Fatalf("want exit 3 naming secret.txt, got %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	ls := mustSF(t, home, 0, "ls", "latest", "--repo", repoDir)
	if !strings.Contains(ls.stdout, "ok.txt") {
		t.Fatalf("readable file missing from the partial snapshot:\n%s", ls.stdout)
	}
	snaps := mustSF(t, home, 0, "snapshots", "--repo", repoDir)
	if !strings.Contains(snaps.stdout, "(partial)") {
		t.Fatalf("snapshot not marked partial:\n%s", snaps.stdout)
	}
}

// TestVMDKPairRoundTrip: a descriptor + flat extent pair backs up as one disk and restores as a
// descriptor pointing at a sparse flat file with identical contents.
func TestVMDKPairRoundTrip(t *testing.T) {
	dir := t.TempDir()
	home, repoDir := filepath.Join(dir, "state"), filepath.Join(dir, "repo")
	src := filepath.Join(dir, "ds", "web01")
	os.MkdirAll(src, 0o755)
	flat := filepath.Join(src, "web01-flat.vmdk")
	sparseImage(t, flat, 128<<20, 3, 64)
	desc := "# Disk DescriptorFile\nversion=1\nCID=05e9aba7\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\n" +
		"# Extent description\nRW 262144 VMFS \"web01-flat.vmdk\"\n\n# The Disk Data Base\n#DDB\n\n" +
		"ddb.adapterType = \"lsilogic\"\nddb.longContentID = \"8124c2c9cf1609f2921a6b6705e9aba7\"\nddb.thinProvisioned = \"1\"\n"
	os.WriteFile(filepath.Join(src, "web01.vmdk"), []byte(desc), 0o644)
	mustSF(t, home, 0, "init", repoDir)
	mustSF(t, home, 0, "backup", filepath.Join(src, "web01.vmdk"), "--to", repoDir)
	out := filepath.Join(dir, "out")
	mustSF(t, home, 0, "restore", "latest", "--from", repoDir, "--target", out)
	if disktest.FileSum(t, filepath.Join(out, "web01-flat.vmdk")) != disktest.FileSum(t, flat) {
		t.Fatal("restored flat extent differs")
	}
	b, err := os.ReadFile(filepath.Join(out, "web01.vmdk"))
	if err != nil || !strings.Contains(string(b), `"web01-flat.vmdk"`) || strings.Contains(string(b), "CID=05e9aba7") {
		t.Fatalf("restored descriptor (want the flat name and a new CID): %v\n%s", err, b)
	}
	// A delta disk is refused with advice instead of being stored wrong.
	os.WriteFile(filepath.Join(src, "web01-000001.vmdk"), []byte(strings.Replace(desc, `createType="vmfs"`, `createType="seSparse"`, 1)), 0o644)
	r := mustSF(t, home, 1, "backup", filepath.Join(src, "web01-000001.vmdk"), "--to", repoDir)
	if !strings.Contains(r.stderr, "seSparse") {
		t.Fatalf("delta refusal: %s", r.stderr)
	}
}

// TestExclude: base-name and path globs leave entries out of the snapshot.
func TestExclude(t *testing.T) {
	dir := t.TempDir()
	home, repoDir := filepath.Join(dir, "state"), filepath.Join(dir, "repo")
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "cache", "x"), 0o755)
	os.MkdirAll(filepath.Join(tree, "keep"), 0o755)
	for _, f := range []string{"a.txt", "b.tmp", "keep/c.tmp", "keep/d.txt", "cache/x/e.txt"} {
		os.WriteFile(filepath.Join(tree, f), []byte(f), 0o644)
	}
	mustSF(t, home, 0, "init", repoDir)
	mustSF(t, home, 0, "backup", tree, "--to", repoDir, "--exclude", "*.tmp", "--exclude", filepath.Join(tree, "cache")+"/")
	ls := mustSF(t, home, 0, "ls", "latest", "--repo", repoDir).stdout
	for _, want := range []string{"a.txt", "keep/d.txt"} {
		if !strings.Contains(ls, want) {
			t.Fatalf("%s missing:\n%s", want, ls)
		}
	}
	for _, gone := range []string{"b.tmp", "c.tmp", "cache"} {
		if strings.Contains(ls, gone) {
			t.Fatalf("%s not excluded:\n%s", gone, ls)
		}
	}
	mustSF(t, home, 2, "backup", tree, "--to", repoDir, "--exclude", "[")
}

// TestStatusShowsRunningJobProgress: while a (rate-limited) backup runs, `status` lists it as
// running with the bytes read so far, and `jobs` shows it active; afterwards it is done.
func TestStatusShowsRunningJobProgress(t *testing.T) {
	dir := t.TempDir()
	home, repoDir := filepath.Join(dir, "state"), filepath.Join(dir, "repo")
	img := filepath.Join(dir, "slow.img")
	sparseImage(t, img, 64<<20, seq(0, 24)...)
	mustSF(t, home, 0, "init", repoDir)
	cmd := exec.Command(binPath, "backup", img, "--to", repoDir, "--bwlimit", "2M")
	cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+home)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := sf(t, home, "status", "--json")
		var rep struct {
			Running []struct {
				BytesRead int64 `json:"bytes_read"`
				Name      string
			} `json:"running"`
		}
		json.Unmarshal([]byte(st.stdout), &rep)
		if len(rep.Running) == 1 && rep.Running[0].BytesRead > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the running backup with progress:\n%s", st.stdout)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if st := mustSF(t, home, 0, "status", "--json"); !strings.Contains(st.stdout, `"running": null`) && !strings.Contains(st.stdout, `"running": []`) {
		t.Fatalf("a finished job still shows as running:\n%s", st.stdout)
	}
}

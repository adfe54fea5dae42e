package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/images/disk/disktest"
	"github.com/snapferry/snapferry/transfer/s3store/rgwtest"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// storeKinds are the kinds of repository store every repository rule must hold on.
var storeKinds = []string{"local", "ssh", "sftp", "s3"}

// testRepo is a repository location for the binary: the spec and the flags every command on it
// needs (SSH identity and host keys, plain http to the test RGW).
type testRepo struct {
	spec   string
	client []string
	dir    string // the repository's folder on this machine (local, ssh, sftp); "" for s3
	bucket string // s3 only
	s3     rgwtest.Server
}

// args appends the client flags to a command line.
func (r testRepo) args(a ...string) []string { return append(a, r.client...) }

// newTestRepo returns a location for a new repository on a store of the given kind: a folder
// below dir, the same folder through a loopback sshd (ssh:// runs this binary as serve on the
// far side, sftp:// speaks SFTP to sshd's own server), or a fresh bucket on the test RGW (the
// keys go into the environment, where the binary reads them). The repository is not created.
func newTestRepo(t *testing.T, kind, dir string) testRepo {
	t.Helper()
	repoDir := filepath.Join(dir, "repo")
	switch kind {
	case "local":
		return testRepo{spec: repoDir, dir: repoDir}
	case "ssh", "sftp":
		s := sshtest.Start(t, sshtest.Options{})
		r := testRepo{spec: s.Spec(kind, repoDir), dir: repoDir, client: s.Flags()}
		if kind == "ssh" {
			os.MkdirAll(repoDir, 0o755) // serve behind --remote-path creates no folder
			r.client = append(r.client, "--remote-path", binPath)
		}
		return r
	case "s3":
		srv := rgwtest.Get(t)
		srv.SetEnv(t)
		b := rgwtest.NewBucketName(t)
		return testRepo{spec: fmt.Sprintf("s3://%s/%s/repo", srv.Endpoint, b), client: []string{"--s3-insecure-http"},
			bucket: b, s3: srv}
	}
	t.Fatalf("unknown store kind %q", kind)
	return testRepo{}
}

// TestManyWritersAcrossPrune: eight backup processes (each with its own state folder, as eight
// hosts would be) write one repository at once, round after round, while forget --prune
// processes run in a loop beside them, on every store kind: a local folder, ssh:// (serve over a
// loopback sshd), sftp:// (the same sshd's SFTP server) and s3:// (Ceph RGW). No backup waits for
// a prune or fails because of one; afterwards check --read-data is clean and every snapshot left
// restores to the bytes it was taken of; a last prune with nobody writing leaves no leftover.
// Images share blocks, so backups deduplicate against packs the prunes are dropping.
func TestManyWritersAcrossPrune(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			manyWriters(t, dir, newTestRepo(t, kind, dir), 8, 2)
		})
	}
}

// imageVersions records the checksums of the versions of each source image that backups
// finished with, in the order they finished.
type imageVersions struct {
	mu   sync.Mutex
	sums map[string][]string
}

func (v *imageVersions) add(img, sum string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sums[img] = append(v.sums[img], sum)
}

func manyWriters(t *testing.T, dir string, repo testRepo, writers, rounds int) {
	start := time.Now()
	home := filepath.Join(dir, "state")
	mustSF(t, home, 0, repo.args("init", repo.spec)...)
	versions := &imageVersions{sums: map[string][]string{}}
	var mu sync.Mutex
	var failures []string
	fail := func(format string, a ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	var backups sync.WaitGroup
	for w := range writers {
		backups.Add(1)
		go func() {
			defer backups.Done()
			img := filepath.Join(dir, fmt.Sprintf("vm%d.img", w))
			// Blocks 0-3 are the same in every image; the rest are the writer's own.
			sparseImage(t, img, 12<<20, 0, 1, 2, 3, int64(4+w))
			for round := range rounds {
				f, _ := os.OpenFile(img, os.O_RDWR, 0)
				writeRandom(t, f, int64(6+(w*rounds+round)%5))
				f.Close()
				sum := disktest.FileSum(t, img)
				// A plain user launch: each writer has its own state folder, so none stops another
				// (docs/pid-registry.md).
				r := sf(t, filepath.Join(home, fmt.Sprint(w)), repo.args("backup", img, "--to", repo.spec)...)
				if r.code != 0 {
					fail("writer %d round %d: exit %d\n%s%s", w, round, r.code, r.stdout, r.stderr)
					return
				}
				versions.add(img, sum)
			}
		}()
	}
	done := make(chan struct{})
	var maint sync.WaitGroup
	maint.Add(1)
	prunes := 0
	go func() {
		defer maint.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			// keep-last 1 per source: every round leaves the older snapshot's own blocks unused.
			r := sf(t, filepath.Join(home, "admin"), repo.args("forget", "--repo", repo.spec, "--keep-last", "1", "--prune")...)
			if r.code != 0 && r.code != exitcode.Locked {
				fail("forget --prune: exit %d\n%s%s", r.code, r.stdout, r.stderr)
				return
			}
			prunes++
		}
	}()
	backups.Wait()
	close(done)
	maint.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failures:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if prunes == 0 {
		t.Fatal("no prune ran beside the backups")
	}
	admin := filepath.Join(home, "admin")
	mustSF(t, admin, 0, repo.args("check", "--repo", repo.spec, "--read-data")...)
	restored := restoreEveryImageSnapshot(t, dir, admin, repo, versions.sums)
	if restored < writers {
		t.Fatalf("restored %d snapshots, want at least one per writer (%d)", restored, writers)
	}
	// A last prune with nobody writing leaves nothing unindexed and no temp file.
	mustSF(t, admin, 0, repo.args("prune", "--repo", repo.spec)...)
	chk := mustSF(t, admin, 0, repo.args("check", "--repo", repo.spec, "--read-data")...)
	if strings.Contains(chk.stdout, "in no index") || strings.Contains(chk.stdout, "temp files") {
		t.Fatalf("leftovers after a prune with no writer:\n%s", chk.stdout)
	}
	t.Logf("%s: %d writers x %d rounds beside %d forget --prune runs; %d snapshots restored; %s",
		repo.spec, writers, rounds, prunes, restored, time.Since(start).Round(time.Second))
}

// snapshotEntry is one line of `snapshots --json` (docs/json.md).
type snapshotEntry struct {
	ID       string `json:"id"`
	Snapshot struct {
		Time   time.Time `json:"time"`
		Kind   string    `json:"kind"`
		Source string    `json:"source"`
	} `json:"snapshot"`
}

// listSnapshots runs `snapshots --json`.
func listSnapshots(t *testing.T, home string, repo testRepo) []snapshotEntry {
	t.Helper()
	out := mustSF(t, home, 0, repo.args("snapshots", "--repo", repo.spec, "--json")...).stdout
	var list []snapshotEntry
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("snapshots --json: %v\n%s", err, out)
	}
	return list
}

// restoreEveryImageSnapshot restores every image snapshot in the repository by its id and
// compares it with the version it was taken of: the newest snapshot of a source is the last
// version backed up, the one before it the version before, and so on. It returns how many it
// restored.
func restoreEveryImageSnapshot(t *testing.T, dir, home string, repo testRepo, sums map[string][]string) int {
	t.Helper()
	bySource := map[string][]snapshotEntry{}
	for _, s := range listSnapshots(t, home, repo) {
		if s.Snapshot.Kind == "image" {
			bySource[s.Snapshot.Source] = append(bySource[s.Snapshot.Source], s)
		}
	}
	n := 0
	for src, list := range bySource {
		want, ok := sums[src]
		if !ok || len(list) > len(want) {
			t.Fatalf("%d snapshots of %s, but %d backups of it finished", len(list), src, len(want))
		}
		slices.SortFunc(list, func(a, b snapshotEntry) int { return b.Snapshot.Time.Compare(a.Snapshot.Time) })
		for k, s := range list {
			out := filepath.Join(dir, fmt.Sprintf("out-%s", s.ID))
			mustSF(t, home, 0, repo.args("restore", s.ID, "--from", repo.spec, "--target", out)...)
			if got := disktest.FileSum(t, filepath.Join(out, filepath.Base(src))); got != want[len(want)-1-k] {
				t.Fatalf("snapshot %s of %s restores to bytes other than the version it was taken of", s.ID, src)
			}
			os.RemoveAll(out)
			n++
		}
	}
	if len(bySource) != len(sums) {
		t.Fatalf("image snapshots of %d sources, want %d", len(bySource), len(sums))
	}
	return n
}

package storespec_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/remotestore"
	"github.com/snapferry/snapferry/transfer/sshtest"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// laneRig is a repository on a loopback sshd holding one backed-up disk of random data, with
// the far serves' start and end marks (TestMain) in pids.
type laneRig struct {
	s          *sshtest.Server
	base, root string
	pids       string
	img        string
	d          repo.Disk
}

func newLaneRig(t *testing.T) *laneRig {
	s := sshtest.Start(t, sshtest.Options{})
	base := t.TempDir()
	g := &laneRig{s: s, base: base, root: filepath.Join(base, "repo"), pids: filepath.Join(base, "serve-pids"),
		img: filepath.Join(base, "disk.img")}
	for _, d := range []string{g.root, g.pids} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	data := make([]byte, 96<<20) // random: every block is a full, incompressible blob
	_, _ = rand.NewChaCha8([32]byte{19}).Read(data)
	if err := os.WriteFile(g.img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	be := open(t, spec("ssh", s, g.root), options(t, s))
	defer be.Close()
	if _, err := repo.Init(ctx, be, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, repo.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if g.d, _, err = disk.Backup(ctx, r, g.img, disk.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return g
}

// serves returns the pids of the far serves that started and of those that ended cleanly.
func (g *laneRig) serves(t *testing.T) (started, ended []int) {
	t.Helper()
	ents, err := os.ReadDir(g.pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, what, _ := strings.Cut(e.Name(), ".")
		n, err := strconv.Atoi(pid)
		if err != nil {
			t.Fatalf("stray file %s in %s", e.Name(), g.pids)
		}
		if what == "start" {
			started = append(started, n)
		} else {
			ended = append(ended, n)
		}
	}
	return started, ended
}

// forget clears the marks of earlier far serves.
func (g *laneRig) forget(t *testing.T) {
	if err := os.RemoveAll(g.pids); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(g.pids, 0o700); err != nil {
		t.Fatal(err)
	}
}

// waitServes waits until at least n far serves started.
func (g *laneRig) waitServes(t *testing.T, n int) []int {
	deadline := time.Now().Add(time.Minute)
	for {
		started, _ := g.serves(t)
		if len(started) >= n {
			return started
		}
		if time.Now().After(deadline) {
			t.Errorf("%d far serves after a minute of a restore with four loads in flight, want %d", len(started), n)
			return started
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gate is a restore's progress reporter that runs at once, before the first block is written:
// the restore's workers wait there holding their loads open.
type gate struct {
	once sync.Once
	at   func()
}

func (g *gate) Start(string, int64) {}
func (g *gate) Add(int64)           { g.once.Do(g.at) }
func (g *gate) File(int)            {}
func (g *gate) Done()               {}

// restore restores the rig's disk from be to out with four workers.
func (g *laneRig) restore(t *testing.T, be store.Backend, out string, at func()) error {
	ctx := context.Background()
	r, err := repo.Open(ctx, be, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return disk.Restore(ctx, r, g.d, out, disk.RestoreOptions{Workers: 4, Progress: &gate{at: at}})
}

// anyLink opens lanes on the loopback link (its round trip is far under the default minimum)
// as soon as loads wait.
var anyLink = remotestore.LaneOptions{After: 1, MinRoundTrip: -1}

// laneLine matches the trace's summary: large+small loads per session.
var laneLine = regexp.MustCompile(`read lanes: primary (\d+)\+\d+ loads((?:, lane \d+ \d+\+\d+)*)`)

// TestRestoreThroughReadLanes: a restore over ssh:// with a key pinned by authorized_keys to
// `serve --append-only` (forced command, restrict) opens read lanes, gets some of its loads
// through them, writes the exact bytes, and ends every far serve when the store closes.
func TestRestoreThroughReadLanes(t *testing.T) {
	g := newLaneRig(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	key := g.s.AddClientKey(t, "ed25519", `command="`+self+` serve --root=`+g.root+` --append-only",restrict`)
	trace := &testkit.SyncBuffer{}
	opts := storespec.Options{SSH: g.s.ConnConfig(), Version: "test", RemotePath: "/opt/snapferry/snapferry",
		Lanes: anyLink, Trace: trace}
	opts.SSH.Identity = []string{key}
	g.forget(t)
	be := open(t, spec("ssh", g.s, "/ignored/by/forced/command"), opts)
	out := filepath.Join(g.base, "restored.img")
	if err := g.restore(t, be, out, func() { g.waitServes(t, 3) }); err != nil {
		t.Fatalf("restore through read lanes: %v\ntrace:\n%s", err, trace)
	}
	if err := be.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	want, err := os.ReadFile(g.img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the image restored through read lanes differs from the one backed up")
	}
	m := laneLine.FindStringSubmatch(trace.String())
	if m == nil {
		t.Fatalf("no read lane summary in the trace:\n%s", trace)
	}
	used := 0
	for _, f := range strings.Split(strings.TrimPrefix(m[2], ", "), ", ") {
		large, small, _ := strings.Cut(f[strings.LastIndex(f, " ")+1:], "+")
		n, err := strconv.Atoi(large)
		k, kerr := strconv.Atoi(small)
		if err == nil && kerr == nil && n+k > 0 {
			used++
		}
	}
	t.Logf("%s; %d lanes took loads", m[0], used)
	if used < 1 {
		t.Fatalf("no read lane took a load: %s", m[0])
	}
	started, ended := g.serves(t)
	if len(started) < 3 || len(ended) != len(started) {
		t.Fatalf("%d far serves started (primary and lanes), %d ended cleanly after Close", len(started), len(ended))
	}
}

// TestReadLaneKilledFailsTheRestore: when a lane's far serve dies in the middle of a restore,
// the restore fails with an error naming the lane, and nothing is left under the target's name
// or as a temp file beside it.
func TestReadLaneKilledFailsTheRestore(t *testing.T) {
	g := newLaneRig(t)
	trace := &testkit.SyncBuffer{}
	opts := options(t, g.s)
	opts.Lanes, opts.Trace = anyLink, trace
	g.forget(t)
	be := open(t, spec("ssh", g.s, g.root), opts)
	defer be.Close()
	primary, _ := g.serves(t)
	if len(primary) != 1 {
		t.Fatalf("%d far serves after opening the store, want 1", len(primary))
	}
	outDir := filepath.Join(g.base, "out")
	if err := os.Mkdir(outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(outDir, "restored.img")
	killed := 0
	err := g.restore(t, be, out, func() {
		for _, pid := range g.waitServes(t, 3) {
			if pid != primary[0] {
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
					t.Errorf("kill lane serve %d: %v", pid, err)
				}
				killed++
			}
		}
	})
	if killed == 0 {
		t.Fatal("no read lane opened, so none was killed")
	}
	if err == nil {
		t.Fatalf("the restore succeeded although %d read lanes were killed under it", killed)
	}
	t.Logf("restore with %d lanes killed: %v", killed, err)
	if !strings.Contains(err.Error(), "read lane") {
		t.Errorf("the error does not say a read lane failed: %v", err)
	}
	ents, rerr := os.ReadDir(outDir)
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, e := range ents {
		t.Errorf("the failed restore left %s in the target folder", e.Name())
	}
}

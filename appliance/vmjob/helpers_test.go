package vmjob_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/esxi"
	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/esxi/simtest"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/disk/disktest"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/local"
)

// simBin is the esxisim build of this test binary (set once in TestMain).
var simBin string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	os.Exit(simtest.Main(m, func(dir string) { simBin = dir }))
}

// env is a simulated host with a driver and a fresh local repository.
type env struct {
	t     *testing.T
	ctx   context.Context
	h     *sim.Host
	drv   *esxi.Driver
	r     *repo.Repository
	state string // lock and temp folders
	repo  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	root := t.TempDir()
	h, err := sim.NewHost(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"datastore1", "ssd store (2)"} {
		if err := h.AddDatastore(d, sim.DatastoreOptions{Capacity: 4 << 30}); err != nil {
			t.Fatal(err)
		}
	}
	drv := driverFor(t, h)
	state := t.TempDir()
	repoDir := filepath.Join(t.TempDir(), "repo")
	r := openRepo(t, ctx, repoDir, state, true)
	return &env{t: t, ctx: ctx, h: h, drv: drv, r: r, state: state, repo: repoDir}
}

// driverFor is a driver on a simulated host through the built esxisim.
func driverFor(t *testing.T, h *sim.Host) *esxi.Driver {
	t.Helper()
	drv, err := esxi.New(simtest.Config(simBin, h.Root))
	if err != nil {
		t.Fatal(err)
	}
	return drv
}

func openRepo(t testing.TB, ctx context.Context, dir, state string, create bool) *repo.Repository {
	t.Helper()
	r, err := openRepoErr(ctx, dir, state, create)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// openRepoErr opens (and with create, first makes) a local repository; the signal helper
// process uses it without a testing.TB.
func openRepoErr(ctx context.Context, dir, state string, create bool) (*repo.Repository, error) {
	be := local.New(dir)
	if create {
		if _, err := repo.Init(ctx, be, repo.InitOptions{BlockSize: 256 << 10}); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(state, "tmp"), 0o755); err != nil {
		return nil, err
	}
	return repo.Open(ctx, be, repo.Options{TempDir: filepath.Join(state, "tmp")})
}

// lockedBuffer collects a child's output from two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// opts are backup options for a test job.
func (e *env) opts(job string) vmjob.BackupOptions {
	return vmjob.BackupOptions{
		JobID: job, Host: "esx-test", LockDir: filepath.Join(e.state, "locks"), TempDir: e.state,
		RetryDelay: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
		Log: func(msg string) { e.t.Log(msg) },
	}
}

func (e *env) addVM(spec sim.VMSpec) appliance.VM {
	e.t.Helper()
	id, err := e.h.AddVM(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	vms, err := e.drv.VMs(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, vm := range vms {
		if vm.ID == id {
			return vm
		}
	}
	e.t.Fatalf("VM %s not in the inventory", id)
	return appliance.VM{}
}

// ourSnapshots lists the VM snapshots named like snapferry's.
func (e *env) ourSnapshots(id string) []string {
	e.t.Helper()
	snaps, err := e.drv.Snapshots(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, s := range snaps {
		if strings.HasPrefix(s.Name, vmjob.SnapshotPrefix) {
			out = append(out, s.Name)
		}
	}
	return out
}

// guestView is a VM disk as its guest sees it now.
func (e *env) guestView(id, dk string) []byte {
	e.t.Helper()
	p := filepath.Join(e.t.TempDir(), "view")
	if err := e.h.ExportDisk(id, dk, p); err != nil {
		e.t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// restoredDisk restores one disk of a committed snapshot into a temp file and reads it.
func (e *env) restoredDisk(id repo.ID, name string) []byte {
	e.t.Helper()
	sn, err := e.r.LoadSnapshot(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, d := range sn.Disks {
		if d.Name == name {
			p := filepath.Join(e.t.TempDir(), name)
			if err := disk.Restore(e.ctx, e.r, d, p, disk.RestoreOptions{}); err != nil {
				e.t.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				e.t.Fatal(err)
			}
			return b
		}
	}
	e.t.Fatalf("snapshot %s has no disk %s", id.Short(), name)
	return nil
}

// model builds a disk's content from its creation extents and the journal's writes up to (not
// including) the event that stop matches; stop nil replays everything.
func model(t *testing.T, h *sim.Host, vmid, device string, size int64, ext []sim.Extent, stop func(sim.Event) bool) (content []byte, before, after int) {
	t.Helper()
	content = sim.DiskContent(size, ext)
	events, err := h.Events()
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	for _, ev := range events {
		if stop != nil && !stopped && stop(ev) {
			stopped = true
			continue
		}
		if !ev.WritesTo(vmid, device) {
			continue
		}
		if stopped {
			after++
			continue
		}
		before++
		sim.ReplayWrite(content, ev)
	}
	return content, before, after
}

func equalBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (len %d vs %d, first difference at %d)", what, len(got), len(want), disktest.FirstDifference(got, want))
	}
}

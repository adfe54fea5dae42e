package vmjob_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/esxi"
	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/appliance/esxi/simtest"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/repo"
)

// helperEnv makes the test binary run helperMain: a backup in its own process, which the test
// interrupts with a real signal ("signal") or runs under the ESXi profile ("plain").
const helperEnv = "VMJOB_SIGNAL_HELPER"

// blockingReporter writes a marker file at the first progress report (our VM snapshot exists by
// then) and holds the copy there until the context ends, so the signal always lands mid-backup.
type blockingReporter struct {
	ctx    context.Context
	marker string
}

func (b *blockingReporter) Start(string, int64) {}
func (b *blockingReporter) Done()               {}
func (b *blockingReporter) File(int)            {}
func (b *blockingReporter) Add(int64) {
	if _, err := os.Stat(b.marker); err != nil {
		_ = os.WriteFile(b.marker, []byte("copying\n"), 0o644)
	}
	<-b.ctx.Done()
}

// helperMain backs up the VM named by the environment with SIGINT/SIGTERM cancelling the context,
// as the CLI does, and exits 130 when the backup was interrupted.
func helperMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root, state, repoDir, vmid := os.Getenv("SIM_ROOT"), os.Getenv("STATE"), os.Getenv("REPO"), os.Getenv("VMID")
	drv, err := esxi.New(simtest.Config(os.Getenv("SIM_BIN"), root))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, err := openRepoErr(context.Background(), repoDir, state, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.Close()
	vms, err := drv.VMs(ctx)
	if err != nil || len(vms) == 0 {
		fmt.Fprintln(os.Stderr, "no VMs:", err)
		return 1
	}
	o := vmjob.BackupOptions{JobID: "sig1", Host: "esx-test", LockDir: filepath.Join(state, "locks"), TempDir: state, RetryDelay: 20 * time.Millisecond}
	if os.Getenv(helperEnv) == "signal" {
		o.Progress = &blockingReporter{ctx: ctx, marker: filepath.Join(state, "copying")}
	}
	if _, err := os.Stat("/proc/self"); err != nil {
		fmt.Fprintln(os.Stderr, "no /proc here")
	}
	res := vmjob.BackupVM(ctx, drv, r, vms[0], o)
	fmt.Fprintf(os.Stderr, "VM %s: committed=%v err=%v\n", vmid, res.Committed, res.Err)
	if errors.Is(res.Err, context.Canceled) {
		return 130
	}
	if res.Err != nil {
		return 1
	}
	return 0
}

// SIGINT and SIGTERM during the copy: the backup stops, commits nothing and removes our snapshot.
func TestSignalDuringBackupRemovesSnapshot(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newEnv(t)
			vm := e.addVM(sim.VMSpec{Name: "vm sig", Datastore: "datastore1", PoweredOn: true,
				Disks: []sim.DiskSpec{{Size: 4 << 20, Data: []sim.Extent{{Offset: 0, Length: 2 << 20, Seed: 1}}}}})
			e.r.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=signal", "SIM_ROOT="+e.h.Root, "STATE="+e.state, "REPO="+e.repo,
				"VMID="+vm.ID, "SIM_BIN="+simBin)
			out := &lockedBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(e.state, "copying")
			if !testkit.Poll(30*time.Second, func() bool { _, err := os.Stat(marker); return err == nil }) {
				_ = cmd.Process.Kill()
				t.Fatalf("backup never started copying: %s", out)
			}
			if left := e.ourSnapshots(vm.ID); len(left) != 1 {
				t.Fatalf("while copying, our snapshots are %v; want one", left)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("helper exit: %v, output: %s", err, out)
			}
			if left := e.ourSnapshots(vm.ID); len(left) != 0 {
				t.Errorf("after %s our snapshots are %v", sig, left)
			}
			r := openRepo(t, e.ctx, e.repo, e.state, false)
			if snaps, err := r.ListSnapshots(e.ctx, repo.SnapshotFilter{}); err != nil || len(snaps) != 0 {
				t.Errorf("interrupted backup committed %d snapshots (%v)", len(snaps), err)
			}
		})
	}
}

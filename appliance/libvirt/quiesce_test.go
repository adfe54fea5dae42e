package libvirt

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/libvirt/lvtest"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/pidmgr"
)

// The console lines the guest's fsfreeze hook prints (scripts/libvirt/guest-initramfs.sh).
const (
	hookFreeze = "snapferry-guest: fsfreeze-hook freeze"
	hookThaw   = "snapferry-guest: fsfreeze-hook thaw"
)

// agentGuest is a booted guest of scripts/libvirt/guest-initramfs.sh with its ext4 disk
// mounted and its agent answering.
type agentGuest struct {
	vm      appliance.VM
	disk    string // vda, qcow2
	console string // the serial console's file
}

// bootGuest defines and starts the agent guest and waits (on guest-ping, not a sleep) until its
// agent answers.
func bootGuest(t *testing.T, d *Driver, name string) agentGuest {
	t.Helper()
	g := lvtest.BuildGuest(t)
	dir := t.TempDir()
	ag := agentGuest{disk: lvtest.Ext4Disk(t, dir), console: filepath.Join(dir, "console.log")}
	start := time.Now()
	dom := defineTestDomain(t, d, g.DomainXML(name, ag.disk, ag.console), true)
	lvtest.WaitAgent(t, daemon.uri, name, 5*time.Minute)
	t.Logf("guest %s: agent answered %s after the domain started (TCG)", name, time.Since(start).Round(100*time.Millisecond))
	if lvtest.ConsoleLines(t, ag.console, "snapferry-guest: mounted /dev/vda on /mnt") != 1 {
		t.Fatalf("the guest did not mount its ext4 disk; console:\n%s", run(t, "cat", ag.console))
	}
	ag.vm = vmOf(dom)
	return ag
}

// restoredSuperblock restores the snapshot's vda to a raw file and returns dumpe2fs's header
// of the ext4 in it.
func restoredSuperblock(t *testing.T, r *repo.Repository, sn *repo.Snapshot) (string, string) {
	t.Helper()
	for _, dk := range sn.Disks {
		if dk.Name == "vda" {
			out := filepath.Join(t.TempDir(), "vda.raw")
			if err := disk.Restore(testCtx(t), r, dk, out, disk.RestoreOptions{}); err != nil {
				t.Fatal(err)
			}
			return out, run(t, "dumpe2fs", "-h", out)
		}
	}
	t.Fatal("snapshot has no disk vda")
	return "", ""
}

// logLines collects what a backup logs.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) log(m string) { l.mu.Lock(); l.lines = append(l.lines, m); l.mu.Unlock() }
func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// --quiesce against a real QEMU guest agent: the agent freezes the guest's mounted ext4 for the
// instant the backup job starts and thaws it once; the backed-up file system is clean (a
// frozen ext4 has its journal flushed, so its superblock does not ask for recovery, while the
// same file system backed up unquiesced does); a backup that fails after the freeze leaves the
// guest thawed; a guest a killed run left frozen is thawed by the next backup.
func TestQuiesceWithGuestAgent(t *testing.T) {
	d := needLibvirt(t)
	for _, tool := range []string{"dumpe2fs", "e2fsck", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			lvtest.Unavailable(t, err)
		}
	}
	ag := bootGuest(t, d, "sf-agent")
	status := func() string { return lvtest.FreezeStatus(t, daemon.uri, "sf-agent") }
	hooks := func() (int, int) {
		return lvtest.ConsoleLines(t, ag.console, hookFreeze), lvtest.ConsoleLines(t, ag.console, hookThaw)
	}
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})

	t.Run("quiesced", func(t *testing.T) {
		var logs logLines
		o := backupOpts(t, "q1")
		o.Quiesce, o.Log = true, logs.log
		_, sn := backupOK(t, d, r, ag.vm, o)
		if f, th := hooks(); f != 1 || th != 1 {
			t.Fatalf("the guest ran its freeze hook %d times and its thaw hook %d times, want once each; log:\n%s", f, th, &logs)
		}
		if s := status(); s != "thawed" {
			t.Fatalf("after the backup the guest is %s", s)
		}
		t.Logf("log:\n%s", &logs)
		if !strings.Contains(logs.String(), "froze 1 guest file system(s)") || len(sn.Warnings) != 0 {
			t.Fatalf("log:\n%s\nwarnings: %v", &logs, sn.Warnings)
		}
		raw, sb := restoredSuperblock(t, r, sn)
		if strings.Contains(sb, "needs_recovery") {
			t.Fatalf("the quiesced backup's ext4 needs journal recovery: it was not frozen\n%s", sb)
		}
		run(t, "e2fsck", "-fn", raw)
		if _, ok := d.frozenMark(mustDomain(t, d, ag.vm)); ok {
			t.Fatal("the freeze mark is still on the domain after the thaw")
		}
	})

	// An application's hook may take a while to flush before the freeze (the guest's waits 8 s):
	// libvirt waits for the agent, the backup is quiesced.
	t.Run("slow freeze hook", func(t *testing.T) {
		lvtest.GuestWriteFile(t, daemon.uri, "sf-agent", "/run/snapferry-slow-freeze", "8")
		var logs logLines
		o := backupOpts(t, "q1s")
		o.Quiesce, o.Log = true, logs.log
		_, sn := backupOK(t, d, r, ag.vm, o)
		if f, th := hooks(); f != 2 || th != 2 || len(sn.Warnings) != 0 || status() != "thawed" {
			t.Fatalf("quiesced backup with a slow hook: %d freezes, %d thaws, warnings %v; log:\n%s", f, th, sn.Warnings, &logs)
		}
		if _, sb := restoredSuperblock(t, r, sn); strings.Contains(sb, "needs_recovery") {
			t.Fatalf("the backup's ext4 needs journal recovery: it was not frozen\n%s", sb)
		}
	})

	// The control: the probe above can fail. The same mounted file system backed up without
	// --quiesce carries the journal's recovery flag.
	t.Run("unquiesced control", func(t *testing.T) {
		_, sn := backupOK(t, d, r, ag.vm, backupOpts(t, "q2"))
		if _, sb := restoredSuperblock(t, r, sn); !strings.Contains(sb, "needs_recovery") {
			t.Fatalf("an unquiesced backup of a mounted ext4 shows no needs_recovery: the probe cannot tell\n%s", sb)
		}
		if f, th := hooks(); f != 2 || th != 2 {
			t.Fatalf("a backup without --quiesce ran the guest's hooks (%d freeze, %d thaw)", f, th)
		}
	})

	// The backup job cannot start (its scratch folder does not exist) after the guest is frozen.
	t.Run("failure after the freeze thaws", func(t *testing.T) {
		o := backupOpts(t, "q3")
		o.Quiesce, o.ScratchDir = true, filepath.Join(t.TempDir(), "missing")
		res := d.BackupVM(testCtx(t), r, ag.vm, o)
		if res.Err == nil || res.Committed || !strings.Contains(res.Err.Error(), "start the libvirt backup job") {
			t.Fatalf("backup with a missing scratch folder: err %v, committed %v", res.Err, res.Committed)
		}
		if f, th := hooks(); f != 3 || th != 3 {
			t.Fatalf("after a failed quiesced backup: %d freezes, %d thaws, want 3 and 3", f, th)
		}
		if s := status(); s != "thawed" {
			t.Fatalf("after a failed backup the guest is %s", s)
		}
	})

	// What a run killed between freeze and thaw leaves: the mark and a frozen guest. The next
	// backup of the domain, quiesced or not, thaws it and says so. (cmd/snapferry's
	// TestE2EQuiesceKilled kills a real process there.)
	t.Run("frozen by a killed run", func(t *testing.T) {
		dom := mustDomain(t, d, ag.vm)
		// A process that has exited: a child run to its end.
		gone := exec.Command("true")
		if err := gone.Run(); err != nil {
			t.Fatal(err)
		}
		if err := d.markFrozen(dom, freezeMark{job: "killed-job", pid: gone.Process.Pid, token: "1@gone"}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.l.DomainFsfreeze(dom, nil, 0); err != nil {
			t.Fatal(err)
		}
		if s := status(); s != "frozen" {
			t.Fatalf("guest is %s after the freeze", s)
		}
		res := d.BackupVM(testCtx(t), r, ag.vm, backupOpts(t, "q4"))
		if res.Err != nil || !res.Committed {
			t.Fatalf("backup: %v", res.Err)
		}
		if s := status(); s != "thawed" {
			t.Fatalf("the next backup left the guest %s", s)
		}
		if !strings.Contains(strings.Join(res.Warnings, "\n"), "thawed the guest file systems snapferry job killed-job left frozen") {
			t.Fatalf("warnings: %v", res.Warnings)
		}
		if _, ok := d.frozenMark(dom); ok {
			t.Fatal("the freeze mark is still there")
		}
	})

	// A mark whose process still runs (here: a live child process of this test) is a freeze
	// under way, another run's (from another --home): the backup leaves it alone.
	t.Run("frozen by a live run", func(t *testing.T) {
		dom := mustDomain(t, d, ag.vm)
		live := exec.Command("sleep", "600")
		if err := live.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = live.Process.Kill(); _ = live.Wait() }()
		p, err := pidmgr.NewProcessTable("", nil).Lookup(testCtx(t), live.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.markFrozen(dom, freezeMark{job: "live-job", pid: p.PID, token: p.Token}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.l.DomainFsfreeze(dom, nil, 0); err != nil {
			t.Fatal(err)
		}
		var logs logLines
		o := backupOpts(t, "q5")
		o.Log = logs.log
		res := d.BackupVM(testCtx(t), r, ag.vm, o)
		if res.Err != nil || len(res.Warnings) != 0 || status() != "frozen" || !strings.Contains(logs.String(), "is freezing the guest right now") {
			t.Fatalf("backup beside a live freeze: err %v, warnings %v, guest %s; log:\n%s", res.Err, res.Warnings, status(), &logs)
		}
		// That run's thaw, as it would do it.
		if _, err := d.l.DomainFsthaw(dom, nil, 0); err != nil || d.unmarkFrozen(dom) != nil || status() != "thawed" {
			t.Fatalf("thaw: %v, guest %s", err, status())
		}
	})
}

// --quiesce where no agent answers goes on crash-consistent with a warning naming what to do:
// a domain without the agent channel, and one with the channel but no agent running in it
// (these domains have no guest OS at all).
func TestQuiesceWithoutAgent(t *testing.T) {
	d := needLibvirt(t)
	dir := t.TempDir()
	_, r := memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})

	noChannel := testDomain(t, d, "sf-noagent", true, qemuImg(t, dir, "a.qcow2", "qcow2", 16<<20, "write -P 0x11 0 1M"))
	channelXML := `<domain type='qemu'><name>sf-silentagent</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='` + qemuImg(t, dir, "b.qcow2", "qcow2", 16<<20, "write -P 0x22 0 1M") + `'/><target dev='vda' bus='virtio'/></disk>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel></devices></domain>`
	silent := defineTestDomain(t, d, channelXML, true)
	for i, vm := range []appliance.VM{noChannel, vmOf(silent)} {
		o := backupOpts(t, "n"+string(rune('1'+i)))
		o.Quiesce = true
		res := d.BackupVM(testCtx(t), r, vm, o)
		if res.Err != nil || !res.Committed {
			t.Fatalf("%s: backup with --quiesce and no agent: %v", vm.Name, res.Err)
		}
		w := strings.Join(res.Warnings, "\n")
		if !strings.Contains(w, "not quiesced, the backup is crash-consistent") || !strings.Contains(w, "org.qemu.guest_agent.0") {
			t.Fatalf("%s: warnings %q", vm.Name, w)
		}
		sn, err := r.LoadSnapshot(testCtx(t), res.Snapshot)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(sn.Warnings, "\n") != w {
			t.Fatalf("%s: the snapshot's warnings %v differ from the result's %v", vm.Name, sn.Warnings, res.Warnings)
		}
		if _, ok := d.frozenMark(mustDomain(t, d, vm)); ok {
			t.Fatalf("%s: a freeze mark stayed although nothing was frozen", vm.Name)
		}
	}
}

func mustDomain(t *testing.T, d *Driver, vm appliance.VM) golibvirt.Domain {
	t.Helper()
	dom, err := d.domain(vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	return dom
}

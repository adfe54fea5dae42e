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
	f := &agentFixture{d: d, ag: bootGuest(t, d, "sf-agent")}
	_, f.r = memblobs.LocalRepo(t, testBlock, repo.ChunkerParams{})
	// In this order: each step counts the hooks the steps before it ran.
	t.Run("quiesced", f.quiesced)
	t.Run("slow freeze hook", f.slowHook)
	t.Run("unquiesced control", f.unquiescedControl)
	t.Run("failure after the freeze thaws", f.failureThaws)
	t.Run("frozen by a killed run", f.killedRunThawed)
	t.Run("frozen by a live run", f.liveRunLeftAlone)
}

// agentFixture is the booted agent guest and the repository the quiesce steps back up into.
type agentFixture struct {
	d  *Driver
	ag agentGuest
	r  *repo.Repository
}

func (f *agentFixture) status(t *testing.T) string {
	t.Helper()
	return lvtest.FreezeStatus(t, daemon.uri, f.ag.vm.Name)
}

// hooks counts the freeze and thaw hooks the guest ran so far.
func (f *agentFixture) hooks(t *testing.T) (int, int) {
	t.Helper()
	return lvtest.ConsoleLines(t, f.ag.console, hookFreeze), lvtest.ConsoleLines(t, f.ag.console, hookThaw)
}

func (f *agentFixture) quiesced(t *testing.T) {
	var logs logLines
	o := backupOpts(t, "q1")
	o.Quiesce, o.Log = true, logs.log
	_, sn := backupOK(t, f.d, f.r, f.ag.vm, o)
	if fr, th := f.hooks(t); fr != 1 || th != 1 {
		t.Fatalf("the guest ran its freeze hook %d times and its thaw hook %d times, want once each; log:\n%s", fr, th, &logs)
	}
	if s := f.status(t); s != "thawed" {
		t.Fatalf("after the backup the guest is %s", s)
	}
	t.Logf("log:\n%s", &logs)
	if !strings.Contains(logs.String(), "froze 1 guest file system(s)") || len(sn.Warnings) != 0 {
		t.Fatalf("log:\n%s\nwarnings: %v", &logs, sn.Warnings)
	}
	raw, sb := restoredSuperblock(t, f.r, sn)
	if strings.Contains(sb, "needs_recovery") {
		t.Fatalf("the quiesced backup's ext4 needs journal recovery: it was not frozen\n%s", sb)
	}
	run(t, "e2fsck", "-fn", raw)
	if _, ok := f.d.frozenMark(mustDomain(t, f.d, f.ag.vm)); ok {
		t.Fatal("the freeze mark is still on the domain after the thaw")
	}
}

// An application's hook may take a while to flush before the freeze (the guest's waits 8 s):
// libvirt waits for the agent, the backup is quiesced.
func (f *agentFixture) slowHook(t *testing.T) {
	lvtest.GuestWriteFile(t, daemon.uri, f.ag.vm.Name, "/run/snapferry-slow-freeze", "8")
	var logs logLines
	o := backupOpts(t, "q1s")
	o.Quiesce, o.Log = true, logs.log
	_, sn := backupOK(t, f.d, f.r, f.ag.vm, o)
	if fr, th := f.hooks(t); fr != 2 || th != 2 || len(sn.Warnings) != 0 || f.status(t) != "thawed" {
		t.Fatalf("quiesced backup with a slow hook: %d freezes, %d thaws, warnings %v; log:\n%s", fr, th, sn.Warnings, &logs)
	}
	if _, sb := restoredSuperblock(t, f.r, sn); strings.Contains(sb, "needs_recovery") {
		t.Fatalf("the backup's ext4 needs journal recovery: it was not frozen\n%s", sb)
	}
}

// The control: the superblock probe can fail. The same mounted file system backed up without
// --quiesce carries the journal's recovery flag.
func (f *agentFixture) unquiescedControl(t *testing.T) {
	_, sn := backupOK(t, f.d, f.r, f.ag.vm, backupOpts(t, "q2"))
	if _, sb := restoredSuperblock(t, f.r, sn); !strings.Contains(sb, "needs_recovery") {
		t.Fatalf("an unquiesced backup of a mounted ext4 shows no needs_recovery: the probe cannot tell\n%s", sb)
	}
	if fr, th := f.hooks(t); fr != 2 || th != 2 {
		t.Fatalf("a backup without --quiesce ran the guest's hooks (%d freeze, %d thaw)", fr, th)
	}
}

// The backup job cannot start (its scratch folder does not exist) after the guest is frozen.
func (f *agentFixture) failureThaws(t *testing.T) {
	o := backupOpts(t, "q3")
	o.Quiesce, o.ScratchDir = true, filepath.Join(t.TempDir(), "missing")
	res := f.d.BackupVM(testCtx(t), f.r, f.ag.vm, o)
	if res.Err == nil || res.Committed || !strings.Contains(res.Err.Error(), "start the libvirt backup job") {
		t.Fatalf("backup with a missing scratch folder: err %v, committed %v", res.Err, res.Committed)
	}
	if fr, th := f.hooks(t); fr != 3 || th != 3 {
		t.Fatalf("after a failed quiesced backup: %d freezes, %d thaws, want 3 and 3", fr, th)
	}
	if s := f.status(t); s != "thawed" {
		t.Fatalf("after a failed backup the guest is %s", s)
	}
}

// freezeWithMark freezes the guest as a run with mark m would have.
func (f *agentFixture) freezeWithMark(t *testing.T, m freezeMark) golibvirt.Domain {
	t.Helper()
	dom := mustDomain(t, f.d, f.ag.vm)
	if err := f.d.markFrozen(dom, m); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.l.DomainFsfreeze(dom, nil, 0); err != nil {
		t.Fatal(err)
	}
	if s := f.status(t); s != "frozen" {
		t.Fatalf("guest is %s after the freeze", s)
	}
	return dom
}

// What a run killed between freeze and thaw leaves: the mark and a frozen guest. The next
// backup of the domain, quiesced or not, thaws it and says so. (cmd/snapferry's
// TestE2EQuiesceKilled kills a real process there.)
func (f *agentFixture) killedRunThawed(t *testing.T) {
	gone := exec.Command("true") // a process that has exited
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dom := f.freezeWithMark(t, freezeMark{job: "killed-job", pid: gone.Process.Pid, token: "1@gone"})
	res := f.d.BackupVM(testCtx(t), f.r, f.ag.vm, backupOpts(t, "q4"))
	if res.Err != nil || !res.Committed {
		t.Fatalf("backup: %v", res.Err)
	}
	if s := f.status(t); s != "thawed" {
		t.Fatalf("the next backup left the guest %s", s)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "thawed the guest file systems snapferry job killed-job left frozen") {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	if _, ok := f.d.frozenMark(dom); ok {
		t.Fatal("the freeze mark is still there")
	}
}

// A mark whose process still runs (here: a live child process of this test) is a freeze under
// way, another run's (from another --home): the backup leaves it alone.
func (f *agentFixture) liveRunLeftAlone(t *testing.T) {
	live := exec.Command("sleep", "600")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = live.Process.Kill(); _ = live.Wait() }()
	p, err := pidmgr.NewProcessTable("", nil).Lookup(testCtx(t), live.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	dom := f.freezeWithMark(t, freezeMark{job: "live-job", pid: p.PID, token: p.Token})
	var logs logLines
	o := backupOpts(t, "q5")
	o.Log = logs.log
	res := f.d.BackupVM(testCtx(t), f.r, f.ag.vm, o)
	if res.Err != nil || len(res.Warnings) != 0 || f.status(t) != "frozen" || !strings.Contains(logs.String(), "is freezing the guest right now") {
		t.Fatalf("backup beside a live freeze: err %v, warnings %v, guest %s; log:\n%s", res.Err, res.Warnings, f.status(t), &logs)
	}
	// That run's thaw, as it would do it.
	if _, err := f.d.l.DomainFsthaw(dom, nil, 0); err != nil || f.d.unmarkFrozen(dom) != nil || f.status(t) != "thawed" {
		t.Fatalf("thaw: %v, guest %s", err, f.status(t))
	}
	// A mark without a token (its run could not read its own) and a live pid: left alone too.
	dom = f.freezeWithMark(t, freezeMark{job: "tokenless-job", pid: p.PID})
	var logs2 logLines
	o = backupOpts(t, "q6")
	o.Log = logs2.log
	res = f.d.BackupVM(testCtx(t), f.r, f.ag.vm, o)
	if res.Err != nil || f.status(t) != "frozen" || !strings.Contains(logs2.String(), "is freezing the guest right now") {
		t.Fatalf("backup beside a live tokenless freeze: err %v, guest %s; log:\n%s", res.Err, f.status(t), &logs2)
	}
	if _, err := f.d.l.DomainFsthaw(dom, nil, 0); err != nil || f.d.unmarkFrozen(dom) != nil || f.status(t) != "thawed" {
		t.Fatalf("thaw: %v, guest %s", err, f.status(t))
	}
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

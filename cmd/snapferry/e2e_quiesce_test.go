package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/libvirt/lvtest"
	"github.com/snapferry/snapferry/cron/testkit"
)

// `backup --vm --quiesce` on a libvirt host with a real QEMU guest agent (the guest of
// scripts/libvirt/guest-initramfs.sh): the agent freezes and thaws the guest once; a snapferry
// killed while the agent is freezing leaves the guest frozen, and the next backup of the domain
// thaws it and says so (exit 3); the guest's hooks prove each freeze and thaw. A domain without
// agent is backed up crash-consistent with a warning (exit 3).
func TestE2EQuiesceKilled(t *testing.T) {
	lv := lvtest.Start(t)
	g := lvtest.BuildGuest(t)
	dir, home := t.TempDir(), t.TempDir()
	console := filepath.Join(dir, "console.log")
	xml := filepath.Join(dir, "guest.xml")
	if err := os.WriteFile(xml, []byte(g.DomainXML("guest", lvtest.Ext4Disk(t, dir), console)), 0o600); err != nil {
		t.Fatal(err)
	}
	virsh(t, lv.URI, "define", xml)
	virsh(t, lv.URI, "start", "guest")
	t.Cleanup(func() { exec.Command("virsh", "-c", lv.URI, "destroy", "guest").Run() })
	t.Logf("guest agent answered after %s (TCG)", lvtest.WaitAgent(t, lv.URI, "guest", 5*time.Minute).Round(100*time.Millisecond))
	hooks := func() (int, int) {
		return lvtest.ConsoleLines(t, console, "snapferry-guest: fsfreeze-hook freeze"), lvtest.ConsoleLines(t, console, "snapferry-guest: fsfreeze-hook thaw")
	}
	status := func() string { return lvtest.FreezeStatus(t, lv.URI, "guest") }

	uri := "--libvirt-uri=" + lv.URI
	repoDir := filepath.Join(dir, "repo")
	mustSF(t, home, 0, "init", repoDir)
	r := mustSF(t, home, 0, "backup", "--vm=guest", "--to="+repoDir, "--quiesce", "--json", uri)
	if items := backupItems(t, r.stdout); len(items) != 1 || items[0].Snapshot == "" || len(items[0].Warnings) != 0 {
		t.Fatalf("quiesced backup: %+v\n%s", items, r.stderr)
	}
	if f, th := hooks(); f != 1 || th != 1 || status() != "thawed" || !strings.Contains(r.stderr, "froze 1 guest file system(s)") {
		t.Fatalf("quiesced backup: %d freezes, %d thaws, guest %s; stderr:\n%s", f, th, status(), r.stderr)
	}

	// The guest's next freeze hook waits 10 s before the agent freezes: snapferry is inside the
	// freeze call then, and is killed there.
	lvtest.GuestWriteFile(t, lv.URI, "guest", "/run/snapferry-slow-freeze", "10")
	j := startSF(t, []string{"SNAPFERRY_HOME=" + home}, "backup", "--vm=guest", "--to="+repoDir, "--quiesce", uri)
	testkit.Eventually(t, 2*time.Minute, "the guest's freeze hook to start", func() bool {
		return lvtest.ConsoleLines(t, console, "snapferry-guest: fsfreeze-hook freeze waits 10 s") == 1
	})
	if err := j.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-j.done
	testkit.Eventually(t, 2*time.Minute, "the agent to finish the freeze the killed run asked for", func() bool {
		return status() == "frozen"
	})
	if _, th := hooks(); th != 1 {
		t.Fatalf("the killed run thawed the guest (%d thaws): the test did not hit the window", th)
	}

	// Exit 3: committed, with a warning that something went wrong before.
	r = mustSF(t, home, 3, "backup", "--vm=guest", "--to="+repoDir, "--quiesce", "--json", uri)
	items := backupItems(t, r.stdout)
	if len(items) != 1 || items[0].Snapshot == "" || !strings.Contains(strings.Join(items[0].Warnings, "\n"), "left frozen") {
		t.Fatalf("backup after the killed one: %+v\n%s", items, r.stderr)
	}
	// The leftover thaw, then this run's own freeze and thaw.
	if f, th := hooks(); f != 3 || th != 3 || status() != "thawed" {
		t.Fatalf("after the next backup: %d freezes, %d thaws (want 3, 3), guest %s", f, th, status())
	}

	// No agent (a domain without guest OS or agent channel): backed up crash-consistent, the
	// warning says what to do, exit 3.
	img := filepath.Join(dir, "noagent.qcow2")
	mustRun(t, nil, "qemu-img", "create", "-q", "-f", "qcow2", img, "16M")
	noAgent := filepath.Join(dir, "noagent.xml")
	os.WriteFile(noAgent, []byte(`<domain type='qemu'><name>noagent</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='`+img+`'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>`), 0o600)
	virsh(t, lv.URI, "define", noAgent)
	virsh(t, lv.URI, "start", "noagent")
	t.Cleanup(func() { exec.Command("virsh", "-c", lv.URI, "destroy", "noagent").Run() })
	r = mustSF(t, home, 3, "backup", "--vm=noagent", "--to="+repoDir, "--quiesce", uri)
	if !strings.Contains(r.stdout, "warning: not quiesced, the backup is crash-consistent: the QEMU guest agent did not freeze") ||
		!strings.Contains(r.stdout, "org.qemu.guest_agent.0") || !strings.Contains(r.stdout, "snapshot ") {
		t.Fatalf("backup --quiesce without agent:\n%s\n%s", r.stdout, r.stderr)
	}
}

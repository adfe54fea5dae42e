package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/snapferry/snapferry/appliance/libvirt/lvtest"
	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/disk/disktest"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// lvReplicaEnv is a private libvirtd running the domain "web" on a qcow2 disk, and a loopback
// sshd whose far folder receives its mirror.
type lvReplicaEnv struct {
	uri, home, img, far string
	args                []string // replica --vm=web --to=... --json and the SSH and libvirt options
}

func newLVReplicaEnv(t *testing.T) *lvReplicaEnv {
	t.Helper()
	lv := lvtest.Start(t)
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	e := &lvReplicaEnv{uri: lv.URI, home: filepath.Join(dir, "state"), img: filepath.Join(dir, "web.qcow2"), far: filepath.Join(dir, "far")}
	if err := os.MkdirAll(e.far, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "qemu-img", "create", "-q", "-f", "qcow2", e.img, "64M")
	mustRun(t, nil, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 4M", e.img)
	xml := filepath.Join(dir, "web.xml")
	if err := os.WriteFile(xml, []byte(fmt.Sprintf(`<domain type='qemu'><name>web</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>`, e.img)), 0o600); err != nil {
		t.Fatal(err)
	}
	virsh(t, e.uri, "define", xml)
	virsh(t, e.uri, "start", "web")
	t.Cleanup(func() { exec.Command("virsh", "-c", e.uri, "destroy", "web").Run() })
	e.args = append([]string{"replica", "--vm=web", "--to", s.Spec("ssh", e.far), "--json",
		"--libvirt-uri=" + e.uri}, s.Flags()...)
	return e
}

// replica runs one replica of web, which must exit with want (3, partial, when it warns), and
// returns its one item.
func (e *lvReplicaEnv) replica(t *testing.T, want int, extra ...string) (backupItem, result) {
	t.Helper()
	r := mustSF(t, e.home, want, append(append([]string{}, e.args...), extra...)...)
	items := backupItems(t, r.stdout)
	if len(items) != 1 || items[0].Replica == nil || items[0].Error != "" {
		t.Fatalf("replica items: %+v\n%s", items, r.stderr)
	}
	return items[0], r
}

// guestWrite writes into web's disk as its guest would, through QEMU's monitor, and flushes so
// tools reading the qcow2 file see the write.
func (e *lvReplicaEnv) guestWrite(t *testing.T, cmd string) {
	t.Helper()
	for _, c := range []string{cmd, "flush"} {
		virsh(t, e.uri, "qemu-monitor-command", "web", "--hmp", `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "`+c+`"`)
	}
}

// mirrorEqual checks that the mirror's disk holds what the domain's disk holds. The guest has
// no OS and writes only when the test tells it to, so the disk is at the point in time the last
// run read.
func (e *lvReplicaEnv) mirrorEqual(t *testing.T, what string) {
	t.Helper()
	if out, err := exec.Command("qemu-img", "compare", "-U", "-f", "raw", "-F", "qcow2", e.mirrorDisk(), e.img).CombinedOutput(); err != nil {
		t.Fatalf("%s: the mirror's disk differs from the domain's: %v\n%s", what, err, out)
	}
}

func (e *lvReplicaEnv) mirrorDisk() string { return filepath.Join(e.far, "web", "web-vda.raw") }

// TestE2ELibvirtReplica keeps a mirror of a running libvirt domain over a real sshd: the first run
// copies the allocated extents into a sparse raw file, a run after guest writes sends only the
// blocks the replica's dirty bitmap marks (also with a repository's backups in between), a run
// killed mid-update leaves the previous mirror and
// the next one completes incrementally, a deleted checkpoint makes one run compare the disk whole
// (saying why) and the next is incremental again, a shut-off domain is read through its
// checkpoint's persistent bitmap, and the mirror's XML defines and boots beside the original.
func TestE2ELibvirtReplica(t *testing.T) {
	e := newLVReplicaEnv(t)

	// First run: the 4 MiB of data are read (holes are not), and stay the only data far away.
	first, _ := e.replica(t, 0)
	if first.Replica.BytesRead != 4<<20 || len(first.Warnings) != 0 {
		t.Fatalf("first run: %+v, want the 4 MiB of allocated data read", first)
	}
	e.mirrorEqual(t, "first run")
	if a := disktest.Allocated(t, e.mirrorDisk()); a > 5<<20 {
		t.Errorf("the mirror's disk allocates %d bytes for 4 MiB of data: holes were filled", a)
	}
	mirrorXML := filepath.Join(e.far, "web", "web-replica.xml")
	doc, err := os.ReadFile(mirrorXML)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "<name>web-replica</name>") || !strings.Contains(string(doc), e.mirrorDisk()) ||
		!strings.Contains(string(doc), `type="raw"`) || strings.Contains(string(doc), e.img) {
		t.Fatalf("mirror XML does not name the mirror's raw disk:\n%s", doc)
	}

	// Incremental: the guest writes 64 KiB; one 64 KiB block is read and sent.
	e.guestWrite(t, "write -P 0xab 20M 64k")
	inc, r := e.replica(t, 0)
	if inc.Replica.BytesRead != 64<<10 || inc.Replica.BlocksChanged != 1 || len(inc.Warnings) != 0 {
		t.Fatalf("incremental run: %+v, want one 64 KiB block read and sent\n%s", inc, r.stderr)
	}
	if inc.Replica.BytesSent > 64<<10+8<<10 {
		t.Errorf("incremental run sent %d bytes for a 64 KiB write", inc.Replica.BytesSent)
	}
	e.mirrorEqual(t, "incremental run")
	if again, _ := os.ReadFile(mirrorXML); !bytes.Equal(again, doc) {
		t.Errorf("the mirror's XML changed between runs of an unchanged domain:\n%s\n%s", doc, again)
	}

	// A repository's backups keep a chain of their own: a replica run after two backups still
	// sees the write made between them.
	repoDir := filepath.Join(filepath.Dir(e.far), "repo")
	lvURI := "--libvirt-uri=" + e.uri
	mustSF(t, e.home, 0, "init", repoDir)
	mustSF(t, e.home, 0, "backup", "--vm=web", "--to="+repoDir, lvURI)
	e.guestWrite(t, "write -P 0x77 24M 64k")
	b := backupItems(t, mustSF(t, e.home, 0, "backup", "--vm=web", "--to="+repoDir, "--json", lvURI).stdout)
	// The backup reads only the dirty 64 KiB (QEMU's bitmap granularity), not its 1 MiB block.
	if len(b) != 1 || b[0].Stats.BytesRead != 64<<10 || len(b[0].Warnings) != 0 {
		t.Fatalf("incremental backup between replica runs: %+v", b)
	}
	if withBackups, _ := e.replica(t, 0); withBackups.Replica.BytesRead != 64<<10 || withBackups.Replica.BlocksChanged != 1 {
		t.Fatalf("replica run after two backups: %+v, want the 64 KiB written between them", withBackups.Replica)
	}
	e.mirrorEqual(t, "replica run after two backups")

	// Killed mid-update: 16 MiB of writes sent uncompressed at 2 MiB/s; SIGKILL once the far
	// disk is being written in place.
	e.guestWrite(t, "write -P 0xcd 32M 16M")
	before := disktest.FileSum(t, e.mirrorDisk())
	cmd := exec.Command(binPath, append(append([]string{}, e.args...), "--compression=off", "--bwlimit=2M")...)
	cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+e.home)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !testkit.Poll(60*time.Second, func() bool { return disktest.FileSum(t, e.mirrorDisk()) != before }) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the mirror never changed during the update:\n%s", out.String())
	}
	cmd.Process.Kill()
	if err := cmd.Wait(); err == nil || err.(*exec.ExitError).Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the replica was not killed mid-update (%v); the test proves nothing:\n%s", err, out.String())
	}
	journals := filepath.Join(e.far, ".snapferry-undo", "*.journal")
	if testkit.Poll(5*time.Second, func() bool { m, _ := filepath.Glob(journals); return len(m) == 0 }) &&
		disktest.FileSum(t, e.mirrorDisk()) != before {
		t.Fatal("the far side dropped its journal but the mirror is not the previous one")
	}
	after, r := e.replica(t, exitcode.Partial)
	if !strings.Contains(r.stderr, "earlier") || len(after.Warnings) != 1 || !strings.Contains(after.Warnings[0], "ended a backup job") {
		t.Errorf("the run after the kill did not clear the killed run's job and checkpoint: %q\n%s", after.Warnings, r.stderr)
	}
	if after.Replica.BytesRead != 16<<20 {
		t.Errorf("run after the kill read %d bytes, want the 16 MiB written since the last complete run (incremental)", after.Replica.BytesRead)
	}
	e.mirrorEqual(t, "run after the kill")
	if m, _ := filepath.Glob(journals); len(m) != 0 {
		t.Errorf("journal left after a complete run: %v", m)
	}

	// The bitmap is lost (a user deletes the checkpoint): one whole compare that says why and
	// sends only the changed block, then incremental again.
	for _, cp := range strings.Fields(virsh(t, e.uri, "checkpoint-list", "web", "--name")) {
		virsh(t, e.uri, "checkpoint-delete", "web", cp)
	}
	e.guestWrite(t, "write -P 0xef 40M 64k")
	whole, _ := e.replica(t, exitcode.Partial)
	if len(whole.Warnings) != 1 || !strings.Contains(whole.Warnings[0], "compared whole") || !strings.Contains(whole.Warnings[0], "is gone") {
		t.Fatalf("run after the checkpoint was deleted: warnings %q", whole.Warnings)
	}
	if whole.Replica.BytesRead < 20<<20 || whole.Replica.BlocksChanged != 1 {
		t.Fatalf("run after the checkpoint was deleted: %+v, want the allocated 20 MiB read and one block sent", whole.Replica)
	}
	e.mirrorEqual(t, "whole compare")
	e.guestWrite(t, "write -P 0x42 50M 64k")
	if inc, _ := e.replica(t, 0); inc.Replica.BytesRead != 64<<10 || len(inc.Warnings) != 0 {
		t.Fatalf("run after the whole compare: %+v, want incremental again", inc)
	}
	e.mirrorEqual(t, "incremental after the whole compare")

	// Shut off: the next run reads the disk file through qemu-nbd with the checkpoint's
	// persistent bitmap (only the block written before the stop); started again, the domain's
	// next run is incremental from the same checkpoint.
	e.guestWrite(t, "write -P 0x5a 60M 64k")
	virsh(t, e.uri, "destroy", "web")
	off, r := e.replica(t, 0)
	if off.Mode != "cold" || off.Replica.BytesRead != 64<<10 || len(off.Warnings) != 0 {
		t.Fatalf("run of the shut-off domain: %+v (mode %s, warnings %q), want the one block written before the stop\n%s", off.Replica, off.Mode, off.Warnings, r.stderr)
	}
	e.mirrorEqual(t, "run of the shut-off domain")
	virsh(t, e.uri, "start", "web")
	e.guestWrite(t, "write -P 0x6b 8M 64k")
	if on, _ := e.replica(t, 0); on.Mode != "hot" || on.Replica.BytesRead != 128<<10 || len(on.Warnings) != 0 {
		t.Fatalf("run after the restart: %+v %q, want both blocks changed since the checkpoint", on.Replica, on.Warnings)
	}
	e.mirrorEqual(t, "run after the restart")

	// The mirror defines beside the original and boots.
	virsh(t, e.uri, "define", mirrorXML)
	t.Cleanup(func() {
		exec.Command("virsh", "-c", e.uri, "destroy", "web-replica").Run()
		exec.Command("virsh", "-c", e.uri, "undefine", "web-replica").Run()
	})
	if src, mir := virsh(t, e.uri, "domuuid", "web"), virsh(t, e.uri, "domuuid", "web-replica"); src == mir {
		t.Fatalf("the mirror has the original's UUID %s", src)
	}
	virsh(t, e.uri, "start", "web-replica")
	if !strings.Contains(virsh(t, e.uri, "domstate", "web-replica"), "running") {
		t.Fatal("the mirror does not run")
	}
	virsh(t, e.uri, "destroy", "web-replica")
	virsh(t, e.uri, "undefine", "web-replica")

	// The job history and status know the replica runs.
	jobs := mustSF(t, e.home, 0, "jobs", "--json").stdout
	if !strings.Contains(jobs, "replica") {
		t.Fatalf("job history has no replica:\n%s", jobs)
	}
}

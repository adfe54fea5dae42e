package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance/libvirt/lvtest"
)

// virsh runs virsh against the test's libvirtd.
func virsh(t *testing.T, uri string, args ...string) string {
	t.Helper()
	out, err := exec.Command("virsh", append([]string{"-c", uri}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("virsh %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// backupItems parses the summary of `backup --json`.
func backupItems(t *testing.T, out string) []backupItem {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var s struct {
			Event string       `json:"event"`
			Items []backupItem `json:"items"`
		}
		if dec.Decode(&s) != nil {
			break
		}
		if s.Event == "summary" {
			return s.Items
		}
	}
	t.Fatalf("no summary in %s", out)
	return nil
}

// On a libvirt host: vms lists the domain, backup --vm takes a full and then an incremental
// that reads about what the guest wrote, restore --disk-dir --register defines a copy under a
// new name whose disk equals the source's, and restore refuses to replace the running domain.
func TestE2ELibvirt(t *testing.T) {
	lv := lvtest.Start(t)
	home, dir := t.TempDir(), t.TempDir()
	img := filepath.Join(dir, "web.qcow2")
	mustRun(t, nil, "qemu-img", "create", "-q", "-f", "qcow2", img, "64M")
	mustRun(t, nil, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 4M", img)
	xml := filepath.Join(dir, "web.xml")
	os.WriteFile(xml, []byte(fmt.Sprintf(`<domain type='qemu'><name>web</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>`, img)), 0o600)
	virsh(t, lv.URI, "define", xml)
	virsh(t, lv.URI, "start", "web")
	t.Cleanup(func() { exec.Command("virsh", "-c", lv.URI, "destroy", "web").Run() })

	uri := "--libvirt-uri=" + lv.URI
	out := mustSF(t, home, 0, "vms", uri).stdout
	if !strings.Contains(out, "web  [on]") || !strings.Contains(out, "vda virtio:vda") {
		t.Fatalf("vms:\n%s", out)
	}
	repoDir := filepath.Join(dir, "repo")
	mustSF(t, home, 0, "init", repoDir)
	full := backupItems(t, mustSF(t, home, 0, "backup", "--vm=web", "--to="+repoDir, "--json", uri).stdout)
	if len(full) != 1 || full[0].Stats.BytesRead != 4<<20 {
		t.Fatalf("full backup: %+v", full)
	}
	for _, c := range []string{"write -P 0xab 20M 64k", "flush"} { // flush: qemu-img compare -U below sees it
		virsh(t, lv.URI, "qemu-monitor-command", "web", "--hmp", `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "`+c+`"`)
	}
	inc := backupItems(t, mustSF(t, home, 0, "backup", "--vm=web", "--to="+repoDir, "--json", uri).stdout)
	// 64 KiB written: only that dirty 64 KiB is read (QEMU's bitmap granularity), not its 1 MiB
	// repository block nor the 4 MiB of data.
	if len(inc) != 1 || inc[0].Stats.BytesRead != 64<<10 || len(inc[0].Warnings) != 0 {
		t.Fatalf("incremental backup: %+v", inc)
	}

	disks := filepath.Join(dir, "restored")
	mustSF(t, home, 0, "restore", "latest", "--source=web", "--from="+repoDir, "--disk-dir="+disks, "--name=web-copy", "--register", uri)
	t.Cleanup(func() { exec.Command("virsh", "-c", lv.URI, "undefine", "web-copy").Run() })
	mustRun(t, nil, "qemu-img", "compare", "-U", filepath.Join(disks, "web-copy-vda.qcow2"), img)
	if !strings.Contains(virsh(t, lv.URI, "list", "--all", "--name"), "web-copy") {
		t.Fatal("restored domain is not defined")
	}
	r := mustSF(t, home, 1, "restore", "latest", "--source=web", "--from="+repoDir, "--disk-dir="+filepath.Join(dir, "again"), "--register", "--overwrite", uri)
	if !strings.Contains(r.stderr, "running domain is never replaced") {
		t.Fatalf("restore over the running domain: %s", r.stderr)
	}

	// Into a storage pool: the disk becomes a volume of it; again without --overwrite the volume
	// is kept and the restore exits 3.
	poolDir := filepath.Join(dir, "pool")
	if err := os.MkdirAll(poolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	virsh(t, lv.URI, "pool-create-as", "sfpool", "dir", "--target", poolDir)
	t.Cleanup(func() { exec.Command("virsh", "-c", lv.URI, "pool-destroy", "sfpool").Run() })
	mustSF(t, home, 0, "restore", "latest", "--source=web", "--from="+repoDir, "--pool=sfpool", "--name=web-pool", "--register", uri)
	t.Cleanup(func() { exec.Command("virsh", "-c", lv.URI, "undefine", "web-pool").Run() })
	if !strings.Contains(virsh(t, lv.URI, "vol-list", "sfpool"), "web-pool-vda.qcow2") {
		t.Fatal("the restored disk is not a volume of the pool")
	}
	mustRun(t, nil, "qemu-img", "compare", "-U", filepath.Join(poolDir, "web-pool-vda.qcow2"), img)
	virsh(t, lv.URI, "undefine", "web-pool")
	r = mustSF(t, home, 3, "restore", "latest", "--source=web", "--from="+repoDir, "--pool=sfpool", "--name=web-pool", "--register", uri)
	if !strings.Contains(r.stderr, "volume web-pool-vda.qcow2 exists in storage pool sfpool") {
		t.Fatalf("restore over an existing volume: %s", r.stderr)
	}

	// Instant boot: the domain starts on overlays backed by the repository and the command
	// returns once the disks are copied; the domain then stands alone.
	now := filepath.Join(dir, "now")
	r = mustSF(t, home, 0, "restore", "latest", "--source=web", "--from="+repoDir, "--disk-dir="+now, "--name=web-now", "--instant", uri)
	t.Cleanup(func() {
		exec.Command("virsh", "-c", lv.URI, "destroy", "web-now").Run()
		exec.Command("virsh", "-c", lv.URI, "undefine", "web-now").Run()
	})
	if !strings.Contains(r.stderr, "is running from the backup") || !strings.Contains(r.stderr, "disks copied") {
		t.Fatalf("restore --instant said:\n%s", r.stderr)
	}
	if !strings.Contains(virsh(t, lv.URI, "domstate", "web-now"), "running") {
		t.Fatal("instantly restored domain is not running")
	}
	virsh(t, lv.URI, "destroy", "web-now")
	overlay := filepath.Join(now, "web-now-vda.qcow2")
	if info := mustRun(t, nil, "qemu-img", "info", overlay); strings.Contains(info, "backing file") {
		t.Fatalf("overlay still has a backing file:\n%s", info)
	}
	mustRun(t, nil, "qemu-img", "compare", "-U", overlay, img)
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/appliance/esxi/sim"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// TestFilesFromInsideVMDisk backs up a simulated ESXi VM whose disk holds a GPT disk with an
// ext4 partition (made by sfdisk and mke2fs) and gets one file and one folder back from inside
// it, over a local and an ssh:// repository, without restoring the disk.
func TestFilesFromInsideVMDisk(t *testing.T) {
	base := t.TempDir()
	img, src := guestDiskImage(t, base)
	root, env, _ := simHost(t, sim.VMSpec{Name: "web 01", Datastore: "datastore1", PoweredOn: true, Tools: true,
		Disks: []sim.DiskSpec{{Size: 64 << 20}}})
	flats, _ := filepath.Glob(filepath.Join(root, "datastore1", "web 01", "*-flat.vmdk"))
	if len(flats) != 1 {
		t.Fatalf("flat extents of the simulated VM: %v", flats)
	}
	mustRun(t, nil, "dd", "if="+img, "of="+flats[0], "bs=1M", "conv=notrunc,sparse", "status=none")
	s := sshtest.Start(t, sshtest.Options{})
	for _, scheme := range []string{"local", "ssh"} {
		t.Run(scheme, func(t *testing.T) {
			dir := t.TempDir()
			home := filepath.Join(dir, "state")
			spec := filepath.Join(dir, "repo")
			var ssh []string
			if scheme != "local" {
				spec = s.Spec("ssh", spec)
				ssh = s.Flags()
			}
			sfEnv(t, home, env, 0, append([]string{"init", spec}, ssh...)...)
			sfEnv(t, home, env, 0, append([]string{"backup", "--vm=web 01", "--to", spec}, ssh...)...)
			parts := sfEnv(t, home, env, 0, append([]string{"ls", "latest:vmdk0", "--source=web 01", "--repo", spec}, ssh...)...).stdout
			if !strings.Contains(parts, "vmdk0/p2") || !strings.Contains(parts, "ext4") {
				t.Fatalf("partitions of vmdk0:\n%s", parts)
			}
			out := filepath.Join(dir, "out")
			sfEnv(t, home, env, 0, append([]string{"restore", "latest:vmdk0/p2/etc/hostname", "--source=web 01", "--from", spec, "--target", out}, ssh...)...)
			sfEnv(t, home, env, 0, append([]string{"restore", "latest:vmdk0/p2/var/many", "--source=web 01", "--from", spec, "--target", out}, ssh...)...)
			if got, _ := os.ReadFile(filepath.Join(out, "hostname")); string(got) != "web01\n" {
				t.Fatalf("hostname = %q", got)
			}
			for _, f := range []string{"f000.txt", "f299.txt"} {
				want, _ := os.ReadFile(filepath.Join(src, "var/many", f))
				got, err := os.ReadFile(filepath.Join(out, "many", f))
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("many/%s differs (%v)", f, err)
				}
			}
		})
	}
}

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/transfer/sshtest"
)

// TestReplicaSendsOnlyChangedBlocks keeps a replica of a thin image and a small config file on
// the far side of a real sshd: the second run sends about one changed block, the copy equals the
// source and stays sparse.
func TestReplicaSendsOnlyChangedBlocks(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	home := filepath.Join(dir, "state")
	src := filepath.Join(dir, "vm")
	os.MkdirAll(src, 0o755)
	img := filepath.Join(src, "disk-flat.vmdk")
	sparseImage(t, img, 512<<20, 0, 1, 2, 200, 400)
	os.WriteFile(filepath.Join(src, "vm.vmx"), []byte("displayName = \"vm\"\n"), 0o644)
	far := filepath.Join(dir, "far", "replicas") // missing: the first run creates it
	to := s.Spec("ssh", far)
	ssh := s.Flags()

	push := func() map[string]int64 {
		r := mustSF(t, home, 0, append([]string{"replica", src, "--to", to, "--json"}, ssh...)...)
		var sum struct {
			Items []struct {
				Replica map[string]int64 `json:"replica"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || len(sum.Items) != 1 {
			t.Fatalf("replica output %q: %v", r.stdout, err)
		}
		return sum.Items[0].Replica
	}
	first := push()
	copyImg := filepath.Join(far, "vm", "disk-flat.vmdk")
	if disktest.FileSum(t, copyImg) != disktest.FileSum(t, img) {
		t.Fatal("replica differs after the first run")
	}
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	writeRandom(t, f, 300)
	f.Close()
	second := push()
	if disktest.FileSum(t, copyImg) != disktest.FileSum(t, img) {
		t.Fatal("replica differs after the incremental run")
	}
	// The random MiB is sixteen 64 KiB blocks (the automatic block size for a 512 MiB disk).
	if second["bytes_changed"] != 1<<20 || second["bytes_sent"] > 1<<20+1<<20/5 || first["bytes_sent"] < 5<<20 {
		t.Fatalf("incremental should send the changed MiB: first %v, second %v", first, second)
	}
	if a, b := disktest.Allocated(t, copyImg), disktest.Allocated(t, img); a > b+b/10 {
		t.Fatalf("replica not sparse: %d allocated, source %d", a, b)
	}
	if b, err := os.ReadFile(filepath.Join(far, "vm", "vm.vmx")); err != nil || !strings.Contains(string(b), "displayName") {
		t.Fatalf("small file not replicated: %v", err)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapferry/snapferry/images/disk/disktest"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// TestPatchedBlocksOverSSH: three scattered 64 KiB writes into an image cost about their own size
// in an ssh:// repository (patch blobs), not three whole 1 MiB blocks; the incremental restores
// byte-identical, also after the snapshot that stored the blocks whole was forgotten and pruned,
// and check --read-data rebuilds every patch.
func TestPatchedBlocksOverSSH(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	home, img := filepath.Join(dir, "state"), filepath.Join(dir, "disk.img")
	repoDir := filepath.Join(dir, "repo")
	os.MkdirAll(repoDir, 0o755)
	spec := s.Spec("ssh", repoDir)
	ssh := s.Flags()
	sparseImage(t, img, 64<<20, 0, 5, 30, 40)
	mustSF(t, home, 0, append([]string{"init", spec}, ssh...)...)
	backupStats(t, home, img, spec, ssh...)

	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range []int64{5<<20 + 3<<16, 30<<20 + 0, 40<<20 + 15<<16} {
		if _, err := f.WriteAt(memblobs.RandBytes(uint64(i+70), 64<<10), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	st := backupStats(t, home, img, spec, ssh...)
	// The random pieces do not compress: stored bytes are about 3 x 64 KiB, plus the block map
	// chunk and the pack header; three whole blocks would be over 1.5 MiB.
	if st.BlocksPatched != 3 || st.BlocksCached != 1 || st.BytesStored > 3*64<<10*12/10+16<<10 {
		t.Fatalf("incremental after three 64 KiB writes: %+v", st)
	}
	human := mustSF(t, home, 0, append([]string{"backup", img, "--to", spec}, ssh...)...)
	if !strings.Contains(human.stdout, "blocks: 4 unchanged") {
		t.Fatalf("third backup summary:\n%s", human.stdout)
	}
	restoreSame := func(what string) {
		out := filepath.Join(dir, "out-"+what)
		mustSF(t, home, 0, append([]string{"restore", "latest", "--source", img, "--from", spec, "--target", out}, ssh...)...)
		if disktest.FileSum(t, filepath.Join(out, "disk.img")) != disktest.FileSum(t, img) {
			t.Fatalf("%s: restored image differs from the source", what)
		}
	}
	restoreSame("incremental")
	mustSF(t, home, 0, append([]string{"forget", "--repo", spec, "--keep-last", "1", "--prune"}, ssh...)...)
	restoreSame("after prune")
	mustSF(t, home, 0, append([]string{"check", "--repo", spec, "--read-data"}, ssh...)...)
}

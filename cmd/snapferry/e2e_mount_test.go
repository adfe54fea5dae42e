package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needFUSE skips without /dev/fuse and fusermount3 locally; CI has both (fuse3).
func needFUSE(t *testing.T) {
	t.Helper()
	_, err := os.Stat("/dev/fuse")
	if err == nil {
		_, err = exec.LookPath("fusermount3")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("FUSE is missing (CI installs fuse3): %v", err)
		}
		t.Skipf("no FUSE: %v", err)
	}
}

// startMount runs `snapferry mount` and waits (bounded) until the kernel serves DIR/snapshots.
func startMount(t *testing.T, home, repo, dir string, flags ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"mount", repo, dir}, flags...)...)
	cmd.Env = append(os.Environ(), "SNAPFERRY_HOME="+home)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
		}
		exec.Command("fusermount3", "-u", "-z", dir).Run()
	})
	deadline := time.Now().Add(2 * time.Minute) // a hang detector; a loaded CI takes long to start it
	for {
		if ents, err := os.ReadDir(filepath.Join(dir, "snapshots")); err == nil && len(ents) > 0 {
			return cmd
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			t.Fatalf("mount did not come up:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a mount point: no event to wait on
	}
}

func isMounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return strings.Contains(string(b), " "+dir+" ")
}

// TestMountSnapshots mounts a repository holding a disk-image backup and a folder backup through
// the real kernel FUSE: the image reads back byte for byte at its full size, its ext4 partition
// is a folder, the folder backup is a tree, Ctrl-C unmounts, and a repository that lost its data
// gives EIO rather than a hang.
func TestMountSnapshots(t *testing.T) {
	needFUSE(t)
	dir := t.TempDir()
	img, src := guestDiskImage(t, dir)
	home := filepath.Join(dir, "state")
	repoDir := filepath.Join(dir, "repo")
	mustSF(t, home, 0, "init", repoDir)
	mustSF(t, home, 0, "backup", img, "--to", repoDir)
	mustSF(t, home, 0, "backup", src, "--to", repoDir)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	cmd := startMount(t, home, repoDir, mnt)

	snaps, _ := os.ReadDir(filepath.Join(mnt, "snapshots"))
	if len(snaps) != 2 {
		t.Fatalf("%d snapshot folders, want 2", len(snaps))
	}
	var imgSnap, treeSnap string
	for _, s := range snaps {
		p := filepath.Join(mnt, "snapshots", s.Name())
		if _, err := os.Stat(filepath.Join(p, "disk.img")); err == nil {
			imgSnap = p
		} else {
			treeSnap = p
		}
	}
	// The disk as a file of its full size, identical to the image.
	want, _ := os.ReadFile(img)
	got, err := os.ReadFile(filepath.Join(imgSnap, "disk.img"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("mounted disk.img differs from the image (%d vs %d bytes, %v)", len(got), len(want), err)
	}
	// Its partitions beside it; files inside ext4.
	for _, p := range []string{"home/jürgen/Übersicht (1).txt", "var/big.bin", "etc/nginx/sites [prod]/a.conf"} {
		w, _ := os.ReadFile(filepath.Join(src, p))
		g, err := os.ReadFile(filepath.Join(imgSnap, "disk.img.parts", "p2", p))
		if err != nil || !bytes.Equal(g, w) {
			t.Fatalf("%s inside the mounted partition differs (%v)", p, err)
		}
	}
	if tgt, err := os.Readlink(filepath.Join(imgSnap, "disk.img.parts", "p2", "home", "link")); err != nil || tgt != "../etc/hostname" {
		t.Fatalf("symlink inside the partition: %q %v", tgt, err)
	}
	if err := os.WriteFile(filepath.Join(imgSnap, "disk.img.parts", "p2", "etc", "hostname"), []byte("x"), 0o644); err == nil {
		t.Fatal("a write to the mount succeeded")
	}
	// The folder backup as a tree.
	w, _ := os.ReadFile(filepath.Join(src, "var/big.bin"))
	g, err := os.ReadFile(filepath.Join(treeSnap, strings.TrimPrefix(src, "/"), "var/big.bin"))
	if err != nil || !bytes.Equal(g, w) {
		t.Fatalf("tree file differs (%v)", err)
	}
	// Ctrl-C unmounts and exits 0.
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("mount exited with %v after Ctrl-C", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("mount did not end after Ctrl-C")
	}
	if isMounted(mnt) {
		t.Fatal("still mounted after Ctrl-C")
	}

	// A repository whose packs are gone (a lost store): reads give EIO, promptly.
	startMount(t, home, repoDir, mnt)
	disk := filepath.Join(mnt, "snapshots", filepath.Base(imgSnap), "disk.img")
	if _, err := os.Stat(disk); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(repoDir, "data"))
	if len(ents) == 0 {
		t.Fatalf("no packs in %s/data: the test removes the wrong folder", repoDir)
	}
	os.RemoveAll(filepath.Join(repoDir, "data"))
	_, readErr := os.ReadFile(disk)
	if !errors.Is(readErr, syscall.EIO) {
		t.Fatalf("read after the packs vanished: %v, want EIO", readErr)
	}
}

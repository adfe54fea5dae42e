package guestfs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool skips when a tool is missing locally and fails under CI, where .ci/run installs it.
func needTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing (CI installs it): %v", n, err)
			}
			t.Skipf("%s not installed", n)
		}
	}
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test needs root (loop mounts); CI runs as root")
		}
		t.Skip("needs root for loop mounts")
	}
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// testTree is what the test images hold. fat drops what FAT cannot hold (symlinks, hard links,
// modes).
type testTree struct {
	files    map[string][]byte // path -> contents
	symlinks map[string]string
	links    [][2]string // hard links: second names the same file as first
	mtime    time.Time
}

// makeTree writes a tree with awkward names, deep folders, a sparse file and a few thousand
// small files into a new folder.
func makeTree(t testing.TB, withLinks bool, many int) (string, testTree) {
	return makeTreeFor(t, withLinks, many, false)
}

func makeTreeFor(t testing.TB, withLinks bool, many int, fat bool) (string, testTree) {
	t.Helper()
	dir := t.TempDir()
	tr := testTree{files: map[string][]byte{}, symlinks: map[string]string{}, mtime: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)}
	add := func(p string, data []byte) {
		tr.files[p] = data
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	add("etc/hostname", []byte("web01\n"))
	if fat {
		add("etc/nginx/sites (prod)/my site.conf", []byte("server { listen 80; }\n"))
	} else {
		add("etc/nginx/sites [prod]/my site.conf", []byte("server { listen 80; }\n"))
	}
	add("home/jürgen/Übersicht (2026).txt", bytes.Repeat([]byte("Grüße "), 1000))
	deep := "a/b/c/d/e/f/g/h/i/j/k/l"
	add(deep+"/deep.txt", []byte("deep\n"))
	big := make([]byte, 3<<20+12345)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	add("data/big.bin", big)
	for i := range many {
		add(fmt.Sprintf("many/d%02d/f%04d.txt", i%20, i), []byte(fmt.Sprintf("file %d\n", i)))
	}
	// A sparse file: 8 MiB with data only at 1 MiB and at the end.
	sp := filepath.Join(dir, "data/sparse.img")
	f, err := os.Create(sp)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("in the middle"), 1<<20)
	f.WriteAt([]byte("at the end"), 8<<20-10)
	f.Close()
	os.Chmod(sp, 0o640)
	spData, _ := os.ReadFile(sp)
	tr.files["data/sparse.img"] = spData
	if withLinks {
		tr.symlinks["etc/localtime"] = "/usr/share/zoneinfo/Europe/Berlin"
		tr.symlinks["home/jürgen/link to deep"] = "../../" + deep
		for l, target := range tr.symlinks {
			if err := os.Symlink(target, filepath.Join(dir, l)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Link(filepath.Join(dir, "etc/hostname"), filepath.Join(dir, "etc/hostname.hardlink")); err != nil {
			t.Fatal(err)
		}
		tr.files["etc/hostname.hardlink"] = tr.files["etc/hostname"]
		tr.links = append(tr.links, [2]string{"etc/hostname", "etc/hostname.hardlink"})
	}
	for p := range tr.files {
		os.Chtimes(filepath.Join(dir, p), tr.mtime, tr.mtime)
	}
	return dir, tr
}

// mkfsImage makes a file-system image of size bytes holding src, with the real tools: mke2fs -d
// for ext*, mkfs.vfat plus mtools for FAT (these kernels have no vfat driver), and for the rest
// mkfs plus a loop (or ntfs-3g) mount.
func mkfsImage(t testing.TB, kind, src string, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), kind+".img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "ext2", "ext3", "ext4":
		needTool(t, "mke2fs")
		run(t, "mke2fs", "-q", "-F", "-t", kind, "-L", "guest-"+kind, "-d", src, img)
	case "ext4-inline": // small files and folders inside their inodes (i_block + system.data)
		needTool(t, "mke2fs")
		run(t, "mke2fs", "-q", "-F", "-t", "ext4", "-O", "inline_data", "-I", "256", "-L", "guest-inline", "-d", src, img)
	case "vfat16", "vfat32", "vfat12":
		needTool(t, "mkfs.vfat", "mmd", "mcopy")
		run(t, "mkfs.vfat", "-F", strings.TrimPrefix(kind, "vfat"), "-n", "GUESTFAT", img)
		mtoolsCopy(t, img, src)
	case "xfs", "exfat", "ntfs":
		needRoot(t)
		mnt := t.TempDir()
		detach := func() {} // the exFAT case attaches its own loop device
		switch kind {
		case "xfs":
			needTool(t, "mkfs.xfs")
			run(t, "mkfs.xfs", "-q", "-L", "guestxfs", img)
			run(t, "mount", "-o", "loop", img, mnt)
		case "exfat":
			// No kernel exFAT driver here: exfat-fuse, which wants a block device.
			needTool(t, "mkfs.exfat", "mount.exfat-fuse", "losetup")
			run(t, "mkfs.exfat", "-L", "GUESTEXFAT", img)
			out, err := exec.Command("losetup", "-f", "--show", img).Output()
			if err != nil {
				t.Fatalf("losetup: %v", err)
			}
			loop := strings.TrimSpace(string(out))
			detach = func() { exec.Command("losetup", "-d", loop).Run() }
			defer detach()
			run(t, "mount.exfat-fuse", loop, mnt)
		case "ntfs":
			needTool(t, "mkntfs", "ntfs-3g")
			run(t, "mkntfs", "-q", "-F", "-f", "-L", "guestntfs", img)
			run(t, "ntfs-3g", img, mnt)
		}
		umount := func() { exec.Command("umount", mnt).Run() }
		defer umount()
		cp := []string{"-a"}
		if kind == "exfat" {
			cp = []string{"-r", "--preserve=timestamps"}
		}
		run(t, "cp", append(cp, src+"/.", mnt)...)
		run(t, "umount", mnt)
		detach()
		settleImage(t, img)
	default:
		t.Fatalf("unknown kind %s", kind)
	}
	return img
}

// mkDisk writes a partition table with sfdisk (label "gpt" or "dos") and copies each
// file-system image into its partition; sizes are in MiB. It returns the disk's path.
func mkDisk(t testing.TB, label string, script string, parts map[int]string) string {
	t.Helper()
	needTool(t, "sfdisk")
	disk := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(disk, 512<<20); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sfdisk", "-q", disk)
	cmd.Stdin = strings.NewReader("label: " + label + "\n" + script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	out, err := exec.Command("sfdisk", "-J", disk).Output()
	if err != nil {
		t.Fatal(err)
	}
	starts := parseSfdiskStarts(t, out)
	for n, img := range parts {
		copyInto(t, disk, img, starts[n]*512)
	}
	return disk
}

// copyInto copies src into dst at off, leaving holes where src has zeros.
func copyInto(t testing.TB, dst, src string, off int64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for pos := int64(0); ; pos += int64(len(buf)) {
		n, err := io.ReadFull(in, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := out.WriteAt(buf[:n], off+pos); werr != nil {
				t.Fatal(werr)
			}
		}
		if err != nil {
			break
		}
	}
}

// mtoolsCopy copies the tree src into the FAT image img folder by folder (mmd, mcopy -m):
// `mcopy -s` skips folders with non-ASCII names. mtools reads [ ] in a target as a pattern, so
// FAT trees hold no such names (makeTree's fat flag).
func mtoolsCopy(t testing.TB, img, src string) {
	t.Helper()
	mt := func(name string, args ...string) {
		cmd := exec.Command(name, append([]string{"-i", img}, args...)...)
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MTOOLS_SKIP_CHECK=1") // names go through the locale
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	var walk func(rel string)
	walk = func(rel string) {
		ents, err := os.ReadDir(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, e := range ents {
			p := filepath.Join(rel, e.Name())
			if e.IsDir() {
				mt("mmd", "::/"+p)
				walk(p)
			} else if e.Type().IsRegular() {
				files = append(files, filepath.Join(src, p))
			}
		}
		if len(files) > 0 {
			mt("mcopy", append(append([]string{"-m"}, files...), "::/"+rel+"/")...)
		}
	}
	walk("")
}

// settleImage waits until nothing writes img any more after its file system was unmounted: no
// loop device is attached to it (mount -o loop detaches on umount, but the kernel may finish
// that after umount returns) and no process (ntfs-3g, exfat-fuse: FUSE daemons still flushing
// after umount returned) holds it open. Reading it earlier may see a file system in the middle
// of being written.
func settleImage(t testing.TB, img string) {
	t.Helper()
	abs, err := filepath.Abs(img)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := exec.Command("losetup", "-j", abs).Output()
		holder := imageHolder(abs)
		if len(bytes.TrimSpace(out)) == 0 && holder == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still in use 60 s after umount: loop %q, process %s", img, bytes.TrimSpace(out), holder)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f, err := os.Open(abs)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// imageHolder returns "pid (command)" of a process that has path open, or "".
func imageHolder(path string) string {
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && target == path {
			pid := strings.Split(fd, "/")[2]
			comm, _ := os.ReadFile("/proc/" + pid + "/comm")
			return pid + " (" + strings.TrimSpace(string(comm)) + ")"
		}
	}
	return ""
}

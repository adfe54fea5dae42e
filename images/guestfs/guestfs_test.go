package guestfs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGPTWithExt4AndFAT32(t *testing.T) {
	src, tr := makeTree(t, true, 3000)
	ext := mkfsImage(t, "ext4", src, 96<<20)
	fsrc, ftr := makeTreeFor(t, false, 50, true)
	fat := mkfsImage(t, "vfat32", fsrc, 64<<20)
	disk := mkDisk(t, "gpt", "size=64M, type=uefi, name=\"EFI System\"\nsize=100M, type=linux, name=root\nsize=20M, type=swap\n",
		map[int]string{1: fat, 2: ext})
	d := openDisk(t, disk)
	if d.Scheme != "gpt" || len(d.Volumes) != 3 {
		t.Fatalf("scheme %s, %d volumes", d.Scheme, len(d.Volumes))
	}
	p1, p2, p3 := d.Volumes[0], d.Volumes[1], d.Volumes[2]
	if p1.Name != "p1" || p1.FSType != "vfat" || p1.Label != "GUESTFAT" || p1.Type != "EFI System" || p1.Size != 64<<20 {
		t.Errorf("p1 = %+v", p1)
	}
	if p2.Name != "p2" || p2.FSType != "ext4" || p2.Label != "guest-ext4" || p2.PartLabel != "root" || p2.Type != "Linux filesystem" {
		t.Errorf("p2 = %+v", p2)
	}
	if p3.Type != "Linux swap" || p3.FSType != "" {
		t.Errorf("p3 = %+v", p3)
	}
	checkTree(t, openFS(t, p2), tr, caps{symlinks: true, hardlinks: true, modes: true}, false)
	checkTree(t, openFS(t, p1), ftr, caps{}, true)
	if _, err := p3.OpenFS(); err == nil || !strings.Contains(err.Error(), "restore the whole disk") {
		t.Errorf("swap partition: %v", err)
	}
}

func TestMBRWithLogicalPartitions(t *testing.T) {
	src, tr := makeTree(t, true, 100)
	ext3 := mkfsImage(t, "ext3", src, 24<<20)
	ext2 := mkfsImage(t, "ext2", src, 24<<20)
	fsrc, ftr := makeTreeFor(t, false, 10, true)
	fat16 := mkfsImage(t, "vfat16", fsrc, 30<<20)
	// FAT12 holds at most ~4084 clusters: the tree without its big files.
	src12, tr12 := makeTreeFor(t, false, 10, true)
	for _, p := range []string{"data/big.bin", "data/sparse.img"} {
		os.Remove(filepath.Join(src12, p))
		delete(tr12.files, p)
	}
	fat12 := mkfsImage(t, "vfat12", src12, 8<<20)
	// p1 primary FAT16, p2 extended holding p5 (ext3), p6 (FAT12), p7 (ext2).
	disk := mkDisk(t, "dos", "size=32M, type=6\ntype=5\nsize=26M, type=83\nsize=10M, type=1\nsize=26M, type=83\n",
		map[int]string{1: fat16, 5: ext3, 6: fat12, 7: ext2})
	d := openDisk(t, disk)
	var got []string
	for _, v := range d.Volumes {
		got = append(got, v.Name+":"+v.Type+":"+v.FSType)
	}
	want := "p1:0x06:vfat p5:0x83:ext3 p6:0x01:vfat p7:0x83:ext2"
	if strings.Join(got, " ") != want {
		t.Fatalf("volumes %v, want %s", got, want)
	}
	checkTree(t, openFS(t, vol(t, d, "p5")), tr, caps{symlinks: true, hardlinks: true, modes: true}, false)
	checkTree(t, openFS(t, vol(t, d, "p7")), tr, caps{symlinks: true, hardlinks: true, modes: true}, false)
	checkTree(t, openFS(t, vol(t, d, "p1")), ftr, caps{}, true)
	checkTree(t, openFS(t, vol(t, d, "p6")), tr12, caps{}, true)
}

func TestBareFileSystemIsP0(t *testing.T) {
	src, tr := makeTree(t, true, 10)
	d := openDisk(t, mkfsImage(t, "ext4", src, 32<<20))
	if d.Scheme != "none" || len(d.Volumes) != 1 || d.Volumes[0].Name != "p0" || d.Volumes[0].FSType != "ext4" {
		t.Fatalf("bare ext4: %+v %+v", d, d.Volumes[0])
	}
	f := openFS(t, d.Volumes[0])
	checkTree(t, f, tr, caps{symlinks: true, hardlinks: true, modes: true}, false)
	if _, err := f.Open("etc/localtime"); err == nil {
		t.Error("Open of a symlink succeeded; it must not follow links")
	}
	if _, err := f.Lstat("etc/localtime/x"); err == nil {
		t.Error("a path through a symlink resolved")
	}
}

func TestNTFS(t *testing.T) {
	src, tr := makeTree(t, false, 500)
	img := mkfsImage(t, "ntfs", src, 64<<20)
	disk := mkDisk(t, "dos", "size=70M, type=7\n", map[int]string{1: img})
	d := openDisk(t, disk)
	p1 := vol(t, d, "p1")
	if p1.FSType != "ntfs" || p1.Type != "0x07" {
		t.Fatalf("p1 = %+v", p1)
	}
	checkTree(t, openFS(t, p1), tr, caps{}, false)
}

func TestXFS(t *testing.T) {
	src, tr := makeTree(t, true, 3000)
	// One folder of 2500 names (a leaf/node directory, several data blocks) and a file of 60
	// separate pieces (more extents than the inode holds: a B+tree data fork).
	for i := range 2500 {
		p := fmt.Sprintf("big dir/entry with a long name number %05d.txt", i)
		tr.files[p] = []byte(p)
		if i == 0 {
			os.MkdirAll(filepath.Join(src, "big dir"), 0o755)
		}
		os.WriteFile(filepath.Join(src, p), []byte(p), 0o640)
		os.Chtimes(filepath.Join(src, p), tr.mtime, tr.mtime)
	}
	frag := make([]byte, 120*8192)
	for i := 0; i < 120; i += 2 {
		copy(frag[i*8192:], bytes.Repeat([]byte{byte(i + 1)}, 4096))
	}
	fp := filepath.Join(src, "data/fragmented.bin")
	f, _ := os.Create(fp)
	for i := 0; i < 120; i += 2 {
		f.WriteAt(frag[i*8192:i*8192+4096], int64(i*8192))
	}
	f.Truncate(int64(len(frag)))
	f.Chmod(0o640)
	f.Close()
	os.Chtimes(fp, tr.mtime, tr.mtime)
	tr.files["data/fragmented.bin"] = frag
	img := mkfsImage(t, "xfs", src, 300<<20)
	disk := mkDisk(t, "gpt", "size=310M, type=linux\n", map[int]string{1: img})
	d := openDisk(t, disk)
	p1 := vol(t, d, "p1")
	if p1.FSType != "xfs" || p1.Label != "guestxfs" {
		t.Fatalf("p1 = %+v", p1)
	}
	checkTree(t, openFS(t, p1), tr, caps{symlinks: true, hardlinks: true, modes: true}, false)
	if t.Failed() {
		// Which side is wrong: the kernel's view of the same image, read-only.
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-o", "ro,norecovery,loop", img, mnt).CombinedOutput(); err != nil {
			t.Logf("mount the image again to compare: %v %s", err, out)
			return
		}
		defer exec.Command("umount", mnt).Run()
		n := 0
		filepath.WalkDir(mnt, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				n++
			}
			return nil
		})
		t.Logf("the kernel sees %d regular files in the image; the test wrote %d", n, len(tr.files))
	}
}

func TestExFAT(t *testing.T) {
	src, tr := makeTree(t, false, 300)
	img := mkfsImage(t, "exfat", src, 64<<20)
	disk := mkDisk(t, "dos", "size=70M, type=7\n", map[int]string{1: img})
	d := openDisk(t, disk)
	p1 := vol(t, d, "p1")
	if p1.FSType != "exfat" {
		t.Fatalf("p1 = %+v", p1)
	}
	checkTree(t, openFS(t, p1), tr, caps{}, true)
}

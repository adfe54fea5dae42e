package guestfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExt4InlineData reads a file system made with mke2fs -O inline_data: files of a few bytes
// sit in i_block, a 120-byte one spills into the system.data attribute, small folders are
// inline too. The reader refused all of them before.
func TestExt4InlineData(t *testing.T) {
	src, tr := makeTree(t, true, 40)
	mid := bytes.Repeat([]byte("0123456789abcdef"), 8)[:120]
	if err := os.WriteFile(filepath.Join(src, "etc/motd"), mid, 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(src, "etc/motd"), tr.mtime, tr.mtime)
	tr.files["etc/motd"] = mid
	img := mkfsImage(t, "ext4-inline", src, 32<<20)
	// The image must really hold inline inodes, or this test proves nothing.
	for _, p := range []string{"etc/motd", "etc/hostname", "many/d01"} {
		out, err := exec.Command("debugfs", "-R", "stat "+p, img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Size of inline data") {
			t.Fatalf("%s is not inline in the test image (debugfs: %v):\n%s", p, err, out)
		}
	}
	d := openDisk(t, img)
	checkTree(t, openFS(t, d.Volumes[0]), tr, caps{symlinks: true, hardlinks: true, modes: true}, false)
}

// The inline parsers take their offsets from the guest disk: a hostile inode never reads
// outside itself.
func TestInlineDataRejectsBadAttributes(t *testing.T) {
	raw := make([]byte, 256)
	raw[128] = 32 // i_extra_isize
	copy(raw[160:], []byte{0x00, 0x00, 0x02, 0xEA})
	entry := raw[164:]
	entry[0], entry[1] = 4, extXattrIndexSys
	entry[2], entry[3] = 0xF0, 0x00 // value offset 240: past the inode
	entry[8] = 40                   // value size
	copy(entry[16:], "data")
	if _, err := inlineData(12, raw, 100); err == nil {
		t.Fatal("a system.data value outside the inode was read")
	}
	entry[2] = 40
	if got, err := inlineData(12, raw, 100); err != nil || len(got) != 100 {
		t.Fatalf("a good attribute: %d bytes, %v", len(got), err)
	}
	if _, err := inlineData(12, raw, 101); err == nil {
		t.Fatal("a size past the inline data was accepted")
	}
}

package guestfs

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"
)

type caps struct {
	symlinks, hardlinks, modes bool
}

// checkTree walks f and compares it with tr: every file's bytes (read at random offsets too),
// symlink targets, hard links, modes and times where the file system keeps them.
func checkTree(t *testing.T, f FS, tr testTree, c caps, foldCase bool) {
	t.Helper()
	seen := map[string]Entry{}
	var walk func(dir string)
	walk = func(dir string) {
		es, err := f.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir %q: %v", dir, err)
		}
		for _, e := range es {
			p := path.Join(dir, e.Name)
			if dir == "." {
				p = e.Name
			}
			if strings.HasPrefix(p, "System Volume Information") || p == "$RECYCLE.BIN" || p == "lost+found" {
				continue
			}
			seen[p] = e
			if e.Mode.IsDir() {
				walk(p)
			}
		}
	}
	walk(".")
	key := func(p string) string {
		if foldCase {
			return strings.ToLower(p)
		}
		return p
	}
	byKey := map[string]Entry{}
	names := map[string]string{}
	for p, e := range seen {
		byKey[key(p)] = e
		names[key(p)] = p
	}
	for p, want := range tr.files {
		e, ok := byKey[key(p)]
		if !ok {
			t.Errorf("%s missing", p)
			continue
		}
		if !e.Mode.IsRegular() || e.Size != int64(len(want)) {
			t.Errorf("%s: mode %v size %d, want regular of %d", p, e.Mode, e.Size, len(want))
			continue
		}
		if c.modes && e.Mode.Perm() != 0o640 {
			t.Errorf("%s: mode %v, want 0640", p, e.Mode)
		}
		if d := e.ModTime.Sub(tr.mtime); d < -2e9 || d > 2e9 {
			t.Errorf("%s: mtime %v, want %v", p, e.ModTime, tr.mtime)
		}
		fl, err := f.Open(names[key(p)])
		if err != nil {
			t.Errorf("open %s: %v", p, err)
			continue
		}
		got, err := io.ReadAll(io.NewSectionReader(fl, 0, fl.Size()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read %d bytes (%v), contents differ: %v", p, len(got), err, !bytes.Equal(got, want))
		}
		if len(want) > 5000 {
			part := make([]byte, 3000)
			off := int64(len(want) / 3)
			if n, err := fl.ReadAt(part, off); n != len(part) || err != nil && err != io.EOF || !bytes.Equal(part, want[off:off+3000]) {
				t.Errorf("%s: ReadAt at %d: %d, %v", p, off, n, err)
			}
		}
		fl.Close()
	}
	if c.symlinks {
		for p, target := range tr.symlinks {
			e, err := f.Lstat(p)
			if err != nil {
				t.Errorf("lstat %s: %v", p, err)
				continue
			}
			if e.Mode&fs.ModeSymlink == 0 || e.Target != target {
				t.Errorf("%s: mode %v target %q, want symlink to %q", p, e.Mode, e.Target, target)
			}
		}
	}
	if c.hardlinks {
		for _, l := range tr.links {
			a, b := byKey[key(l[0])], byKey[key(l[1])]
			if a.Inode == 0 || a.Inode != b.Inode || a.Nlink != 2 {
				t.Errorf("hard link %s/%s: inodes %d %d, nlink %d", l[0], l[1], a.Inode, b.Inode, a.Nlink)
			}
		}
	}
	if _, err := f.Lstat("no/such/file"); err == nil || !os.IsNotExist(err) && !strings.Contains(err.Error(), "not exist") {
		t.Errorf("lstat of a missing path: %v, want not-exist", err)
	}
}

func openDisk(t *testing.T, p string) *Disk {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	d, err := Open(f, fi.Size())
	if err != nil {
		t.Fatalf("Open %s: %v", p, err)
	}
	return d
}

func vol(t *testing.T, d *Disk, elems ...string) *Volume {
	t.Helper()
	v, n, err := d.Find(elems)
	if err != nil || n != len(elems) {
		t.Fatalf("Find %v: %v (used %d)", elems, err, n)
	}
	return v
}

func openFS(t *testing.T, v *Volume) FS {
	t.Helper()
	f, err := v.OpenFS()
	if err != nil {
		t.Fatalf("OpenFS %s: %v", v.Name, err)
	}
	return f
}

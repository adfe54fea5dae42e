package tree

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// smallChunks keeps test files small while still spanning many chunks.
var smallChunks = Chunking{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is masked by umask
		t.Fatal(err)
	}
}

// setTimes gives path distinct, sub-second atime and mtime so restores are checked to the ns.
func setTimes(t testing.TB, path string, seed int64) {
	t.Helper()
	mtime := time.Date(2021, 3, 4, 5, 6, 7, int(seed)*1000+123, time.UTC)
	atime := mtime.Add(time.Hour + time.Duration(seed))
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
}

func lstat(t testing.TB, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// compareTrees checks that every entry below src exists below dst with the same type, mode,
// size, mtime, symlink target, device number, ownership (when root) and contents, atimes of
// files and that entries hard-linked in src are hard-linked in dst.
func compareTrees(t *testing.T, src, dst string) {
	t.Helper()
	root := os.Geteuid() == 0
	srcInodes := map[uint64]string{}
	// Metadata first: reading contents afterwards must not disturb the atimes compared.
	var files []string
	err := filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		a, b := lstat(t, p), lstat(t, q)
		if a.Mode != b.Mode {
			t.Errorf("%s: mode %o, want %o", rel, b.Mode, a.Mode)
		}
		if root && (a.Uid != b.Uid || a.Gid != b.Gid) {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, b.Uid, b.Gid, a.Uid, a.Gid)
		}
		if a.Mtim != b.Mtim && rel != "." {
			t.Errorf("%s: mtime %v, want %v", rel, b.Mtim, a.Mtim)
		}
		switch a.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if a.Size != b.Size {
				t.Errorf("%s: size %d, want %d", rel, b.Size, a.Size)
			}
			if a.Atim != b.Atim {
				t.Errorf("%s: atime %v, want %v", rel, b.Atim, a.Atim)
			}
			files = append(files, rel)
			if a.Nlink > 1 {
				if first, ok := srcInodes[a.Ino]; ok {
					if f := lstat(t, filepath.Join(dst, first)); f.Ino != b.Ino {
						t.Errorf("%s: not a hard link of %s in the restore", rel, first)
					}
				} else {
					srcInodes[a.Ino] = rel
				}
			}
		case unix.S_IFLNK:
			la, _ := os.Readlink(p)
			lb, _ := os.Readlink(q)
			if la != lb {
				t.Errorf("%s: link target %q, want %q", rel, lb, la)
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			if a.Rdev != b.Rdev {
				t.Errorf("%s: rdev %x, want %x", rel, b.Rdev, a.Rdev)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range files {
		a, err1 := os.ReadFile(filepath.Join(src, rel))
		b, err2 := os.ReadFile(filepath.Join(dst, rel))
		if err1 != nil || err2 != nil {
			t.Fatalf("read %s: %v %v", rel, err1, err2)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: contents differ", rel)
		}
	}
}

package jail

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestResolve(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	j, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(root, "vm1"), 0o700)
	os.Symlink(outside, filepath.Join(root, "out"))
	os.Symlink("vm1", filepath.Join(root, "in"))
	good := map[string]string{
		"vm1/disk-flat.vmdk": filepath.Join(root, "vm1", "disk-flat.vmdk"),
		"new/deeper/file":    filepath.Join(root, "new", "deeper", "file"),
		"in/x.vmx":           filepath.Join(root, "in", "x.vmx"),
		"vm1/..x":            filepath.Join(root, "vm1", "..x"),
	}
	for rel, want := range good {
		if got, err := j.Resolve(rel); err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", rel, got, err, want)
		}
	}
	for _, rel := range []string{"", "/etc/passwd", "../x", "vm1/../../x", "vm1//x", "./x", "vm1/.", "a\x00b", "a\nb",
		"out/x", "out", "vm1/.snapferry-undo", "a\\b"} {
		if _, err := j.Resolve(rel); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Resolve(%q) = %v, want refused", rel, err)
		}
	}
	if err := j.Within("/etc/passwd"); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Within outside: %v", err)
	}
}

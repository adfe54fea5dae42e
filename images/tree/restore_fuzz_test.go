package tree

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/memblobs"
	"github.com/snapferry/snapferry/images/repo"
)

// FuzzRestoreStaysInTarget builds a snapshot from fuzzed entry names (one directory level of
// files, symlinks and a subdirectory holding a file) and restores it: whatever the names, the
// restore either refuses the tree or writes only below its target. `go test` runs the seeds.
func FuzzRestoreStaysInTarget(f *testing.F) {
	for _, s := range []string{"a|b|c", "..|x", "../../etc/passwd", "a/b|c", ".|a", "x|x", "|", "a\x00b", "sub|..", "link|link"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ctx := context.Background()
		bs := memblobs.New(1 << 20)
		now := time.Unix(1600000000, 0)
		payload := saveData(t, bs, []byte("payload"))
		inner := saveTree(t, bs, repo.Node{Name: "inner", Type: repo.NodeFile, Mode: 0o644, Size: 7, ModTime: now, Content: []repo.ID{payload}})
		var nodes []repo.Node
		for i, name := range strings.Split(spec, "|") {
			switch i % 3 {
			case 0:
				nodes = append(nodes, repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, Size: 7, ModTime: now, Content: []repo.ID{payload}})
			case 1:
				nodes = append(nodes, repo.Node{Name: name, Type: repo.NodeSymlink, LinkTarget: "../../outside", ModTime: now})
			case 2:
				nodes = append(nodes, repo.Node{Name: name, Type: repo.NodeDir, Mode: 0o755 | uint32(os.ModeDir), ModTime: now, Subtree: &inner})
			}
		}
		root := saveTree(t, bs, nodes...)
		sandbox := t.TempDir()
		target := filepath.Join(sandbox, "a", "target")
		_, err := Restore(ctx, bs, root, target, RestoreOptions{Workers: 2})
		if err != nil && !errors.Is(err, ErrUnsafeTree) {
			t.Fatalf("restore: %v", err)
		}
		// Nothing but the path to the target may exist in the sandbox.
		filepath.Walk(sandbox, func(p string, _ os.FileInfo, _ error) error {
			if p != sandbox && p != filepath.Join(sandbox, "a") && p != target && !strings.HasPrefix(p, target+"/") {
				t.Fatalf("restore of %q wrote %s outside its target", spec, p)
			}
			return nil
		})
	})
}

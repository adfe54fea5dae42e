package vmjob

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/snapferry/snapferry/appliance"
)

// TestOtherFolderOfAnotherVMIsKept: an old VM whose .vmx sits in a folder that another registered
// VM also uses does not get that folder removed after an --overwrite restore; its own separate
// folder does.
func TestOtherFolderOfAnotherVMIsKept(t *testing.T) {
	ds := t.TempDir()
	target, sharedDir, ownDir := filepath.Join(ds, "web"), filepath.Join(ds, "shared"), filepath.Join(ds, "old-web")
	r := &replaced{dir: target, shared: []string{sharedDir},
		vms: []*appliance.VMConfig{{Dir: sharedDir}, {Dir: ownDir}}}
	r.collectFiles()
	if slices.Contains(r.otherDirs, sharedDir) {
		t.Fatalf("the folder another VM uses is marked for removal: %v", r.otherDirs)
	}
	if !slices.Contains(r.otherDirs, ownDir) {
		t.Fatalf("the old VM's own other folder is not marked for removal: %v", r.otherDirs)
	}
}

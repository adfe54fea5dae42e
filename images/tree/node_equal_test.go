package tree

import (
	"reflect"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/repo"
)

// sameNode must compare every field of repo.Node: a field it missed would let a changed
// directory reuse its old tree. This fails when Node grows, as a reminder.
func TestSameNodeCoversEveryField(t *testing.T) {
	if n := reflect.TypeOf(repo.Node{}).NumField(); n != 17 {
		t.Fatalf("repo.Node has %d fields; update sameNode (and this count)", n)
	}
	id := repo.ID{1}
	base := repo.Node{Name: "f", Type: repo.NodeFile, Mode: 0o644, Size: 3, UID: 1, GID: 2,
		ModTime: time.Unix(10, 5), AccessTime: time.Unix(11, 0), ChangeTime: time.Unix(12, 0),
		Inode: 7, DeviceID: 8, Links: 1, Rdev: 0, LinkTarget: "", Content: []repo.ID{id}, Subtree: nil}
	if !sameNode(base, base) {
		t.Fatal("a node differs from itself")
	}
	// The same instant in another location (as decoded from JSON) is the same node.
	utc := base
	utc.ModTime = base.ModTime.UTC()
	if !sameNode(base, utc) {
		t.Fatal("time location made nodes differ")
	}
	changes := []func(*repo.Node){
		func(n *repo.Node) { n.Name = "g" }, func(n *repo.Node) { n.Type = repo.NodeDir },
		func(n *repo.Node) { n.Mode = 0o600 }, func(n *repo.Node) { n.Size = 4 },
		func(n *repo.Node) { n.UID = 9 }, func(n *repo.Node) { n.GID = 9 },
		func(n *repo.Node) { n.ModTime = time.Unix(99, 0) }, func(n *repo.Node) { n.AccessTime = time.Unix(99, 0) },
		func(n *repo.Node) { n.ChangeTime = time.Unix(99, 0) }, func(n *repo.Node) { n.Inode = 99 },
		func(n *repo.Node) { n.DeviceID = 99 }, func(n *repo.Node) { n.Links = 2 },
		func(n *repo.Node) { n.Rdev = 1 }, func(n *repo.Node) { n.LinkTarget = "x" },
		func(n *repo.Node) { n.Content = []repo.ID{{2}} }, func(n *repo.Node) { n.Subtree = &id },
		func(n *repo.Node) { n.Error = "unreadable" },
	}
	for i, change := range changes {
		m := base
		change(&m)
		if sameNode(base, m) {
			t.Errorf("change %d not noticed", i)
		}
	}
}

package tree

import (
	"slices"

	"github.com/snapferry/snapferry/images/repo"
)

// sameNodes reports whether two name-sorted node lists would encode to the same tree. Times
// compare as instants: a tree decoded from JSON carries no monotonic reading or location.
func sameNodes(a, b []repo.Node) bool {
	return slices.EqualFunc(a, b, sameNode)
}

func sameNode(x, y repo.Node) bool {
	return x.Name == y.Name && x.Type == y.Type && x.Mode == y.Mode && x.Size == y.Size &&
		x.UID == y.UID && x.GID == y.GID && x.ModTime.Equal(y.ModTime) &&
		x.AccessTime.Equal(y.AccessTime) && x.ChangeTime.Equal(y.ChangeTime) &&
		x.Inode == y.Inode && x.DeviceID == y.DeviceID && x.Links == y.Links && x.Rdev == y.Rdev &&
		x.LinkTarget == y.LinkTarget && x.Error == y.Error && slices.Equal(x.Content, y.Content) &&
		sameID(x.Subtree, y.Subtree)
}

func sameID(x, y *repo.ID) bool {
	if x == nil || y == nil {
		return x == y
	}
	return *x == *y
}

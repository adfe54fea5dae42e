package repo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// Tree ids, and so deduplication against older snapshots, depend on Marshal writing exactly the
// bytes json.Marshal wrote before it encoded node by node.
func TestTreeMarshalMatchesEncodingJSON(t *testing.T) {
	sub := ID{7, 8, 9}
	mtime := time.Date(2024, 2, 29, 12, 30, 1, 123456789, time.FixedZone("x", 3600))
	big := Tree{}
	for i := range 500 {
		big.Nodes = append(big.Nodes, Node{Name: fmt.Sprintf("f%04d <&> \u00e9\u2028", i), Type: NodeFile, Mode: 0o644,
			Size: uint64(i), ModTime: mtime, Content: []ID{{byte(i)}, {1, 2}}, Inode: uint64(i * 3)})
	}
	for name, tr := range map[string]Tree{
		"nil":   {},
		"empty": {Nodes: []Node{}},
		"mixed": {Nodes: []Node{
			{Name: "b", Type: NodeDir, Mode: 0o755 | 1<<31, ModTime: mtime, Subtree: &sub},
			{Name: "a", Type: NodeSymlink, LinkTarget: "../x\"y", ModTime: mtime, AccessTime: mtime},
			{Name: "c", Type: NodeFile, Error: "read: permission denied", UID: 1000, GID: 1000},
		}},
		"big": big,
	} {
		got, err := tr.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := json.Marshal(&tr) // tr is sorted by now
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Marshal =\n%s\nwant\n%s", name, got, want)
		}
	}
}

package serve

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/wire"
)

// FuzzServeStaysInRoot sends arbitrary file kinds and names with every store op (streamed saves
// too) to one server (append-only, so a remove that gets through is also a finding). Whatever
// the names, nothing may appear, change or disappear outside the served folder, and the session
// must survive.
func FuzzServeStaysInRoot(f *testing.F) {
	for _, seed := range [][2]string{
		{"data", "ab" + "0123456789"}, {"index", "../escape"}, {"locks", "../config"}, {"../x", "y"},
		{"snapshots", "/abs"}, {"keys", "a\x00b"}, {"config", ""}, {"locks", ".."}, {"data", "a/../../b"},
		{"locks/..", "config"}, {"index", "a\nb"}, {"data", "..\\x"},
	} {
		f.Add(seed[0], seed[1], byte(0))
		f.Add(seed[0], seed[1], byte(4))
	}
	parent := f.TempDir()
	outsideFile := filepath.Join(parent, "keep")
	if err := os.WriteFile(outsideFile, []byte("outside"), 0o600); err != nil {
		f.Fatal(err)
	}
	root := filepath.Join(parent, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		f.Fatal(err)
	}
	c := connect(f, Options{Root: root, AppendOnly: true})
	if _, err := c.call(wire.OpCreate, nil, nil); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind, name string, op byte) {
		h := store.Handle{Kind: store.Kind(kind), Name: name}
		switch op % 5 {
		case 0:
			c.save(h, []byte("fuzz"))
		case 1:
			c.load(h)
		case 2:
			c.call(wire.OpRemove, wire.EncodeHandle(h), nil)
		case 3:
			c.call(wire.OpStat, wire.EncodeHandle(h), nil)
		case 4: // streamed: the kind is judged at the upload, the name at the commit
			if tok, err := c.saveStream(h.Kind, []byte("fuzz")); err == nil {
				c.commitStream(tok, h)
			}
		}
		ents, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 2 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Fatalf("%q/%q op %d: the folder around the root now holds %q", kind, name, op%5, names)
		}
		if b, err := os.ReadFile(outsideFile); err != nil || string(b) != "outside" {
			t.Fatalf("%q/%q op %d: a file outside the root changed: %v", kind, name, op%5, err)
		}
		if _, err := c.call(wire.OpFreeSpace, nil, nil); err != nil {
			t.Fatalf("%q/%q op %d: session broken: %v", kind, name, op%5, err)
		}
	})
}

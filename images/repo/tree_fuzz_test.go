package repo

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzUnmarshalTree: UnmarshalTree (goccy/go-json) never panics on any input (trees come from
// the repository, which a store host could have crafted), and on every tree our encoder writes
// it decodes exactly what encoding/json decodes. On input our encoder never writes the two may
// differ; that only changes how a crafted tree is misread, which a crafted tree can arrange
// anyway.
func FuzzUnmarshalTree(f *testing.F) {
	id := ID{1, 2, 3}
	sample := Tree{Nodes: []Node{
		{Name: "a.txt", Type: NodeFile, Mode: 0o644, Size: 12, UID: 1000, GID: 1000,
			ModTime: time.Unix(1700000000, 123456789).UTC(), Inode: 42, Links: 2, Content: []ID{id, {9}}},
		{Name: "dir", Type: NodeDir, Mode: 0o755 | 1<<31, ModTime: time.Unix(1, 0).In(time.FixedZone("x", 3600)), Subtree: &id},
		{Name: "l", Type: NodeSymlink, LinkTarget: "../x", Error: "open: permission denied"},
	}}
	b, err := sample.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"nodes":[]}`))
	f.Add([]byte(`{"nodes":null}`))
	f.Add([]byte(`{"nodes":[{"name":"x","mtime":"2020-01-01T00:00:00Z","content":["00"]}]}`))
	f.Add([]byte(`{"nodes":[{"name":"\u00e9\ud800","size":-1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := UnmarshalTree(data)
		if err != nil {
			return
		}
		canonical, err := json.Marshal(got)
		if err != nil {
			return // e.g. a time outside what MarshalJSON can write: never stored by us
		}
		var want Tree
		if err := json.Unmarshal(canonical, &want); err != nil {
			t.Fatalf("encoding/json refuses its own output %q: %v", canonical, err)
		}
		again, err := UnmarshalTree(canonical)
		if err != nil || !reflect.DeepEqual(*again, want) {
			t.Fatalf("decoders disagree on encoded tree %q (%v):\n%+v\n%+v", canonical, err, again, want)
		}
	})
}

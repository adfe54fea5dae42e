package repo

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"

	gojson "github.com/goccy/go-json"
)

// A big folder's tree decodes node by node: what the decode allocates stays near the input copy
// plus the nodes, without goccy's doubling scratch array (twice the nodes, kept in its pool),
// and the result is what decoding the whole gives. Measured with the runtime's allocation
// count, not RSS.
func TestUnmarshalBigTreeAllocatesOnce(t *testing.T) {
	const n = 20000
	tr := Tree{Nodes: make([]Node, n)}
	id := ID{7}
	for i := range tr.Nodes {
		tr.Nodes[i] = Node{Name: fmt.Sprintf("file-%05d.1.gz", i), Type: NodeFile, Mode: 0o644, Size: uint64(i), UID: 0, GID: 0,
			ModTime: time.Unix(1700000000+int64(i), 5).UTC(), Inode: uint64(i), Links: 1, Content: []ID{id}}
	}
	b, err := tr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.GC() // empties the pools, so scratch kept from earlier decodes is not reused
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := UnmarshalTree(b)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	var want Tree
	if err := gojson.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatal("node-by-node decoding differs from decoding the whole tree")
	}
	// The input copy goccy makes, the nodes, their content ids, and as much again for goccy's
	// own per-call bookkeeping (14.7 MB in all here; the whole-array decode allocated 52.7 MB).
	bound := (len(b) + n*int(unsafe.Sizeof(Node{})) + n*len(id)) * 2
	if alloc := int(after.TotalAlloc - before.TotalAlloc); alloc > bound {
		t.Fatalf("decoding %d nodes (%d bytes) allocated %d bytes, want at most %d", n, len(b), alloc, bound)
	}
}

package tree

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/snapferry/snapferry/images/repo"
)

// The loads stay a bounded window ahead of the walker, follow it past skipped children, and
// each take gets its own child's tree.
func TestSubtreeLoadsWindow(t *testing.T) {
	ctx := context.Background()
	var parent repo.Tree
	for i := range 100 {
		id := repo.ID{byte(i)}
		parent.Nodes = append(parent.Nodes, repo.Node{Name: fmt.Sprintf("d%03d", i), Type: repo.NodeDir, Subtree: &id})
		parent.Nodes = append(parent.Nodes, repo.Node{Name: fmt.Sprintf("f%03d", i), Type: repo.NodeFile})
	}
	bs := &batchCounter{}
	decode := func(n *repo.Node, data []byte, err error) (*repo.Tree, error) {
		if err != nil || len(data) != 1 || data[0] != (*n.Subtree)[0] {
			return nil, fmt.Errorf("%s: loaded %v, %v", n.Name, data, err)
		}
		return &repo.Tree{Nodes: []repo.Node{{Name: n.Name}}}, nil
	}
	odd := func(n *repo.Node) bool { return n.Name[len(n.Name)-1]%2 == 1 } // d001, d003, ...
	s := prefetchSubtrees(ctx, make(chan struct{}, 2), bs, &parent, odd, decode)
	if s.next != prefetchAhead {
		t.Fatalf("%d loads started at once, want %d", s.next, prefetchAhead)
	}
	if s.take("d000") != nil {
		t.Fatal("a child want refused has a load")
	}
	for i := 1; i < 100; i += 6 { // every third wanted child; the walker passes the others
		name := fmt.Sprintf("d%03d", i)
		f := s.take(name)
		if f == nil {
			t.Fatalf("%s: no load", name)
		}
		tr, err := f.wait(ctx)
		if err != nil || tr.Nodes[0].Name != name {
			t.Fatalf("%s: got %v %v", name, tr, err)
		}
		if ahead := s.next - s.done; ahead > prefetchAhead {
			t.Fatalf("after %s: %d loads ahead of the walker", name, ahead)
		}
		if len(s.futs) > prefetchAhead {
			t.Fatalf("after %s: %d loads kept", name, len(s.futs))
		}
	}
	if s.take("zzz") != nil || len(s.futs) != 0 {
		t.Fatalf("past the last child: %d loads kept", len(s.futs))
	}
	// 50 wanted children, loaded in batches: never more than prefetchBatch ids per call, and
	// far fewer calls than trees.
	bs.mu.Lock()
	calls, largest := bs.calls, bs.largest
	bs.mu.Unlock()
	if largest > prefetchBatch || calls > 50/prefetchBatch+3 {
		t.Errorf("%d batch loads, the largest of %d trees; want at most %d of at most %d", calls, largest, 50/prefetchBatch+3, prefetchBatch)
	}
	var nilLoads *subtreeLoads
	if nilLoads.take("d001") != nil {
		t.Fatal("no parent tree, yet a load")
	}
}

// batchCounter is a BlobStore whose blobs are the first byte of their id, loaded in batches
// (repo.BatchLoader) that it counts.
type batchCounter struct {
	repo.BlobStore
	mu             sync.Mutex
	calls, largest int
}

func (b *batchCounter) LoadBlob(_ context.Context, _ repo.BlobType, id repo.ID, _ []byte) ([]byte, error) {
	return []byte{id[0]}, nil
}

func (b *batchCounter) LoadBlobs(ctx context.Context, t repo.BlobType, ids []repo.ID, fn func(int, []byte, error) error) error {
	b.mu.Lock()
	b.calls++
	b.largest = max(b.largest, len(ids))
	b.mu.Unlock()
	for i := len(ids) - 1; i >= 0; i-- { // any order: a repository goes pack by pack
		data, err := b.LoadBlob(ctx, t, ids[i], nil)
		if err := fn(i, data, err); err != nil {
			return err
		}
	}
	return nil
}

// A walker that jumps far ahead (it skipped many children) starts no loads for the children it
// passed: nobody would take them.
func TestSubtreeLoadsSkipFarAhead(t *testing.T) {
	ctx := context.Background()
	var parent repo.Tree
	for i := range 100 {
		id := repo.ID{byte(i)}
		parent.Nodes = append(parent.Nodes, repo.Node{Name: fmt.Sprintf("d%03d", i), Type: repo.NodeDir, Subtree: &id})
	}
	bs := &batchCounter{}
	decode := func(n *repo.Node, data []byte, err error) (*repo.Tree, error) {
		return &repo.Tree{Nodes: []repo.Node{{Name: n.Name}}}, err
	}
	s := prefetchSubtrees(ctx, make(chan struct{}, 2), bs, &parent, nil, decode)
	f := s.take("d090")
	if f == nil {
		t.Fatal("d090: no load")
	}
	if tr, err := f.wait(ctx); err != nil || tr.Nodes[0].Name != "d090" {
		t.Fatalf("d090: %v %v", tr, err)
	}
	if len(s.futs) > prefetchAhead {
		t.Errorf("%d loads kept after jumping ahead, want at most %d", len(s.futs), prefetchAhead)
	}
	if started := s.next - s.done; started > prefetchAhead {
		t.Errorf("%d loads ahead of the walker", started)
	}
}

package tree

import (
	"context"
	"fmt"
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
	load := func(_ context.Context, n *repo.Node) (*repo.Tree, error) {
		return &repo.Tree{Nodes: []repo.Node{{Name: n.Name}}}, nil
	}
	odd := func(n *repo.Node) bool { return n.Name[len(n.Name)-1]%2 == 1 } // d001, d003, ...
	s := prefetchSubtrees(ctx, make(chan struct{}, 2), &parent, odd, load)
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
	var nilLoads *subtreeLoads
	if nilLoads.take("d001") != nil {
		t.Fatal("no parent tree, yet a load")
	}
}

package repo

import (
	"context"
	"fmt"
)

// refVisitor receives what a snapshot references. blob is called for every referenced blob
// (tree blobs once per walk, data blobs every time they are named); fail is called when a tree
// blob cannot be loaded or decoded, and the walk skips what it would have named.
type refVisitor struct {
	blob func(t BlobType, id ID)
	fail func(what string, id ID, err error)
}

// walkSnapshot visits the block-map chunks and the tree of a snapshot. seenTrees spans calls so
// trees shared by snapshots are read once. Only a context error stops it.
func (r *Repository) walkSnapshot(ctx context.Context, sn *Snapshot, seenTrees map[ID]struct{}, v refVisitor) error {
	var buf []byte
	for _, d := range sn.Disks {
		for i, c := range d.Map {
			if err := ctx.Err(); err != nil {
				return err
			}
			v.blob(TreeBlob, c)
			if _, ok := seenTrees[c]; ok {
				continue
			}
			seenTrees[c] = struct{}{}
			var err error
			if buf, err = r.LoadBlob(ctx, TreeBlob, c, buf); err != nil {
				v.fail(fmt.Sprintf("disk %s map chunk %d", d.Name, i), c, err)
				continue
			}
			var chunk BlockMapChunk
			if err := chunk.UnmarshalBinary(buf); err != nil {
				v.fail(fmt.Sprintf("disk %s map chunk %d", d.Name, i), c, fmt.Errorf("%v: %w", err, ErrCorrupt))
				continue
			}
			for _, id := range chunk.IDs {
				if !id.IsZero() {
					v.blob(DataBlob, id)
				}
			}
		}
	}
	if sn.Tree != nil {
		return r.walkTree(ctx, "/", *sn.Tree, seenTrees, v)
	}
	return nil
}

func (r *Repository) walkTree(ctx context.Context, path string, id ID, seen map[ID]struct{}, v refVisitor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v.blob(TreeBlob, id)
	if _, ok := seen[id]; ok {
		return nil
	}
	seen[id] = struct{}{}
	b, err := r.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		v.fail("tree "+path, id, err)
		return nil
	}
	t, err := UnmarshalTree(b)
	if err != nil {
		v.fail("tree "+path, id, fmt.Errorf("%v: %w", err, ErrCorrupt))
		return nil
	}
	for _, n := range t.Nodes {
		for _, c := range n.Content {
			v.blob(DataBlob, c)
		}
		if n.Subtree != nil {
			if err := r.walkTree(ctx, path+n.Name+"/", *n.Subtree, seen, v); err != nil {
				return err
			}
		}
	}
	return nil
}

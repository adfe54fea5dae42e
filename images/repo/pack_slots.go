package repo

import "context"

// treePackers is how many tree packs are open at once. Trees are small and come a few per
// directory, so one pack fills fast enough; more would only leave several half-full tree packs
// at Flush where a cold reader wants one.
const treePackers = 1

// packSlots are the open packs of one blob type: at most n, each either an open packer waiting
// in ready or a token in free (room to create one). Taking a packer gives exclusive use of it;
// open packers are preferred so sequential callers fill one pack instead of several.
type packSlots struct {
	ready chan *packer
	free  chan struct{}
	n     int
}

func newPackSlots(n int) packSlots {
	s := packSlots{ready: make(chan *packer, n), free: make(chan struct{}, n), n: n}
	for i := 0; i < n; i++ {
		s.free <- struct{}{}
	}
	return s
}

// packIndex is the kind of pack blobs of type t go into (Repository.packs, repacker.p): tree
// blobs (directory trees, block maps) never share a pack with data blobs, so reading a
// snapshot's trees reads tree packs only.
func packIndex(t BlobType) int {
	if t == TreeBlob {
		return 1
	}
	return 0
}

// slotsFor gives the open packs blobs of type t go into.
func (r *Repository) slotsFor(t BlobType) *packSlots { return &r.packs[packIndex(t)] }

// takePacker returns an open packer of s, or a new one if fewer than s.n are open.
func (r *Repository) takePacker(ctx context.Context, s *packSlots) (*packer, error) {
	select {
	case p := <-s.ready:
		return p, nil
	default:
	}
	select {
	case p := <-s.ready:
		return p, nil
	case <-s.free:
		p, err := newPackerFor(ctx, r.be, r.opts.TempDir, &r.noStream)
		if err != nil {
			s.free <- struct{}{}
			return nil, err
		}
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// put gives a packer back for others to fill, or (nil) returns its room after it was uploaded
// or discarded.
func (s *packSlots) put(p *packer) {
	if p == nil {
		s.free <- struct{}{}
		return
	}
	s.ready <- p
}

// take takes every packer and every free slot of s, so no SaveBlob of its type runs until they
// are put back. On ctx's end it puts back what it took.
func (s *packSlots) take(ctx context.Context) ([]*packer, error) {
	var held []*packer
	for n := 0; n < s.n; n++ {
		select {
		case p := <-s.ready:
			held = append(held, p)
		case <-s.free:
		case <-ctx.Done():
			for _, p := range held {
				s.put(p)
			}
			for i := len(held); i < n; i++ {
				s.put(nil)
			}
			return nil, ctx.Err()
		}
	}
	return held, nil
}

// takeAll takes every open pack and free slot of both types (Flush, Close); putAll returns the
// slots, empty.
func (r *Repository) takeAll(ctx context.Context) ([]*packer, error) {
	data, err := r.packs[0].take(ctx)
	if err != nil {
		return nil, err
	}
	trees, err := r.packs[1].take(ctx)
	if err != nil {
		for _, p := range data {
			r.packs[0].put(p)
		}
		for i := len(data); i < r.packs[0].n; i++ {
			r.packs[0].put(nil)
		}
		return nil, err
	}
	return append(data, trees...), nil
}

func (r *Repository) putAll() {
	for k := range r.packs {
		for i := 0; i < r.packs[k].n; i++ {
			r.packs[k].put(nil)
		}
	}
}

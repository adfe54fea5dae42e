package remotestore

import (
	"bytes"
	"context"
	"sync"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/wire"
)

// prefetched holds requests sent with the handshake (wire.DialEarly) before any caller asked
// for them: a repository open's config read and index listing, whose answers then arrive with
// the server's HelloAck instead of a round trip after it. Each serves the first call that
// sends the same request, as long as no other request was sent before: once the command sent
// something else (an init's Create, a save) an answer from before that may be stale, so the
// rest are dropped (canceled) unread.
type prefetched struct {
	mu      sync.Mutex
	pending []prefetch
}

type prefetch struct {
	op   wire.Op
	args []byte
	st   *wire.Stream
}

// prefetchOpen sends what repo.Open asks first. A request that cannot be sent is left out: the
// caller's own call then sends it (and meets the same error). ctx bounds only the handshake
// (New): the requests outlive it, for the caller that takes them later.
func (c *Client) prefetchOpen(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	reqs := []prefetch{
		{op: wire.OpLoad, args: wire.EncodeLoadArgs(wire.LoadArgs{Handle: store.Handle{Kind: store.KindConfig}})},
		{op: wire.OpList, args: wire.EncodeKind(store.KindIndex)},
	}
	c.pre.mu.Lock()
	defer c.pre.mu.Unlock()
	for _, r := range reqs {
		st, err := c.sess.Open(ctx, r.op, r.args, false)
		if err != nil {
			return
		}
		r.st = st
		c.pre.pending = append(c.pre.pending, r)
	}
}

// open starts a request: a prefetched one when it matches, else a new one.
func (c *Client) open(ctx context.Context, op wire.Op, args []byte, upload bool) (*wire.Stream, error) {
	if st := c.pre.take(op, args, upload); st != nil {
		return st, nil
	}
	return c.sess.Open(ctx, op, args, upload)
}

// take hands over the prefetched stream of the same request, or drops them all when the request
// is another one.
func (p *prefetched) take(op wire.Op, args []byte, upload bool) *wire.Stream {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		return nil
	}
	for i, r := range p.pending {
		if !upload && r.op == op && bytes.Equal(r.args, args) {
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
			return r.st
		}
	}
	for _, r := range p.pending {
		_ = r.st.Close() // cancels it if its answer is still on the way
	}
	p.pending = nil
	return nil
}

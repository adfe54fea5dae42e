package storetest

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/snapferry/snapferry/images/store"
)

// LoadCounter is a Backend that counts the Loads of pack files: how tests see whether reads
// of many blobs were batched into few store requests.
type LoadCounter struct {
	store.Backend
	PackLoads atomic.Int64
}

// Load counts a Load of KindData and passes it on.
func (c *LoadCounter) Load(ctx context.Context, h store.Handle, off, n int64) (io.ReadCloser, error) {
	if h.Kind == store.KindData {
		c.PackLoads.Add(1)
	}
	return c.Backend.Load(ctx, h, off, n)
}

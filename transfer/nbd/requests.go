package nbd

import (
	"context"
	"fmt"
	"io"
)

// ReadAt reads len(p) bytes at off (io.ReaderAt). Holes the server reports read as zeros.
func (c *Client) ReadAt(p []byte, off int64) (int, error) {
	return c.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that gives up when ctx ends (the connection is then closed: a
// request cannot be taken back). A large p goes out as several requests of at most MaxRequest
// bytes, all in flight at once within the window.
func (c *Client) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("nbd: read at negative offset %d", off)
	}
	if off >= c.Size() {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), c.Size()-off))
	var reads []*Read
	var err error
	for done := 0; done < n; {
		k := min(n-done, MaxRequest)
		r, e := c.StartRead(ctx, p[done:done+k], off+int64(done))
		if e != nil {
			err = e
			break
		}
		reads = append(reads, r)
		done += k
	}
	// Every request sent is waited for, even after an error: its reply writes into p.
	got, failed := 0, err != nil
	for _, r := range reads {
		if e := r.Wait(ctx); e != nil {
			if err == nil {
				err = e
			}
			failed = true
		} else if !failed {
			got += len(r.c.buf)
		}
	}
	if err != nil {
		return got, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read is a read request in flight (StartRead).
type Read struct {
	p *pipe
	c *call
}

// StartRead sends a read of len(p) bytes at off and returns without waiting for the reply;
// Wait gives its result. p (at most MaxRequest bytes, inside the export) must not be used
// until Wait returns. It blocks while Window requests are in flight.
func (c *Client) StartRead(ctx context.Context, p []byte, off int64) (*Read, error) {
	if off < 0 || len(p) == 0 || len(p) > MaxRequest || off > c.Size()-int64(len(p)) {
		return nil, fmt.Errorf("nbd: read of %d bytes at %d: outside the %d-byte export or larger than %d", len(p), off, c.Size(), MaxRequest)
	}
	cl, err := c.p.send(ctx, cmdRead, uint64(off), uint32(len(p)), p, 0)
	if err != nil {
		return nil, fmt.Errorf("nbd: read %d bytes at %d: %w", len(p), off, err)
	}
	return &Read{p: &c.p, c: cl}, nil
}

// Wait waits for the read's reply. When ctx ends first the connection is closed (see
// ReadAtContext).
func (r *Read) Wait(ctx context.Context) error {
	if err := r.p.wait(ctx, r.c); err != nil {
		return fmt.Errorf("nbd: read %d bytes at %d: %w", r.c.length, r.c.off, err)
	}
	return nil
}

// BlockStatus asks for the extents of context (a name selected at Dial) in [off, off+length)
// and returns them in order, clipped to the range. The server may answer for less than the
// whole range; the caller asks again from the end of the last extent.
func (c *Client) BlockStatus(ctx context.Context, cname string, off, length uint64) ([]Extent, error) {
	id, ok := c.contexts[cname]
	if !ok {
		return nil, fmt.Errorf("nbd: block status: metadata context %q was not selected by the server", cname)
	}
	length = min(length, 1<<31)
	cl, err := c.p.send(ctx, cmdBlockStatus, off, uint32(length), nil, id)
	if err == nil {
		err = c.p.wait(ctx, cl)
	}
	if err != nil {
		return nil, fmt.Errorf("nbd: block status of %s at %d+%d: %w", cname, off, length, err)
	}
	out := cl.ext
	if len(out) == 0 {
		return nil, fmt.Errorf("nbd: block status of %s at %d+%d: no extents in the reply", cname, off, length)
	}
	end := off + length
	for i := range out {
		if out[i].Offset+out[i].Length >= end {
			out[i].Length = end - out[i].Offset
			out = out[:i+1]
			break
		}
	}
	return out, nil
}

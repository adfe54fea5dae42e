package replica

import (
	"context"
	"fmt"
)

// holeMap answers "does [off, off+n) lie wholly in a hole?" for non-decreasing offsets.
type holeMap interface {
	hole(off int64, n int) (bool, error)
}

// extentCursor walks an Extents source forward one range at a time (memory does not grow with
// the number of ranges). As a holeMap it takes the ranges for data, everything else for holes.
type extentCursor struct {
	ctx        context.Context
	x          Extents
	start, end int64 // the current range; end == 0 before the first
	done       bool
}

// at returns the first range that ends after off; ok=false when none is left. Calls must come
// with non-decreasing off.
func (c *extentCursor) at(off int64) (start, end int64, ok bool, err error) {
	for !c.done && c.end <= off {
		s, e, more, err := c.x.Next(c.ctx, max(off, c.end))
		if err != nil {
			return 0, 0, false, err
		}
		if !more {
			c.done = true
			break
		}
		if e <= max(off, c.end) || s >= e {
			// A source that goes backwards would make this loop forever.
			return 0, 0, false, fmt.Errorf("extent list went backwards: [%d, %d) after %d", s, e, max(off, c.end))
		}
		c.start, c.end = s, e
	}
	return c.start, c.end, !c.done, nil
}

func (c *extentCursor) hole(off int64, n int) (bool, error) {
	start, _, ok, err := c.at(off)
	if err != nil {
		return false, err
	}
	return !ok || start >= off+int64(n), nil
}

// visitExtents is a scanner's visit function for the blocks (of bs bytes, size in all) that the
// ranges of x touch.
func visitExtents(ctx context.Context, x Extents, size, bs int64) func(int64) (int64, error) {
	c := &extentCursor{ctx: ctx, x: x}
	count := blockCount(size, bs)
	return func(i int64) (int64, error) {
		start, _, ok, err := c.at(i * bs)
		if err != nil || !ok {
			return count, err
		}
		return max(i, start/bs), nil
	}
}

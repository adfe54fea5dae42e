package libvirt

import (
	"context"

	"github.com/snapferry/snapferry/transfer/nbd"
)

// nbdSource is a disk.Source over an NBD export: Next walks the export's block status in the
// context that decides what to read (base:allocation for a full backup: data that is neither a
// hole nor zeros; a dirty bitmap for an incremental: extents marked dirty).
type nbdSource struct {
	c       *nbd.Client
	context string
	want    func(flags uint32) bool
	// ext holds the extents of the last answer, from its first not-yet-passed one.
	ext []nbd.Extent
}

func newFullSource(c *nbd.Client) *nbdSource {
	return &nbdSource{c: c, context: nbd.ContextAllocation, want: func(f uint32) bool { return f&(nbd.StateHole|nbd.StateZero) == 0 }}
}

func newDirtySource(c *nbd.Client, bitmapContext string) *nbdSource {
	return &nbdSource{c: c, context: bitmapContext, want: func(f uint32) bool { return f&nbd.StateDirty != 0 }}
}

func (s *nbdSource) Size() int64 { return s.c.Size() }

func (s *nbdSource) ReadAt(p []byte, off int64) (int, error) { return s.c.ReadAt(p, off) }

// Next returns the first wanted range at or after off, merging adjacent wanted extents.
func (s *nbdSource) Next(ctx context.Context, off int64) (int64, int64, bool, error) {
	size := s.c.Size()
	start, end := int64(-1), int64(-1)
	for off < size {
		if len(s.ext) == 0 || int64(s.ext[len(s.ext)-1].Offset+s.ext[len(s.ext)-1].Length) <= off || int64(s.ext[0].Offset) > off {
			ext, err := s.c.BlockStatus(ctx, s.context, uint64(off), uint64(size-off))
			if err != nil {
				return 0, 0, false, err
			}
			s.ext = ext
		}
		for len(s.ext) > 0 {
			e := s.ext[0]
			eEnd := int64(e.Offset + e.Length)
			if eEnd <= off {
				s.ext = s.ext[1:]
				continue
			}
			if !s.want(e.Flags) {
				if start >= 0 {
					return start, end, true, nil
				}
				off = eEnd
				s.ext = s.ext[1:]
				continue
			}
			if start < 0 {
				start = max(int64(e.Offset), off)
			}
			end, off = eEnd, eEnd
			s.ext = s.ext[1:]
		}
	}
	if start >= 0 {
		return start, min(end, size), true, nil
	}
	return 0, 0, false, nil
}

package repo

import (
	"context"
	"fmt"
	"io"

	"github.com/snapferry/snapferry/images/store"
)

// readPackHeader loads and decodes the header of a stored pack of the given size. One Load
// usually suffices: the last 64 KiB hold the trailer and the header of ~1400 blobs.
// c opens the header of an encrypted repository's pack (nil: unencrypted).
func readPackHeader(ctx context.Context, be store.Backend, id ID, size int64, c *cryptor) ([]packBlob, error) {
	h := store.Handle{Kind: store.KindData, Name: id.String()}
	n := min(size, packTailReadAhead)
	if n < packTrailerSize {
		return nil, fmt.Errorf("read header of pack %s: %d bytes is too short for a pack: %w", id.Short(), size, ErrCorrupt)
	}
	tail, err := loadRange(ctx, be, h, size-n, n)
	if err != nil {
		return nil, err
	}
	need, err := packTailLen(tail, size, c.overhead())
	if err != nil {
		return nil, fmt.Errorf("read header of pack %s: %w", id.Short(), err)
	}
	if need > n {
		if tail, err = loadRange(ctx, be, h, size-need, need); err != nil {
			return nil, err
		}
	}
	blobs, err := decodePackTail(tail, size, c)
	if err != nil {
		return nil, fmt.Errorf("read header of pack %s: %w", id.Short(), err)
	}
	return blobs, nil
}

func loadRange(ctx context.Context, be store.Backend, h store.Handle, off, n int64) ([]byte, error) {
	rd, err := be.Load(ctx, h, off, n)
	if err != nil {
		return nil, fmt.Errorf("load %s at %d: %w", h, off, err)
	}
	defer rd.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rd, b); err != nil {
		return nil, fmt.Errorf("read %s at %d+%d: %w", h, off, n, err)
	}
	return b, nil
}

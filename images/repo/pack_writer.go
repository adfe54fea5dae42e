package repo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/snapferry/snapferry/images/blobhash"
	"github.com/snapferry/snapferry/images/store"
)

// packer builds one pack as blobs come, so memory stays at a write buffer however big packs
// are. Where the store can take a file before its name is known (store.StreamSaver: local
// folders and ssh:// stores, paced under --bwlimit), the bytes go straight into the store and
// the pack is named at commit. Elsewhere (sftp://) they go to a temp file that Save reads back;
// that file is unlinked right after creation, so a crash (even SIGKILL) leaves nothing behind.
type packer struct {
	pend    store.Pending // the store's pending file, or nil when spooling to f
	f       *os.File
	w       *bufio.Writer
	h       *blobhash.Hasher // the pack's name: BLAKE3 of its bytes
	entries []packEntry
	size    int64
}

// packWriteBuffer is the write size into the store or the temp file: 256 KiB keeps syscalls and
// wire frames few without holding much per open pack.
const packWriteBuffer = 256 << 10

// newPackerFor starts a pack in be when it streams, else in a temp file in dir. A store that
// answers errors.ErrUnsupported is remembered in noStream, so later packs spool at once.
func newPackerFor(ctx context.Context, be store.Backend, dir string, noStream *atomic.Bool) (*packer, error) {
	if !noStream.Load() {
		// A pack outlives the SaveBlob call that opened it (a later call or Flush finishes it), so
		// its upload must not end with that call's context. Cancelled runs drop open packs
		// through close (Abort) instead.
		pend, err := store.StartStream(context.WithoutCancel(ctx), be, store.KindData)
		switch {
		case err == nil:
			return &packer{pend: pend, w: bufio.NewWriterSize(pend, packWriteBuffer), h: blobhash.New()}, nil
		case errors.Is(err, errors.ErrUnsupported):
			noStream.Store(true)
		default:
			return nil, fmt.Errorf("start pack in %s: %w", be.Location(), err)
		}
	}
	return newPacker(dir)
}

func newPacker(dir string) (*packer, error) {
	if dir == "" {
		return nil, fmt.Errorf("create pack: repository opened without Options.TempDir; " +
			"packs are built in a temp folder on disk (not a ramdisk such as /tmp on ESXi)")
	}
	f, err := os.CreateTemp(dir, "snapferry-pack-*")
	if err != nil {
		return nil, fmt.Errorf("create pack temp file in %s: %w", dir, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("unlink pack temp file %s: %w", f.Name(), err)
	}
	return &packer{f: f, w: bufio.NewWriterSize(f, packWriteBuffer), h: blobhash.New()}, nil
}

// add appends one blob's stored bytes.
func (p *packer) add(e packEntry, stored []byte) error {
	if _, err := p.w.Write(stored); err != nil {
		return fmt.Errorf("write blob %s to pack: %w", e.ID.Short(), err)
	}
	_, _ = p.h.Write(stored)
	p.entries = append(p.entries, e)
	p.size += int64(len(stored))
	return nil
}

// finish writes header and trailer (sealed by c unless nil) and returns the pack's id; a
// spooled pack's file is rewound for upload.
func (p *packer) finish(c *cryptor) (ID, []packBlob, error) {
	tail := encodePackTail(p.entries, c)
	if _, err := p.w.Write(tail); err != nil {
		return ID{}, nil, fmt.Errorf("write pack header: %w", err)
	}
	_, _ = p.h.Write(tail)
	if err := p.w.Flush(); err != nil {
		return ID{}, nil, fmt.Errorf("write pack: %w", err)
	}
	p.size += int64(len(tail))
	if p.f != nil {
		if _, err := p.f.Seek(0, io.SeekStart); err != nil {
			return ID{}, nil, fmt.Errorf("rewind pack temp file: %w", err)
		}
	}
	var id ID
	p.h.Sum(id[:0])
	blobs := make([]packBlob, len(p.entries))
	var off uint32
	for i, e := range p.entries {
		blobs[i] = packBlob{packEntry: e, Offset: off}
		off += e.Stored
	}
	return id, blobs, nil
}

// store names the finished pack id in be: a commit of the streamed bytes, or a Save of the
// spooled file. ErrExist (identical bytes already stored) comes back as it is.
func (p *packer) store(ctx context.Context, be store.Backend, id ID) error {
	h := store.Handle{Kind: store.KindData, Name: id.String()}
	if p.pend != nil {
		return p.pend.Commit(ctx, h)
	}
	return be.Save(ctx, h, p.f)
}

// close drops what was not stored: the store's pending file or the temp file.
func (p *packer) close() {
	if p.pend != nil {
		p.pend.Abort()
		return
	}
	_ = p.f.Close()
}

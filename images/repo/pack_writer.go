package repo

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"lukechampine.com/blake3"
)

// packer builds one pack in a temp file: blobs stream to disk as they come, so memory stays at a
// write buffer however big packs are. The temp file is unlinked right after creation, so a crash
// (even SIGKILL) leaves nothing behind in the temp folder.
type packer struct {
	f       *os.File
	w       *bufio.Writer
	h       *blake3.Hasher
	entries []packEntry
	size    int64
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
	return &packer{f: f, w: bufio.NewWriterSize(f, 256<<10), h: blake3.New(32, nil)}, nil
}

// add appends one blob's stored bytes.
func (p *packer) add(e packEntry, stored []byte) error {
	if _, err := p.w.Write(stored); err != nil {
		return fmt.Errorf("write blob %s to pack temp file: %w", e.ID.Short(), err)
	}
	_, _ = p.h.Write(stored)
	p.entries = append(p.entries, e)
	p.size += int64(len(stored))
	return nil
}

// finish writes header and trailer (sealed by c unless nil) and returns the pack's id with the
// file rewound for upload.
func (p *packer) finish(c *cryptor) (ID, []packBlob, error) {
	tail := encodePackTail(p.entries, c)
	if _, err := p.w.Write(tail); err != nil {
		return ID{}, nil, fmt.Errorf("write pack header: %w", err)
	}
	_, _ = p.h.Write(tail)
	if err := p.w.Flush(); err != nil {
		return ID{}, nil, fmt.Errorf("write pack temp file: %w", err)
	}
	p.size += int64(len(tail))
	if _, err := p.f.Seek(0, io.SeekStart); err != nil {
		return ID{}, nil, fmt.Errorf("rewind pack temp file: %w", err)
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

func (p *packer) close() { _ = p.f.Close() }

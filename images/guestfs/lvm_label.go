package guestfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxLVMMetadata bounds the metadata text read from a physical volume: real volume groups with
// hundreds of volumes stay well below 1 MiB.
const maxLVMMetadata = 4 << 20

// isLVMLabel reports whether one of the first four sectors holds an LVM2 label.
func isLVMLabel(head []byte) bool {
	_, ok := lvmLabelAt(head)
	return ok
}

func lvmLabelAt(head []byte) (int, bool) {
	for i := range 4 {
		s := head[i*sector:]
		if string(s[:8]) == "LABELONE" && string(s[24:32]) == "LVM2 001" {
			return i * sector, true
		}
	}
	return 0, false
}

// pvInfo is what a physical volume's label says: its UUID and where its metadata text is.
type pvInfo struct {
	uuid     string // 32 characters, as in the label (no dashes)
	metadata []byte
}

// readPVLabel reads an LVM2 physical volume's label and the newest metadata text in its first
// metadata area.
func readPVLabel(r io.ReaderAt, size int64) (pvInfo, error) {
	head := readHead(r, 0, size)
	at, ok := lvmLabelAt(head)
	if !ok {
		return pvInfo{}, errors.New("no LVM2 label in the first four sectors")
	}
	lbl := head[at : at+sector]
	off := int(binary.LittleEndian.Uint32(lbl[20:]))
	if off < 32 || off > sector-40 {
		return pvInfo{}, fmt.Errorf("label's header offset %d is invalid", off)
	}
	ph := lbl[off:]
	pv := pvInfo{uuid: string(ph[:32])}
	// Two lists of (offset, size) follow the UUID and device size, each ended by a zero entry:
	// data areas, then metadata areas. They must fit in the label sector.
	p := 40
	next := func() (uint64, uint64, bool) {
		if p+16 > len(ph) {
			return 0, 0, false
		}
		o, s := binary.LittleEndian.Uint64(ph[p:]), binary.LittleEndian.Uint64(ph[p+8:])
		p += 16
		return o, s, true
	}
	for {
		o, _, ok := next()
		if !ok {
			return pv, errors.New("data area list runs past the label sector")
		}
		if o == 0 {
			break
		}
	}
	mdaOff, mdaSize, ok := next()
	if !ok || mdaOff == 0 {
		return pv, errors.New("physical volume has no metadata area (its volume group's metadata is on another disk)")
	}
	if mdaOff >= uint64(size) || mdaSize < 512 || mdaSize > uint64(size)-mdaOff {
		return pv, fmt.Errorf("metadata area at %d, %d bytes, lies outside the volume", mdaOff, mdaSize)
	}
	md, err := readMDA(r, int64(mdaOff), int64(mdaSize))
	if err != nil {
		return pv, err
	}
	pv.metadata = md
	return pv, nil
}

// readMDA reads the metadata text the metadata area header points at. The area is a circular
// buffer after its 512-byte header, so the text may wrap to the start.
func readMDA(r io.ReaderAt, off, size int64) ([]byte, error) {
	h := make([]byte, sector)
	if _, err := r.ReadAt(h, off); err != nil {
		return nil, fmt.Errorf("read metadata area header: %w", err)
	}
	if !bytes.Equal(h[4:20], []byte(" LVM2 x[5A%r0N*>")) {
		return nil, errors.New("metadata area header has the wrong magic")
	}
	tOff := int64(binary.LittleEndian.Uint64(h[40:]))
	tLen := int64(binary.LittleEndian.Uint64(h[48:]))
	if tOff == 0 || tLen == 0 {
		return nil, errors.New("metadata area holds no metadata")
	}
	if tLen > maxLVMMetadata || tLen > size-sector || tOff < sector || tOff >= size {
		return nil, fmt.Errorf("metadata text at %d, %d bytes, does not fit its %d-byte area", tOff, tLen, size)
	}
	text := make([]byte, tLen)
	first := min(tLen, size-tOff)
	if _, err := r.ReadAt(text[:first], off+tOff); err != nil {
		return nil, fmt.Errorf("read metadata text: %w", err)
	}
	if first < tLen {
		if _, err := r.ReadAt(text[first:], off+sector); err != nil {
			return nil, fmt.Errorf("read metadata text: %w", err)
		}
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		text = text[:i]
	}
	return text, nil
}

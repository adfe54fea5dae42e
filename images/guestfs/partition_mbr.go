package guestfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const sector = 512

// maxLogical bounds the chain of extended boot records: a crafted chain may point back at itself.
const maxLogical = 256

// readPartitions reads a GPT (when the MBR is protective) or an MBR with its logical partitions.
func readPartitions(r io.ReaderAt, size int64) ([]*Volume, string, error) {
	mbr := make([]byte, sector)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		return nil, "", fmt.Errorf("read the first sector: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, "", errors.New("no partition table (MBR or GPT) and no known file system at the start of the disk")
	}
	entries := mbrEntries(mbr)
	for _, e := range entries {
		if e.typ == 0xEE {
			vs, err := readGPT(r, size)
			if err != nil {
				return nil, "", fmt.Errorf("GPT: %w", err)
			}
			return vs, "gpt", nil
		}
	}
	var vs []*Volume
	var ext *mbrEntry
	for i, e := range entries {
		if e.typ == 0 || e.sectors == 0 {
			continue
		}
		if isExtended(e.typ) {
			if ext == nil {
				ext = &entries[i]
			}
			continue
		}
		vs = append(vs, newPartition(r, size, fmt.Sprintf("p%d", i+1), "mbr", fmt.Sprintf("0x%02x", e.typ),
			int64(e.start)*sector, int64(e.sectors)*sector))
	}
	if ext != nil {
		logical, err := readLogical(r, size, int64(ext.start))
		vs = append(vs, logical...)
		if err != nil {
			// The partitions found so far stay readable; the broken link is reported as a volume.
			vs = append(vs, &Volume{Name: fmt.Sprintf("p%d", 5+len(logical)), Scheme: "mbr", Type: "extended", Problem: err.Error()})
		}
	}
	return vs, "mbr", nil
}

type mbrEntry struct {
	typ     byte
	start   uint32 // LBA
	sectors uint32
}

func mbrEntries(b []byte) [4]mbrEntry {
	var es [4]mbrEntry
	for i := range es {
		e := b[446+16*i:]
		es[i] = mbrEntry{typ: e[4], start: binary.LittleEndian.Uint32(e[8:]), sectors: binary.LittleEndian.Uint32(e[12:])}
	}
	return es
}

func isExtended(t byte) bool { return t == 0x05 || t == 0x0F || t == 0x85 }

// readLogical follows the chain of extended boot records from the extended partition at extLBA.
// Each EBR's first entry is a logical partition relative to that EBR; its second entry is the
// next EBR relative to the extended partition's start. Logical partitions are p5, p6, ...
func readLogical(r io.ReaderAt, size, extLBA int64) ([]*Volume, error) {
	var vs []*Volume
	seen := map[int64]bool{}
	ebrLBA := extLBA
	buf := make([]byte, sector)
	for len(vs) < maxLogical {
		if seen[ebrLBA] {
			return vs, fmt.Errorf("extended boot record at sector %d is linked twice (a loop)", ebrLBA)
		}
		seen[ebrLBA] = true
		if ebrLBA*sector+sector > size {
			return vs, fmt.Errorf("extended boot record at sector %d lies past the end of the disk", ebrLBA)
		}
		if _, err := r.ReadAt(buf, ebrLBA*sector); err != nil {
			return vs, fmt.Errorf("read extended boot record at sector %d: %w", ebrLBA, err)
		}
		if buf[510] != 0x55 || buf[511] != 0xAA {
			return vs, fmt.Errorf("extended boot record at sector %d has no 55 AA signature", ebrLBA)
		}
		es := mbrEntries(buf)
		if es[0].typ != 0 && es[0].sectors != 0 {
			vs = append(vs, newPartition(r, size, fmt.Sprintf("p%d", 5+len(vs)), "mbr", fmt.Sprintf("0x%02x", es[0].typ),
				(ebrLBA+int64(es[0].start))*sector, int64(es[0].sectors)*sector))
		}
		if es[1].typ == 0 || es[1].start == 0 {
			return vs, nil
		}
		ebrLBA = extLBA + int64(es[1].start)
	}
	return vs, fmt.Errorf("more than %d logical partitions", maxLogical)
}

// newPartition makes a volume, or one carrying a Problem when it does not fit on the disk.
func newPartition(r io.ReaderAt, disk int64, name, scheme, typ string, start, size int64) *Volume {
	v := &Volume{Name: name, Start: start, Size: size, Scheme: scheme, Type: typ}
	if start < 0 || size <= 0 || start >= disk || size > disk-start {
		v.Problem = fmt.Sprintf("partition at byte %d, %d bytes long, does not fit on a disk of %d bytes", start, size, disk)
		return v
	}
	v.r = io.NewSectionReader(r, start, size)
	return v
}

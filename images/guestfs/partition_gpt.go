package guestfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// GPT limits: the spec's usual table is 128 entries of 128 bytes; anything much larger is not a
// table a partitioning tool wrote.
const (
	maxGPTEntries   = 4096
	maxGPTEntrySize = 4096
)

// readGPT reads the primary GPT. Sector size 512 is tried first, then 4096 (4Kn disks).
func readGPT(r io.ReaderAt, size int64) ([]*Volume, error) {
	var firstErr error
	for _, ss := range []int64{512, 4096} {
		vs, err := readGPTSectors(r, size, ss)
		if err == nil {
			return vs, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func readGPTSectors(r io.ReaderAt, size, ss int64) ([]*Volume, error) {
	hdr := make([]byte, ss)
	if ss*2 > size {
		return nil, errors.New("disk too small for a GPT header")
	}
	if _, err := r.ReadAt(hdr, ss); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(hdr[:8]) != "EFI PART" {
		return nil, errors.New("protective MBR but no EFI PART header at sector 1")
	}
	hsize := binary.LittleEndian.Uint32(hdr[12:])
	if hsize < 92 || int64(hsize) > ss {
		return nil, fmt.Errorf("header size %d is invalid", hsize)
	}
	h := append([]byte(nil), hdr[:hsize]...)
	want := binary.LittleEndian.Uint32(h[16:])
	binary.LittleEndian.PutUint32(h[16:], 0)
	if crc32.ChecksumIEEE(h) != want {
		return nil, errors.New("header checksum mismatch (the table is damaged)")
	}
	entLBA := int64(binary.LittleEndian.Uint64(hdr[72:]))
	n := binary.LittleEndian.Uint32(hdr[80:])
	esz := binary.LittleEndian.Uint32(hdr[84:])
	if n == 0 || n > maxGPTEntries || esz < 128 || esz > maxGPTEntrySize || esz%8 != 0 {
		return nil, fmt.Errorf("%d entries of %d bytes is not a valid table", n, esz)
	}
	tlen := int64(n) * int64(esz)
	if entLBA < 2 || entLBA > size/ss || tlen > size-entLBA*ss {
		return nil, fmt.Errorf("entry table at sector %d lies past the end of the disk", entLBA)
	}
	table := make([]byte, tlen)
	if _, err := r.ReadAt(table, entLBA*ss); err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	if crc32.ChecksumIEEE(table) != binary.LittleEndian.Uint32(hdr[88:]) {
		return nil, errors.New("entry table checksum mismatch (the table is damaged)")
	}
	var vs []*Volume
	for i := range int64(n) {
		e := table[i*int64(esz):]
		var typ [16]byte
		copy(typ[:], e[:16])
		if typ == ([16]byte{}) {
			continue
		}
		first := binary.LittleEndian.Uint64(e[32:])
		last := binary.LittleEndian.Uint64(e[40:])
		start, length := int64(-1), int64(0)
		if last >= first && first < uint64(size/ss) && last < uint64(size/ss) {
			start, length = int64(first)*ss, int64(last-first+1)*ss
		}
		v := newPartition(r, size, fmt.Sprintf("p%d", i+1), "gpt", gptTypeName(typ), start, length)
		v.PartLabel = utf16Name(e[56:128])
		vs = append(vs, v)
	}
	return vs, nil
}

// gptTypes names the partition types a VM disk usually holds.
var gptTypes = map[string]string{
	"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
	"933AC7E1-2EB4-4F13-B844-0E14E2AEF915": "Linux home",
	"E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
	"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
	"A19D880F-05FC-4D3B-A006-743F0F84911E": "Linux RAID",
	"CA7D7CCB-63ED-4C53-861C-1742536059CC": "Linux LUKS",
	"BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
	"C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI System",
	"21686148-6449-6E6F-744E-656564454649": "BIOS boot",
	"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
	"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
	"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
	"5808C8AA-7E8F-42E0-85D2-E1E90434CFB3": "Windows LDM metadata",
	"AF9B60A0-1431-4F62-BC68-3311714A69AD": "Windows LDM data",
}

// gptTypeName renders a type GUID (mixed-endian on disk) and names it when known.
func gptTypeName(b [16]byte) string {
	g := fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
	if n, ok := gptTypes[g]; ok {
		return n
	}
	return g
}

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return strings.ToValidUTF8(string(utf16.Decode(u)), "?")
}

// trimLabel cuts a fixed-size label field at its first NUL and drops padding spaces.
func trimLabel(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.ToValidUTF8(strings.TrimRight(string(b), " "), "?")
}

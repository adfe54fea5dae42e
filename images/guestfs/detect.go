package guestfs

import (
	"bytes"
	"encoding/binary"
)

// detect names the file system (or container) whose signature starts head, the first headSize
// bytes of a volume, and its label where the superblock holds one. "" means unknown.
func detect(head []byte) (fstype, label string) {
	le16 := func(off int) uint16 { return binary.LittleEndian.Uint16(head[off:]) }
	le32 := func(off int) uint32 { return binary.LittleEndian.Uint32(head[off:]) }
	switch {
	case bytes.HasPrefix(head, []byte("LUKS\xba\xbe")):
		return "luks", ""
	case string(head[3:11]) == "-FVE-FS-":
		return "bitlocker", ""
	case string(head[3:7]) == "ReFS":
		return "refs", ""
	case string(head[3:11]) == "NTFS    ":
		return "ntfs", ""
	case string(head[3:11]) == "EXFAT   ":
		return "exfat", ""
	case string(head[:4]) == "XFSB":
		return "xfs", trimLabel(head[108:120])
	case le16(1024+56) == 0xEF53:
		compat, incompat, roCompat := le32(1024+92), le32(1024+96), le32(1024+100)
		t := "ext2"
		if compat&0x4 != 0 { // has_journal
			t = "ext3"
		}
		// extents, 64bit, flex_bg, huge_file, dir_nlink, extra_isize, metadata_csum: ext4 only
		if incompat&(0x40|0x80|0x200) != 0 || roCompat&(0x8|0x20|0x40|0x400) != 0 {
			t = "ext4"
		}
		return t, trimLabel(head[1024+120 : 1024+136])
	case string(head[65536+64:65536+72]) == "_BHRfS_M":
		return "btrfs", trimLabel(head[65536+0x12b : 65536+0x12b+256])
	case string(head[4096-10:4096]) == "SWAPSPACE2":
		return "swap", trimLabel(head[1024+28 : 1024+44])
	case isFAT(head):
		if le16(22) == 0 { // sectors per FAT 0: the FAT32 extended BPB follows
			return "vfat", trimLabel(head[71:82])
		}
		return "vfat", trimLabel(head[43:54])
	case isLVMLabel(head):
		return "lvm2", ""
	}
	return "", ""
}

// isFAT checks a boot sector's BIOS parameter block: 55 AA, a power-of-two sector size, a
// power-of-two cluster and at least one FAT. Partition-table MBRs fail the sector-size test.
func isFAT(b []byte) bool {
	if b[510] != 0x55 || b[511] != 0xAA || (b[0] != 0xEB && b[0] != 0xE9) {
		return false
	}
	bps := binary.LittleEndian.Uint16(b[11:])
	spc := b[13]
	return (bps == 512 || bps == 1024 || bps == 2048 || bps == 4096) &&
		spc != 0 && spc&(spc-1) == 0 && b[16] != 0 && binary.LittleEndian.Uint16(b[14:]) != 0
}

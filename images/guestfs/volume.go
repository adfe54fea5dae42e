package guestfs

import (
	"errors"
	"fmt"
	"io"
)

// Volume is one place on a disk that may hold a file system: a partition, the whole disk (p0) or
// an LVM logical volume.
type Volume struct {
	Name      string // "p1", "p0", or "VG/LV" for a logical volume (inside its physical volume)
	Start     int64  // byte offset on the disk (for a logical volume: of its first extent)
	Size      int64  // bytes
	Scheme    string // "mbr", "gpt", "none" (a bare file system), "lvm"
	Type      string // the partition's type as its table names it: "0x83", "Linux filesystem", "linear"
	PartLabel string // GPT partition name
	FSType    string // "ext4", "xfs", "ntfs", "vfat", "exfat", "lvm2", "btrfs", ...; "" when unknown
	Label     string // the file system's label, where the superblock holds one
	// Problem says why a volume cannot be read (a broken LVM label, a partition past the disk's
	// end); the volume is still listed.
	Problem string
	// LVs are the logical volumes of an LVM2 physical volume's volume group that lie wholly on
	// this disk.
	LVs []*Volume

	r io.ReaderAt // the volume's bytes, offset 0 = Start on the disk
}

// Disk is what Open found on a disk image.
type Disk struct {
	Size    int64
	Scheme  string // "mbr", "gpt" or "none"
	Volumes []*Volume
}

// ErrUnsupported marks a volume whose type snapferry recognises but cannot read.
var ErrUnsupported = errors.New("not readable by snapferry")

// Open reads the partition table of the disk r (size bytes) and the type of each partition's
// file system. A file system with no partition table is the one volume p0.
func Open(r io.ReaderAt, size int64) (d *Disk, err error) {
	err = guard("partition table", func() error {
		d, err = open(r, size)
		return err
	})
	return d, err
}

func open(r io.ReaderAt, size int64) (*Disk, error) {
	if size < 512 {
		return nil, fmt.Errorf("disk of %d bytes holds no partition table or file system", size)
	}
	d := &Disk{Size: size}
	head := readHead(r, 0, size)
	// A file system at byte 0 wins over an MBR signature: FAT and NTFS boot sectors end in 55 AA
	// too, and their partition-entry bytes are boot code.
	if t, _ := detect(head); t != "" && t != "lvm2" || isLVMLabel(head) {
		d.Scheme = "none"
		d.Volumes = []*Volume{{Name: "p0", Size: size, Scheme: "none", r: io.NewSectionReader(r, 0, size)}}
	} else {
		parts, scheme, err := readPartitions(r, size)
		if err != nil {
			return nil, err
		}
		d.Scheme = scheme
		d.Volumes = parts
	}
	for _, v := range d.Volumes {
		if v.Problem != "" {
			continue
		}
		inspect(v)
	}
	return d, nil
}

// inspect fills in a volume's file-system type and label, and for an LVM physical volume its
// logical volumes.
func inspect(v *Volume) {
	head := readHead(v.r, 0, v.Size)
	v.FSType, v.Label = detect(head)
	if v.FSType == "" && isLVMLabel(head) {
		v.FSType = "lvm2"
	}
	if v.FSType != "lvm2" {
		return
	}
	lvs, err := readLVM(v.r, v.Size)
	if err != nil {
		v.Problem = fmt.Sprintf("LVM physical volume: %v", err)
		return
	}
	for _, lv := range lvs {
		inspect(lv)
	}
	v.LVs = lvs
}

// headSize covers every signature detect looks for (btrfs keeps its superblock at 64 KiB).
const headSize = 68 << 10

// readHead reads up to headSize bytes at off; a short read (a small volume) leaves zeros.
func readHead(r io.ReaderAt, off, size int64) []byte {
	b := make([]byte, headSize)
	n := int64(headSize)
	if size-off < n {
		n = max(size-off, 0)
	}
	_, _ = r.ReadAt(b[:n], off) // what could not be read stays zero and matches no signature
	return b
}

// Find returns the volume named name ("p1", "vg0/root" below a physical volume is found as
// "p2/vg0/root") together with how many path elements the name used.
func (d *Disk) Find(elems []string) (*Volume, int, error) {
	if len(elems) == 0 {
		return nil, 0, errors.New("no partition named")
	}
	for _, v := range d.Volumes {
		if v.Name != elems[0] {
			continue
		}
		if v.FSType != "lvm2" {
			return v, 1, nil
		}
		if len(elems) < 3 {
			return v, 1, nil
		}
		for _, lv := range v.LVs {
			if lv.Name == elems[1]+"/"+elems[2] {
				return lv, 3, nil
			}
		}
		return nil, 0, fmt.Errorf("%s: no logical volume %s/%s (it lists %s)", v.Name, elems[1], elems[2], lvNames(v))
	}
	return nil, 0, fmt.Errorf("no partition %q on this disk (it has %s)", elems[0], volNames(d.Volumes))
}

func volNames(vs []*Volume) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += ", "
		}
		s += v.Name
	}
	if s == "" {
		return "none"
	}
	return s
}

func lvNames(v *Volume) string { return volNames(v.LVs) }

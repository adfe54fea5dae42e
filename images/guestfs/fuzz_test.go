package guestfs

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"
)

// fuzzWalk opens every volume of a disk image and reads everything it lists, bounded, so the
// fuzzer exercises the partition tables, LVM metadata, ext and FAT readers together. Errors
// are fine; a panic, or a walk that does not end, is a bug.
func fuzzWalk(data []byte) {
	d, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return
	}
	var vols []*Volume
	for _, v := range d.Volumes {
		vols = append(vols, v)
		vols = append(vols, v.LVs...)
	}
	buf := make([]byte, 4096)
	for _, v := range vols {
		f, err := v.OpenFS()
		if err != nil {
			continue
		}
		budget := 2000
		var walk func(dir string, depth int)
		walk = func(dir string, depth int) {
			es, err := f.ReadDir(dir)
			if err != nil || depth > 8 {
				return
			}
			for _, e := range es {
				if budget--; budget < 0 {
					return
				}
				p := dir + "/" + e.Name
				if dir == "." {
					p = e.Name
				}
				_, _ = f.Lstat(p)
				if e.Mode.IsDir() {
					walk(p, depth+1)
				} else if fl, err := f.Open(p); err == nil {
					for off := int64(0); off < min(fl.Size(), 1<<20); off += int64(len(buf)) {
						if _, err := fl.ReadAt(buf, off); err != nil && err != io.EOF {
							break
						}
					}
					fl.Close()
				}
			}
		}
		walk(".", 0)
	}
}

// FuzzOpen feeds hostile disk images to Open and the file-system readers. Seeds are small real
// images (testdata/fuzz/FuzzOpen) plus the ones built here from bytes.
func FuzzOpen(f *testing.F) {
	for _, p := range []string{"testdata/ext2-small.img", "testdata/ext4-inline-small.img", "testdata/fat12-small.img", "testdata/lvm-label.img", "testdata/ntfs-small.img", "testdata/xfs-head.img", "testdata/exfat-small.img"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	mbr := make([]byte, 4096)
	mbr[510], mbr[511] = 0x55, 0xAA
	mbr[446+4], mbr[446+8], mbr[446+12] = 0x05, 1, 6 // an extended partition pointing at itself
	f.Add(mbr)
	f.Fuzz(func(t *testing.T, data []byte) {
		// A walk that does not end is a bug the fuzzer must report with its input: a panic
		// from the timer crashes the worker, and the fuzzer saves what it was running.
		stop := time.AfterFunc(30*time.Second, func() { panic("guestfs: walking a fuzzed image took over 30 s") })
		defer stop.Stop()
		fuzzWalk(data)
	})
}

// FuzzLVMConfig feeds LVM metadata text to the parser.
func FuzzLVMConfig(f *testing.F) {
	f.Add([]byte(lvmSample))
	f.Add([]byte("a { b = [1, \"x\", 2] c { d = -3 } } # end"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = parseLVMConfig(data)
	})
}

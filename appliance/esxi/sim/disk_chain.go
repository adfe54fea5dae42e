package sim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/appliance/esxi"
	"github.com/snapferry/snapferry/images/vmdk"
)

// grainSize is the copy-on-write unit of a delta: 8 sectors, as ddb.grain = "8" says for seSparse.
// A delta's data file holds a grain iff that grain is allocated in the (sparse) file, so the grain
// must be a multiple of the file system block; 4 KiB is the block of ext4, xfs and tmpfs.
const grainSize = 4096

// layer is one link of a disk chain.
type layer struct {
	desc  string // local path of the descriptor
	d     *vmdk.Descriptor
	data  string // local path of the extent file
	delta bool
}

// chain follows parentFileNameHint from the descriptor top down to the base disk.
func (h *Host) chain(top string) ([]layer, error) {
	var out []layer
	cur := top
	for depth := 0; ; depth++ {
		if depth > 64 {
			return nil, fmt.Errorf("disk chain from %s: more than 64 links (a loop?)", top)
		}
		b, err := os.ReadFile(cur)
		if err != nil {
			return nil, fmt.Errorf("disk chain from %s: %w", top, err)
		}
		d, err := vmdk.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("disk chain from %s: %s: %w", top, cur, err)
		}
		if len(d.Extents) != 1 {
			return nil, fmt.Errorf("disk chain from %s: %s has %d extents; the simulator makes one", top, cur, len(d.Extents))
		}
		l := layer{desc: cur, d: d, data: filepath.Join(filepath.Dir(cur), d.Extents[0].File), delta: esxi.IsDelta(d)}
		out = append(out, l)
		if !l.delta {
			return out, nil
		}
		if cur, err = h.resolveFile(filepath.Dir(cur), d.ParentFileNameHint); err != nil {
			return nil, fmt.Errorf("disk chain from %s: %w", top, err)
		}
	}
}

// dataExtents calls fn for each allocated extent of f below size, found with SEEK_DATA/SEEK_HOLE.
func dataExtents(f *os.File, size int64, fn func(off, n int64) error) error {
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("seek data in %s: %w", f.Name(), err)
		}
		if d >= size {
			return nil
		}
		hole, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole in %s: %w", f.Name(), err)
		}
		hole = min(hole, size)
		if err := fn(d, hole-d); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

// allocated reports whether the grain at off holds data in f.
func allocated(f *os.File, off int64) (bool, error) {
	d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("seek data in %s: %w", f.Name(), err)
	}
	return d < off+grainSize, nil
}

// copyExtents writes every allocated extent of src into dst at the same offsets: a delta merged
// into its parent, or a layer of an exported disk. Holes of src are left alone in dst.
func copyExtents(dst, src *os.File, size int64) error {
	buf := make([]byte, 1<<20)
	return dataExtents(src, size, func(off, n int64) error {
		for n > 0 {
			k := min(n, int64(len(buf)))
			if _, err := src.ReadAt(buf[:k], off); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read %s at %d: %w", src.Name(), off, err)
			}
			if _, err := dst.WriteAt(buf[:k], off); err != nil {
				return fmt.Errorf("write %s at %d: %w", dst.Name(), off, err)
			}
			off, n = off+k, n-k
		}
		return nil
	})
}

// exportChain writes the disk as the guest sees it through the chain into a new sparse file.
func exportChain(layers []layer, dst string) error {
	size := layers[0].d.Size()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("export disk: %w", err)
	}
	defer out.Close()
	if err := out.Truncate(size); err != nil {
		return fmt.Errorf("export disk %s: %w", dst, err)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		if err := copyLayer(out, layers[i], size); err != nil {
			return fmt.Errorf("export disk %s: %w", dst, err)
		}
	}
	return out.Sync()
}

func copyLayer(dst *os.File, l layer, size int64) error {
	src, err := os.Open(l.data)
	if err != nil {
		return err
	}
	defer src.Close()
	return copyExtents(dst, src, size)
}

// readGrain reads the grain at off as the layers (top first) show it: from the first delta that
// holds it, else from the base (zeros past its end).
func readGrain(layers []layer, off int64, buf []byte) error {
	clear(buf)
	for _, l := range layers {
		f, err := os.Open(l.data)
		if err != nil {
			return fmt.Errorf("read grain: %w", err)
		}
		has := true
		if l.delta {
			has, err = allocated(f, off)
		}
		if err == nil && has {
			_, err = f.ReadAt(buf, off)
			if errors.Is(err, io.EOF) {
				err = nil
			}
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("read grain at %d of %s: %w", off, l.data, err)
		}
		if has {
			return nil
		}
	}
	return nil
}

// writeThrough writes data at off into the top of the chain. In a delta, a grain the write covers
// only in part is first copied up from below (copy-on-write), so the delta holds whole grains.
func writeThrough(layers []layer, off int64, data []byte) error {
	size := layers[0].d.Size()
	if off < 0 || off+int64(len(data)) > size {
		return fmt.Errorf("guest write of %d bytes at %d: outside the %d-byte disk", len(data), off, size)
	}
	top := layers[0]
	f, err := os.OpenFile(top.data, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("guest write: %w", err)
	}
	defer f.Close()
	if top.delta {
		buf := make([]byte, grainSize)
		end := off + int64(len(data))
		for g := off / grainSize * grainSize; g < end; g += grainSize {
			if g >= off && g+grainSize <= end {
				continue // fully overwritten: nothing to keep from below
			}
			has, err := allocated(f, g)
			if err != nil {
				return fmt.Errorf("guest write: %w", err)
			}
			if has {
				continue
			}
			if err := readGrain(layers[1:], g, buf); err != nil {
				return fmt.Errorf("guest write: %w", err)
			}
			n := min(int64(grainSize), size-g)
			if _, err := f.WriteAt(buf[:n], g); err != nil {
				return fmt.Errorf("guest write: copy grain %d up: %w", g, err)
			}
		}
	}
	if _, err := f.WriteAt(data, off); err != nil {
		return fmt.Errorf("guest write %s at %d: %w", top.data, off, err)
	}
	return nil
}

// checkSparse fails when the file system under dir does not report holes with SEEK_DATA: the
// simulator's deltas would then look fully allocated and copy-on-write would break.
func checkSparse(dir string) error {
	f, err := os.CreateTemp(dir, "sparse-check-")
	if err != nil {
		return fmt.Errorf("check sparse files: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Truncate(1 << 20); err != nil {
		return fmt.Errorf("check sparse files: %w", err)
	}
	if _, err := f.WriteAt(make([]byte, grainSize), 512<<10); err != nil {
		return fmt.Errorf("check sparse files: %w", err)
	}
	d, err := unix.Seek(int(f.Fd()), 0, unix.SEEK_DATA)
	if err != nil || d != 512<<10 {
		return fmt.Errorf("the file system under %s does not keep holes (SEEK_DATA gave %d, %v); the simulator needs sparse files (ext4, xfs, tmpfs)", dir, d, err)
	}
	return nil
}

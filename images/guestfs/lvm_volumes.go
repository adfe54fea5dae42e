package guestfs

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// readLVM lists the logical volumes of the volume group whose physical volume is r. A volume
// that is linear (one stripe per segment) and lies wholly on this physical volume is readable;
// any other is listed with a Problem.
func readLVM(r io.ReaderAt, size int64) ([]*Volume, error) {
	pv, err := readPVLabel(r, size)
	if err != nil {
		return nil, err
	}
	cfg, err := parseLVMConfig(pv.metadata)
	if err != nil {
		return nil, err
	}
	var vgName string
	var vg *lvmSection
	for _, k := range cfg.keys {
		if s := cfg.section(k); s != nil {
			vgName, vg = k, s
			break
		}
	}
	if vg == nil {
		return nil, errors.New("metadata names no volume group")
	}
	extentSectors, ok := vg.num("extent_size")
	if !ok || extentSectors <= 0 || extentSectors > 1<<32 {
		return nil, fmt.Errorf("volume group %s: extent size %d sectors is invalid", vgName, extentSectors)
	}
	extent := extentSectors * sector
	pvName, peStart, err := findPV(vg, pv.uuid)
	if err != nil {
		return nil, fmt.Errorf("volume group %s: %w", vgName, err)
	}
	lvs := vg.section("logical_volumes")
	if lvs == nil {
		return nil, nil
	}
	var out []*Volume
	for _, name := range lvs.keys {
		lv := lvs.section(name)
		if lv == nil || !slices.Contains(lv.list("status"), any("VISIBLE")) {
			continue // pool metadata, snapshot internals: not volumes a guest mounts
		}
		v := &Volume{Name: vgName + "/" + name, Scheme: "lvm", Type: "linear"}
		segs, err := lvSegments(lv, pvName, peStart, extent, size)
		if err != nil {
			v.Problem = err.Error()
		} else {
			v.Start = peStart + segs[0].pvOff
			for _, s := range segs {
				v.Size += s.length
			}
			v.r = &concatReader{r: r, segs: segs, size: v.Size}
		}
		out = append(out, v)
	}
	return out, nil
}

// findPV returns the name ("pv0") and first-extent byte offset of the physical volume uuid.
func findPV(vg *lvmSection, uuid string) (string, int64, error) {
	pvs := vg.section("physical_volumes")
	if pvs == nil {
		return "", 0, errors.New("no physical_volumes section")
	}
	for _, k := range pvs.keys {
		p := pvs.section(k)
		if p == nil || strings.ReplaceAll(p.str("id"), "-", "") != uuid {
			continue
		}
		pe, ok := p.num("pe_start")
		if !ok || pe < 0 || pe > 1<<40 {
			return "", 0, fmt.Errorf("physical volume %s: pe_start %d is invalid", k, pe)
		}
		return k, pe * sector, nil
	}
	return "", 0, fmt.Errorf("this physical volume (%s) is not in the metadata", uuid)
}

// maxLVSegments bounds a logical volume's segment list (LVM itself rarely writes more than a few).
const maxLVSegments = 4096

type lvSegment struct {
	lvOff, pvOff, length int64 // byte offsets in the logical volume, from pe_start on the PV; length
}

func lvSegments(lv *lvmSection, pvName string, peStart, extent, pvSize int64) ([]lvSegment, error) {
	var segs []lvSegment
	for _, k := range lv.keys {
		s := lv.section(k)
		if s == nil || !strings.HasPrefix(k, "segment") {
			continue
		}
		if len(segs) >= maxLVSegments {
			return nil, fmt.Errorf("more than %d segments", maxLVSegments)
		}
		if t := s.str("type"); t != "striped" {
			return nil, fmt.Errorf("segment type %q is not readable (only linear volumes are); restore the whole disk", t)
		}
		if n, _ := s.num("stripe_count"); n != 1 {
			return nil, fmt.Errorf("striped over %d physical volumes (only linear volumes are readable); restore the whole disk", n)
		}
		st := s.list("stripes")
		first, _ := s.num("start_extent")
		count, _ := s.num("extent_count")
		if len(st) != 2 {
			return nil, fmt.Errorf("%s: stripes list is malformed", k)
		}
		name, _ := st[0].(string)
		pe, ok := st[1].(int64)
		if name != pvName {
			return nil, fmt.Errorf("%s lies on physical volume %s, not on this partition (only volumes on one physical volume are readable)", k, name)
		}
		limit := (pvSize - peStart) / extent
		if !ok || first < 0 || count <= 0 || pe < 0 || pe > limit || count > limit-pe || first > 1<<40 {
			return nil, fmt.Errorf("%s: extents %d+%d at %d do not fit the physical volume", k, first, count, pe)
		}
		segs = append(segs, lvSegment{lvOff: first * extent, pvOff: pe * extent, length: count * extent})
	}
	if len(segs) == 0 {
		return nil, errors.New("no segments")
	}
	slices.SortFunc(segs, func(a, b lvSegment) int { return int(min(max(a.lvOff-b.lvOff, -1), 1)) })
	var at int64
	for _, s := range segs {
		if s.lvOff != at {
			return nil, fmt.Errorf("segments leave a gap or overlap at byte %d", at)
		}
		at += s.length
	}
	for i := range segs {
		segs[i].pvOff += peStart
	}
	return segs, nil
}

// concatReader reads a logical volume made of segments of a physical volume.
type concatReader struct {
	r    io.ReaderAt
	segs []lvSegment
	size int64
}

func (c *concatReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for len(p) > 0 {
		if off >= c.size {
			return n, io.EOF
		}
		i, _ := slices.BinarySearchFunc(c.segs, off, func(s lvSegment, o int64) int {
			switch {
			case s.lvOff+s.length <= o:
				return -1
			case s.lvOff > o:
				return 1
			}
			return 0
		})
		s := c.segs[i]
		k := min(int64(len(p)), s.lvOff+s.length-off)
		m, err := c.r.ReadAt(p[:k], s.pvOff+off-s.lvOff)
		n += m
		if err != nil {
			return n, err
		}
		p, off = p[k:], off+k
	}
	return n, nil
}

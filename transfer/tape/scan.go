package tape

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/snapferry/snapferry/transfer/tape/device"
)

// VolumeScan is what reading a whole volume found.
type VolumeScan struct {
	Label    Label
	Files    int64      // tape files, the label's included
	Sets     []SetEntry // set parts on this volume (Complete when their trailer is here)
	Copy     *Catalog   // the newest catalog copy on the volume, if any
	Problems []error    // damaged records (with volume, file, record) and other surprises
}

// ScanVolume reads the loaded volume from label to end of data.
func ScanVolume(ctx context.Context, dev device.Device) (*VolumeScan, error) {
	l, err := ReadLabel(dev)
	if err != nil {
		return nil, err
	}
	vs := &VolumeScan{Label: l, Files: 1}
	buf := make([]byte, l.BlockSize)
	for file := int64(1); ; file++ {
		end, err := vs.scanFile(ctx, dev, buf, file)
		if err != nil {
			return vs, err
		}
		if end {
			return vs, nil
		}
		vs.Files = file + 1
	}
}

// scanFile reads one tape file; it reports whether the end of data was reached instead.
func (vs *VolumeScan) scanFile(ctx context.Context, dev device.Device, buf []byte, file int64) (bool, error) {
	var catalog []byte
	var problems int
	for r := int64(0); ; r++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		n, err := dev.ReadRecord(buf)
		if errors.Is(err, device.ErrEndOfData) {
			return true, nil
		}
		if errors.Is(err, device.ErrFilemark) {
			if catalog != nil {
				var c Catalog
				if err := json.Unmarshal(catalog, &c); err != nil {
					vs.Problems = append(vs.Problems, &RecordError{Volume: vs.Label.Volume, File: file, Err: fmt.Errorf("catalog copy: %w", err)})
				} else {
					vs.Copy = &c
				}
			}
			return false, nil
		}
		at := func(err error) error { return &RecordError{Volume: vs.Label.Volume, File: file, Record: r, Err: err} }
		if err != nil {
			return false, at(err)
		}
		rec, err := decodeRecord(buf[:n])
		if err != nil {
			// Keep going: one bad record should not hide the sets after it.
			if problems++; problems <= 100 {
				vs.Problems = append(vs.Problems, at(err))
			}
			continue
		}
		switch rec.Type {
		case RecSetHeader:
			var h SetHeader
			if err := json.Unmarshal(rec.Payload, &h); err != nil {
				vs.Problems = append(vs.Problems, at(fmt.Errorf("decode set header: %w", err)))
				continue
			}
			vs.Sets = append(vs.Sets, SetEntry{ID: h.Set, Pool: h.Pool, Host: h.Host, Source: h.Source, Kind: h.Kind,
				Time: h.Time, JobID: h.JobID, Tags: h.Tags,
				Parts: []Part{{Part: h.Part, Volume: vs.Label.Volume, File: file, Stream: rec.Stream, Offset: h.Offset}}})
		case RecTrailer:
			var tr SetTrailer
			if err := json.Unmarshal(rec.Payload, &tr); err != nil {
				vs.Problems = append(vs.Problems, at(fmt.Errorf("decode set trailer: %w", err)))
				continue
			}
			for i := range vs.Sets {
				if vs.Sets[i].ID == tr.Set && vs.Sets[i].Parts[0].File == file {
					s := &vs.Sets[i]
					s.Complete, s.Snapshot, s.Bytes, s.Blobs, s.Raw, s.Checksum = true, tr.Snapshot, tr.Bytes, tr.Blobs, tr.Raw, tr.Checksum
				}
			}
		case RecCatalog:
			catalog = append(catalog, rec.Payload...)
		case RecData:
		default:
			vs.Problems = append(vs.Problems, at(fmt.Errorf("unexpected %s record", rec.Type)))
		}
	}
}

// MergeScan makes the catalog agree with a scanned volume: what the volume holds replaces what
// the catalog said about it, and the volume's catalog copy fills in the volumes not scanned.
func (c *Catalog) MergeScan(vs *VolumeScan) {
	id := vs.Label.Volume
	if vs.Copy != nil {
		for _, v := range vs.Copy.Volumes {
			if v.ID != id && c.Volume(v.ID) == nil {
				c.Volumes = append(c.Volumes, v)
			}
		}
		for _, s := range vs.Copy.Sets {
			var parts []Part
			for _, p := range s.Parts {
				if p.Volume != id {
					parts = append(parts, p)
				}
			}
			if s.Complete || len(parts) > 0 {
				s.Parts = parts
				c.mergeSet(s)
			}
		}
	}
	for i := range c.Sets {
		kept := c.Sets[i].Parts[:0]
		for _, p := range c.Sets[i].Parts {
			if p.Volume != id {
				kept = append(kept, p)
			}
		}
		c.Sets[i].Parts = kept
	}
	full := false
	if v := c.Volume(id); v != nil {
		full = v.Full
	}
	c.PutVolume(Volume{ID: id, Pool: vs.Label.Pool, Sequence: vs.Label.Sequence, BlockSize: vs.Label.BlockSize,
		Labeled: vs.Label.Labeled, Files: vs.Files, Full: full})
	for _, s := range vs.Sets {
		c.mergeSet(s)
	}
	kept := c.Sets[:0]
	for _, s := range c.Sets {
		if len(s.Parts) > 0 {
			kept = append(kept, s)
		}
	}
	c.Sets = kept
}

// Scan reads the volume in the drive and merges what it holds into the catalog file (creating
// it when it is gone). It returns the scan and the catalog as stored.
func (d *Drive) Scan(ctx context.Context) (*VolumeScan, *Catalog, error) {
	dev, err := d.open(true)
	if err != nil {
		return nil, nil, err
	}
	defer dev.Close()
	vs, err := ScanVolume(ctx, dev)
	if err != nil {
		return vs, nil, fmt.Errorf("scan %s: %w", d.Path, err)
	}
	cat, err := d.Catalog.Update(func(c *Catalog) error { c.MergeScan(vs); return nil })
	return vs, cat, err
}

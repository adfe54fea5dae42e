package tape

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/snapferry/snapferry/transfer/tape/device"
)

// ReadSet streams save set e to w: for each part it loads the volume (through the changer when
// another one is in the drive), skips straight to the part's file and reads that file's records
// of the set's stream. Every record's checksum is checked, and at the end the stream's length and
// BLAKE3 against the trailer. Errors about the media name the volume, file and record.
func (d *Drive) ReadSet(ctx context.Context, e *SetEntry, w io.Writer) error {
	if !e.Complete {
		return fmt.Errorf("save set %s (%s from %s) is incomplete on tape: its backup did not finish", e.ID, e.Source, e.Host)
	}
	parts := append([]Part(nil), e.Parts...)
	sort.Slice(parts, func(i, j int) bool { return parts[i].Part < parts[j].Part })
	for i, p := range parts {
		if p.Part != i+1 {
			return fmt.Errorf("save set %s: the catalog lacks part %d; scan the volume that holds it with `snapferry tape scan`", e.ID, i+1)
		}
	}
	rd := &setReader{e: e, hash: newStreamHash(), w: w}
	for _, p := range parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		done, err := d.readPart(ctx, rd, p)
		if err != nil {
			return fmt.Errorf("read save set %s: %w", e.ID, err)
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("read save set %s: its last known part ends without a trailer; scan the volume that follows %s with `snapferry tape scan`",
		e.ID, parts[len(parts)-1].Volume)
}

type setReader struct {
	e     *SetEntry
	hash  *streamHash
	w     io.Writer
	bytes int64
	seq   uint64
	recs  int64
}

// readPart reads one part; it reports whether the trailer was reached.
func (d *Drive) readPart(ctx context.Context, rd *setReader, p Part) (bool, error) {
	dev, l, err := d.loadVolume(ctx, VolumeRequest{Pool: rd.e.Pool, Volume: p.Volume, Reason: "read"}, true)
	if err != nil {
		return false, err
	}
	defer dev.Close()
	if p.File < 1 {
		return false, fmt.Errorf("volume %s: part %d names file %d; the label file holds no data", p.Volume, p.Part, p.File)
	}
	if err := dev.SkipFiles(int(p.File - 1)); err != nil {
		return false, fmt.Errorf("volume %s: skip to file %d: %w", p.Volume, p.File, err)
	}
	buf := make([]byte, l.BlockSize)
	sawHeader := false
	for r := int64(0); ; r++ {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		at := func(err error) error { return &RecordError{Volume: l.Volume, File: p.File, Record: r, Err: err} }
		n, err := dev.ReadRecord(buf)
		if errors.Is(err, device.ErrFilemark) || errors.Is(err, device.ErrEndOfData) {
			if !sawHeader {
				return false, at(fmt.Errorf("no header of set %s stream %d in this file; the catalog is stale, rebuild it with `snapferry tape scan`", rd.e.ID, p.Stream))
			}
			return false, nil // the part ends with the volume; the next part goes on
		}
		if err != nil {
			return false, at(err)
		}
		if n != l.BlockSize {
			return false, at(fmt.Errorf("record of %d bytes on a volume of %d-byte blocks", n, l.BlockSize))
		}
		rec, err := decodeRecord(buf[:n])
		if err != nil {
			return false, at(err)
		}
		if rec.Stream != p.Stream {
			continue // another set multiplexed into this file
		}
		done, err := rd.take(rec, p, &sawHeader, at)
		if done || err != nil {
			return done, err
		}
	}
}

// take takes one record of this set's stream: the set header (checked against the catalog),
// data (written on, in sequence), or the trailer (checked against what was read; done). Records
// before this set's header belong to an earlier set that used the stream number. at wraps an
// error with the record's place.
func (rd *setReader) take(rec Record, p Part, sawHeader *bool, at func(error) error) (done bool, err error) {
	switch rec.Type {
	case RecSetHeader:
		var h SetHeader
		if err := json.Unmarshal(rec.Payload, &h); err != nil {
			return false, at(fmt.Errorf("decode set header: %w", err))
		}
		if h.Set != rd.e.ID || h.Part != p.Part || h.Offset != rd.bytes {
			return false, at(fmt.Errorf("stream %d holds set %s part %d at offset %d, the catalog expects set %s part %d at offset %d; rebuild the catalog with `snapferry tape scan`",
				p.Stream, h.Set, h.Part, h.Offset, rd.e.ID, p.Part, rd.bytes))
		}
		*sawHeader = true
	case RecData:
		if !*sawHeader {
			return false, nil // a set that reused this stream number earlier in the file
		}
		if rec.Seq < rd.seq {
			return false, at(fmt.Errorf("record sequence %d after %d: records out of order", rec.Seq, rd.seq))
		}
		rd.seq = rec.Seq + 1
		rd.hash.Write(rec.Payload)
		rd.bytes += int64(len(rec.Payload))
		rd.recs++
		if _, err := rd.w.Write(rec.Payload); err != nil {
			return false, err
		}
	case RecTrailer:
		if !*sawHeader {
			return false, nil
		}
		var tr SetTrailer
		if err := json.Unmarshal(rec.Payload, &tr); err != nil {
			return false, at(fmt.Errorf("decode set trailer: %w", err))
		}
		if tr.Bytes != rd.bytes || tr.Records != rd.recs || tr.Checksum != rd.hash.Sum() {
			return false, at(fmt.Errorf("save set %s does not match its trailer: read %d bytes in %d records, trailer says %d in %d (checksum %s vs %s)",
				rd.e.ID, rd.bytes, rd.recs, tr.Bytes, tr.Records, rd.hash.Sum(), tr.Checksum))
		}
		return true, nil
	default:
		return false, at(fmt.Errorf("unexpected %s record in a save set's file", rec.Type))
	}
	return false, nil
}

package tape

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/snapferry/snapferry/transfer/tape/device"
)

// FormatVersion is the media format this build writes and the newest it reads.
const FormatVersion = 1

// Errors a writer gets for a tape it must not write to.
var (
	ErrUnlabeled = errors.New("tape is not labeled")
	ErrWrongPool = errors.New("tape belongs to another pool")
	ErrLabeled   = errors.New("tape is already labeled")
)

// Label is the first record of a volume (alone in file 0). BlockSize is the size of every
// record on the volume.
type Label struct {
	Format    int       `json:"format"`
	Volume    string    `json:"volume"`
	Pool      string    `json:"pool"`
	Sequence  int       `json:"sequence"`
	BlockSize int       `json:"block_size"`
	Labeled   time.Time `json:"labeled"`
	Host      string    `json:"host,omitempty"`
}

// NewVolumeID returns a fresh volume id: "SF" and 8 hex digits, short enough for a barcode
// label and unique enough for a shop's shelf.
func NewVolumeID() string {
	var b [4]byte
	rand.Read(b[:])
	return "SF" + hex.EncodeToString(b[:])
}

// WriteLabel rewinds and writes a label (and its filemark), making the tape an empty volume.
// Unless force is set it refuses a tape that already carries a snapferry label.
func WriteLabel(ctx context.Context, dev device.Device, l Label, force bool) error {
	if l.BlockSize == 0 {
		l.BlockSize = DefaultBlockSize
	}
	if l.BlockSize < MinBlockSize || l.BlockSize > MaxBlockSize || l.BlockSize%512 != 0 {
		return fmt.Errorf("label %s: block size %d must be a multiple of 512 from %d to %d", dev.Name(), l.BlockSize, MinBlockSize, MaxBlockSize)
	}
	if l.Pool == "" || l.Volume == "" {
		return fmt.Errorf("label %s: pool and volume id are required", dev.Name())
	}
	if !force {
		old, err := ReadLabel(dev)
		switch {
		case err == nil:
			return fmt.Errorf("label %s: %w as volume %s of pool %s; pass --force to erase it", dev.Name(), ErrLabeled, old.Volume, old.Pool)
		case !errors.Is(err, ErrUnlabeled):
			return fmt.Errorf("label %s: %w", dev.Name(), err)
		}
	}
	l.Format = FormatVersion
	payload, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("label %s: %w", dev.Name(), err)
	}
	buf := make([]byte, l.BlockSize)
	if err := encodeRecord(buf, Record{Type: RecLabel, Payload: payload}); err != nil {
		return fmt.Errorf("label %s: %w", dev.Name(), err)
	}
	if err := dev.Rewind(); err != nil {
		return fmt.Errorf("label %s: %w", dev.Name(), err)
	}
	if err := dev.WriteRecord(buf); err != nil {
		return fmt.Errorf("label %s: %w", dev.Name(), err)
	}
	if err := dev.WriteFilemark(); err != nil {
		return fmt.Errorf("label %s: %w", dev.Name(), err)
	}
	return nil
}

// ReadLabel rewinds and reads the volume label, leaving the head at the start of file 1. A blank
// tape, or one written by something else, gives ErrUnlabeled.
func ReadLabel(dev device.Device) (Label, error) {
	if err := dev.Rewind(); err != nil {
		return Label{}, fmt.Errorf("read label of %s: %w", dev.Name(), err)
	}
	buf := make([]byte, MaxBlockSize)
	n, err := dev.ReadRecord(buf)
	switch {
	case errors.Is(err, device.ErrEndOfData), errors.Is(err, device.ErrFilemark), errors.Is(err, device.ErrTooLarge):
		return Label{}, fmt.Errorf("%s: %w; run `snapferry tape label` first", dev.Name(), ErrUnlabeled)
	case err != nil:
		return Label{}, fmt.Errorf("read label of %s: %w", dev.Name(), err)
	}
	rec, err := decodeRecord(buf[:n])
	if errors.Is(err, ErrNotFormat) || err == nil && rec.Type != RecLabel {
		return Label{}, fmt.Errorf("%s: %w (its first record is not a snapferry label); run `snapferry tape label` first", dev.Name(), ErrUnlabeled)
	}
	if err != nil {
		return Label{}, &RecordError{Volume: dev.Name(), File: 0, Record: 0, Err: err}
	}
	var l Label
	if err := json.Unmarshal(rec.Payload, &l); err != nil {
		return Label{}, &RecordError{Volume: dev.Name(), Err: fmt.Errorf("decode label: %w", err)}
	}
	if l.Format > FormatVersion {
		return Label{}, fmt.Errorf("%s: volume %s has media format %d, newer than this build's %d; use a newer snapferry", dev.Name(), l.Volume, l.Format, FormatVersion)
	}
	if l.BlockSize != n {
		return Label{}, &RecordError{Volume: l.Volume, Err: fmt.Errorf("label says block size %d but its record has %d bytes", l.BlockSize, n)}
	}
	if _, err := dev.ReadRecord(buf); !errors.Is(err, device.ErrFilemark) {
		return Label{}, &RecordError{Volume: l.Volume, Record: 1, Err: fmt.Errorf("no filemark after the label (%v)", err)}
	}
	return l, nil
}

package tape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/snapferry/snapferry/transfer/tape/device"
)

// Drive is a tape drive together with what the tape host knows about it: its catalog, how to
// get another tape loaded, and its name for messages. Label, Begin (write a session), ReadSet
// and Scan all go through it.
type Drive struct {
	Path     string
	Capacity int64 // size of a virtual tape created by Label (0: unlimited)
	Changer  Changer
	Catalog  *CatalogFile
	Host     string
	Log      io.Writer // warnings (nil: dropped)
	Now      func() time.Time
	// Open opens the device (default device.Open); tests wrap it.
	Open func(path string, o device.Options) (device.Device, error)
}

func (d *Drive) open(readOnly bool) (device.Device, error) {
	open := d.Open
	if open == nil {
		open = device.Open
	}
	return open(d.Path, device.Options{ReadOnly: readOnly, Capacity: d.Capacity})
}

func (d *Drive) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d *Drive) warn(format string, args ...any) {
	if d.Log != nil {
		fmt.Fprintf(d.Log, "warning: "+format+"\n", args...)
	}
}

// LabelOptions for Drive.Label.
type LabelOptions struct {
	Pool      string
	Volume    string // "" picks a new id
	Sequence  int    // 0: the next number of the pool in the catalog
	BlockSize int    // 0: DefaultBlockSize
	Force     bool   // erase a tape that has a label
}

// Label writes a new label and records the volume in the catalog (forgetting any sets the
// catalog had on a volume of that id).
func (d *Drive) Label(ctx context.Context, o LabelOptions) (Label, error) {
	if o.Pool == "" {
		o.Pool = "default"
	}
	if o.Volume == "" {
		o.Volume = NewVolumeID()
	}
	cat, err := d.Catalog.Load()
	if err != nil {
		return Label{}, err
	}
	if o.Sequence == 0 {
		o.Sequence = cat.NextSequence(o.Pool)
	}
	dev, err := d.open(false)
	if err != nil {
		return Label{}, err
	}
	defer dev.Close()
	l := Label{Volume: o.Volume, Pool: o.Pool, Sequence: o.Sequence, BlockSize: o.BlockSize, Labeled: d.now(), Host: d.Host}
	if l.BlockSize == 0 {
		l.BlockSize = DefaultBlockSize
	}
	if err := WriteLabel(ctx, dev, l, o.Force); err != nil {
		return Label{}, err
	}
	if _, err := d.Catalog.Update(func(c *Catalog) error {
		c.Relabel(Volume{ID: l.Volume, Pool: l.Pool, Sequence: l.Sequence, BlockSize: l.BlockSize, Labeled: l.Labeled, Files: 1})
		return nil
	}); err != nil {
		return l, err
	}
	return l, dev.Close()
}

// loadVolume opens the drive and makes sure it holds the wanted volume (any volume of pool with
// room when want is ""), asking the changer otherwise. The head is after the label.
func (d *Drive) loadVolume(ctx context.Context, req VolumeRequest, readOnly bool) (device.Device, Label, error) {
	req.Device = d.Path
	for attempt := 0; ; attempt++ {
		dev, err := d.open(readOnly)
		if err != nil {
			return nil, Label{}, err
		}
		l, err := ReadLabel(dev)
		if err == nil {
			err = d.suits(l, req)
		}
		if err == nil {
			return dev, l, nil
		}
		dev.Close()
		if !errors.Is(err, errWrongVolume) && !errors.Is(err, ErrUnlabeled) && !errors.Is(err, ErrWrongPool) || attempt >= 3 {
			return nil, Label{}, err
		}
		if d.Changer == nil {
			return nil, Label{}, fmt.Errorf("%w; load %s into %s, or pass --changer=CMD", err, req, d.Path)
		}
		if cerr := d.Changer(ctx, req); cerr != nil {
			return nil, Label{}, fmt.Errorf("%v; then the changer failed: %w", err, cerr)
		}
	}
}

var errWrongVolume = errors.New("the drive holds another volume")

// suits checks a loaded volume against a request.
func (d *Drive) suits(l Label, req VolumeRequest) error {
	if l.Pool != req.Pool && req.Pool != "" {
		return fmt.Errorf("%s holds volume %s of pool %q, not pool %q: %w (load a tape of pool %q or label one with --pool=%s)",
			d.Path, l.Volume, l.Pool, req.Pool, ErrWrongPool, req.Pool, req.Pool)
	}
	if req.Volume != "" && l.Volume != req.Volume {
		return fmt.Errorf("%s holds volume %s: %w, %s is needed", d.Path, l.Volume, errWrongVolume, req.Volume)
	}
	if req.Reason == "write" {
		if l.Volume == req.Full {
			return fmt.Errorf("%s still holds the full volume %s: %w", d.Path, l.Volume, errWrongVolume)
		}
		if cat, err := d.Catalog.Load(); err == nil {
			if v := cat.Volume(l.Volume); v != nil && v.Full {
				return fmt.Errorf("%s holds volume %s, which the catalog records as full: %w", d.Path, l.Volume, errWrongVolume)
			}
		}
	}
	return nil
}

package tape

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/snapferry/snapferry/transfer/tape/device"
)

// Session writes save sets to the volumes of one pool, starting at the end of the data on the
// loaded volume. Sets open at the same time share tape files, each on its own stream
// (multiplexing); a tape file ends with a filemark when its last open set is finished. When a
// volume fills up, the file is closed, the changer loads the next volume, and every open set
// goes on there with a continuation header. Close writes a copy of the catalog as the last file.
//
// Safe for concurrent use by one goroutine per SetWriter.
type Session struct {
	d    *Drive
	ctx  context.Context
	pool string

	mu         sync.Mutex
	dev        device.Device
	label      Label
	file       int64 // number of the tape file being written (or the next one)
	inFile     bool  // records were written to file since its last filemark
	open       []*SetWriter
	nextStream uint32
	buf        []byte
	wrote      bool
	err        error // sticky: after a device error nothing more is written
	closed     bool
}

// Begin starts a session on the loaded volume of pool. An unlabeled tape or one of another
// pool is refused (or swapped by the changer when there is one).
func (d *Drive) Begin(ctx context.Context, pool string) (*Session, error) {
	if pool == "" {
		pool = "default"
	}
	s := &Session{d: d, ctx: ctx, pool: pool}
	if err := s.load(VolumeRequest{Pool: pool, Reason: "write"}); err != nil {
		return nil, fmt.Errorf("start tape session on %s: %w", d.Path, err)
	}
	return s, nil
}

// load opens the right volume, moves to the end of its data and records it in the catalog.
func (s *Session) load(req VolumeRequest) error {
	dev, l, err := s.d.loadVolume(s.ctx, req, false)
	if err != nil {
		return err
	}
	if err := dev.SeekEnd(); err != nil {
		dev.Close()
		return fmt.Errorf("volume %s: %w", l.Volume, err)
	}
	st, err := dev.Status()
	if err != nil {
		dev.Close()
		return fmt.Errorf("volume %s: %w", l.Volume, err)
	}
	if st.Block != 0 {
		// A session that died mid-file left it open; close it so the new file starts clean.
		if err := dev.WriteFilemark(); err != nil {
			dev.Close()
			return fmt.Errorf("volume %s: close the unfinished last file: %w", l.Volume, err)
		}
		st.File++
	}
	s.dev, s.label, s.file, s.inFile = dev, l, st.File, false
	s.buf = make([]byte, l.BlockSize)
	_, err = s.d.Catalog.Update(func(c *Catalog) error {
		v := c.Volume(l.Volume)
		if v == nil {
			c.PutVolume(Volume{ID: l.Volume, Pool: l.Pool, Sequence: l.Sequence, BlockSize: l.BlockSize, Labeled: l.Labeled})
			v = c.Volume(l.Volume)
		}
		v.Files = s.file
		return nil
	})
	return err
}

// Label is the volume being written.
func (s *Session) Label() Label {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.label
}

// BeginSet opens a save set on a new stream. h.Set is filled in when empty.
func (s *Session) BeginSet(h SetHeader) (*SetWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	if h.Set == "" {
		h.Set = NewSetID()
	}
	if h.Time.IsZero() {
		h.Time = s.d.now()
	}
	h.Pool = s.pool
	s.nextStream++
	w := &SetWriter{s: s, h: h, stream: s.nextStream, pending: make([]byte, 0, len(s.buf)-RecordHeader)}
	w.hash = newStreamHash()
	s.open = append(s.open, w)
	if err := s.writeHeader(w, true); err != nil {
		s.drop(w)
		return nil, err
	}
	return w, nil
}

func (s *Session) usable() error {
	if s.closed {
		return errors.New("tape session is closed")
	}
	return s.err
}

// writeHeader writes w's header for its next part on the current volume and records the part.
func (s *Session) writeHeader(w *SetWriter, mayspan bool) error {
	payload := func() ([]byte, error) {
		h := w.h
		h.Part, h.Offset, h.Stream, h.Volume = w.part+1, w.bytes, w.stream, s.label.Volume
		return json.Marshal(h)
	}
	if err := s.put(w, RecSetHeader, payload, mayspan); err != nil {
		return err
	}
	w.part++
	p := Part{Part: w.part, Volume: s.label.Volume, File: s.file, Stream: w.stream, Offset: w.bytes}
	_, err := s.d.Catalog.Update(func(c *Catalog) error {
		c.mergeSet(SetEntry{ID: w.h.Set, Pool: s.pool, Host: w.h.Host, Source: w.h.Source, Kind: w.h.Kind,
			Time: w.h.Time, JobID: w.h.JobID, Tags: w.h.Tags, Parts: []Part{p}})
		return nil
	})
	return err
}

// put writes one record of w. When the volume is full it spans to the next one (unless
// mayspan is false: a continuation header that does not fit a fresh volume is an error) and
// writes the record there; payload is built again since headers name the volume.
func (s *Session) put(w *SetWriter, t RecordType, payload func() ([]byte, error), mayspan bool) error {
	for attempt := 0; ; attempt++ {
		p, err := payload()
		if err != nil {
			return s.fail(fmt.Errorf("encode %s record: %w", t, err))
		}
		if err := encodeRecord(s.buf, Record{Type: t, Stream: w.stream, Seq: w.seq, Payload: p}); err != nil {
			return s.fail(err)
		}
		err = s.dev.WriteRecord(s.buf)
		if err == nil {
			w.seq++
			s.inFile, s.wrote = true, true
			return nil
		}
		if !errors.Is(err, device.ErrEndOfMedium) || !mayspan || attempt > 0 {
			return s.fail(fmt.Errorf("volume %s file %d: %w", s.label.Volume, s.file, err))
		}
		if err := s.span(); err != nil {
			return s.fail(err)
		}
	}
}

func (s *Session) fail(err error) error {
	if s.err == nil {
		s.err = err
	}
	return err
}

// span closes the full volume's file, gets the next volume loaded and continues every open set
// that has a part on the old volume with a new header.
func (s *Session) span() error {
	full := s.label
	if err := s.dev.WriteFilemark(); err != nil {
		return fmt.Errorf("volume %s is full; closing its last file: %w", full.Volume, err)
	}
	s.file++
	if _, err := s.d.Catalog.Update(func(c *Catalog) error {
		if v := c.Volume(full.Volume); v != nil {
			v.Full, v.Files = true, s.file
		}
		return nil
	}); err != nil {
		return err
	}
	if err := s.dev.Close(); err != nil {
		return err
	}
	s.dev = nil
	if s.d.Changer == nil {
		return fmt.Errorf("volume %s of pool %s is full and no changer is set; pass --changer=CMD (or run `snapferry tape` interactively to be asked for the next tape)", full.Volume, full.Pool)
	}
	req := VolumeRequest{Device: s.d.Path, Pool: s.pool, Full: full.Volume, Reason: "write"}
	if err := s.d.Changer(s.ctx, req); err != nil {
		return fmt.Errorf("volume %s is full: %w", full.Volume, err)
	}
	if err := s.load(req); err != nil {
		return fmt.Errorf("volume %s is full; next volume: %w", full.Volume, err)
	}
	for _, o := range s.open {
		if o.part > 0 {
			if err := s.writeHeader(o, false); err != nil {
				return fmt.Errorf("continue set %s on volume %s: %w", o.h.Set, s.label.Volume, err)
			}
		}
	}
	return nil
}

// drop removes w from the open sets and closes the tape file when it was the last one.
func (s *Session) drop(w *SetWriter) error {
	for i, o := range s.open {
		if o == w {
			s.open = append(s.open[:i], s.open[i+1:]...)
			break
		}
	}
	if len(s.open) > 0 || !s.inFile || s.dev == nil {
		return nil
	}
	if err := s.dev.WriteFilemark(); err != nil {
		return s.fail(fmt.Errorf("volume %s: end file %d: %w", s.label.Volume, s.file, err))
	}
	s.file++
	s.inFile = false
	s.nextStream = 0
	return nil
}

// Close aborts sets still open, writes the catalog copy (when this session wrote anything) and
// releases the drive.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for len(s.open) > 0 {
		s.drop(s.open[0])
	}
	if s.dev == nil {
		return s.err
	}
	err := s.err
	if err == nil && s.wrote {
		err = s.writeCatalogCopy()
	}
	if cerr := s.dev.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeCatalogCopy stores the whole catalog as one tape file, so `tape scan` of this volume alone
// also learns about the other volumes.
func (s *Session) writeCatalogCopy() error {
	cat, err := s.d.Catalog.Update(func(c *Catalog) error {
		if v := c.Volume(s.label.Volume); v != nil {
			v.Files = s.file + 1
		}
		return nil
	})
	if err != nil {
		return err
	}
	b, err := json.Marshal(cat)
	if err != nil {
		return fmt.Errorf("encode catalog copy: %w", err)
	}
	room := len(s.buf) - RecordHeader
	for seq := uint64(0); len(b) > 0 || seq == 0; seq++ {
		n := min(room, len(b))
		if err := encodeRecord(s.buf, Record{Type: RecCatalog, Seq: seq, Payload: b[:n]}); err != nil {
			return err
		}
		if err := s.dev.WriteRecord(s.buf); err != nil {
			if errors.Is(err, device.ErrEndOfMedium) {
				s.d.warn("volume %s is full: no room for the catalog copy (the sets on it are complete; `tape scan` still finds them)", s.label.Volume)
				break
			}
			return fmt.Errorf("write catalog copy to volume %s: %w", s.label.Volume, err)
		}
		b = b[n:]
	}
	if err := s.dev.WriteFilemark(); err != nil {
		return fmt.Errorf("write catalog copy to volume %s: %w", s.label.Volume, err)
	}
	s.file++
	return nil
}

// SetWriter is the data stream of one save set. Write cuts it into records; Finish writes the
// trailer. Not safe for concurrent use (the Encoder in front of it serializes).
type SetWriter struct {
	s       *Session
	h       SetHeader
	stream  uint32
	part    int    // parts written so far
	seq     uint64 // records written so far, all parts
	pending []byte
	bytes   int64
	records int64
	hash    *streamHash
	done    bool
}

// ID is the save set id.
func (w *SetWriter) ID() string { return w.h.Set }

func (w *SetWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(cap(w.pending)-len(w.pending), len(p))
		w.pending = append(w.pending, p[:k]...)
		p, n = p[k:], n+k
		if len(w.pending) == cap(w.pending) {
			if err := w.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *SetWriter) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	data := w.pending
	if err := s.put(w, RecData, func() ([]byte, error) { return data, nil }, true); err != nil {
		return err
	}
	w.hash.Write(data)
	w.bytes += int64(len(data))
	w.records++
	w.pending = w.pending[:0]
	return nil
}

// Finish writes what is buffered and the trailer, and records the complete set in the catalog.
func (w *SetWriter) Finish(info SetInfo) (SetEntry, error) {
	if err := w.flush(); err != nil {
		w.Abort()
		return SetEntry{}, err
	}
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	w.done = true
	tr := SetTrailer{Set: w.h.Set, Snapshot: info.Snapshot, Records: w.records, Bytes: w.bytes,
		Blobs: info.Blobs, Raw: info.Raw, Checksum: w.hash.Sum()}
	err := s.usable()
	if err == nil {
		err = s.put(w, RecTrailer, func() ([]byte, error) { return json.Marshal(tr) }, true)
	}
	if derr := s.drop(w); err == nil {
		err = derr
	}
	if err != nil {
		return SetEntry{}, fmt.Errorf("finish save set %s: %w", w.h.Set, err)
	}
	cat, err := s.d.Catalog.Update(func(c *Catalog) error {
		c.mergeSet(SetEntry{ID: w.h.Set, Snapshot: tr.Snapshot, Pool: s.pool, Host: w.h.Host, Source: w.h.Source,
			Kind: w.h.Kind, Time: w.h.Time, JobID: w.h.JobID, Tags: w.h.Tags, Complete: true,
			Bytes: tr.Bytes, Blobs: tr.Blobs, Raw: tr.Raw, Checksum: tr.Checksum})
		return nil
	})
	if err != nil {
		return SetEntry{}, err
	}
	return *cat.Set(w.h.Set), nil
}

// Abort ends the set without a trailer: it stays in the catalog as incomplete and restores
// refuse it.
func (w *SetWriter) Abort() {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	s.drop(w)
}

package tape

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Catalog says which save set is on which volume at which file number. The tape host keeps it
// in its state folder (CatalogFile) and writes a copy to tape at the end of every session;
// Rebuild recreates it from volumes alone.
type Catalog struct {
	Version int        `json:"version"`
	Volumes []Volume   `json:"volumes"`
	Sets    []SetEntry `json:"sets"`
}

// Volume is one labeled tape.
type Volume struct {
	ID        string    `json:"id"`
	Pool      string    `json:"pool"`
	Sequence  int       `json:"sequence"`
	BlockSize int       `json:"block_size"`
	Labeled   time.Time `json:"labeled"`
	Files     int64     `json:"files"` // tape files after the label that hold data or catalog copies
	Full      bool      `json:"full,omitempty"`
}

// SetEntry is one save set (one snapshot of one source).
type SetEntry struct {
	ID       string    `json:"id"`
	Snapshot string    `json:"snapshot,omitempty"`
	Pool     string    `json:"pool"`
	Host     string    `json:"host"`
	Source   string    `json:"source"`
	Kind     string    `json:"kind"`
	Time     time.Time `json:"time"`
	JobID    string    `json:"job_id,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	Complete bool      `json:"complete"` // the trailer was written
	Bytes    int64     `json:"bytes,omitempty"`
	Blobs    int       `json:"blobs,omitempty"`
	Raw      int64     `json:"raw,omitempty"`
	Checksum string    `json:"checksum,omitempty"`
	Parts    []Part    `json:"parts"`
}

// Part is the piece of a save set on one volume: the file to skip to and the stream to read.
type Part struct {
	Part   int    `json:"part"`
	Volume string `json:"volume"`
	File   int64  `json:"file"`
	Stream uint32 `json:"stream"`
	Offset int64  `json:"offset"`
}

const catalogVersion = 1

// Volume returns the volume with id, or nil.
func (c *Catalog) Volume(id string) *Volume {
	for i := range c.Volumes {
		if c.Volumes[i].ID == id {
			return &c.Volumes[i]
		}
	}
	return nil
}

// Set returns the set with id, or nil.
func (c *Catalog) Set(id string) *SetEntry {
	for i := range c.Sets {
		if c.Sets[i].ID == id {
			return &c.Sets[i]
		}
	}
	return nil
}

// PutVolume adds or replaces a volume.
func (c *Catalog) PutVolume(v Volume) {
	if old := c.Volume(v.ID); old != nil {
		*old = v
		return
	}
	c.Volumes = append(c.Volumes, v)
}

// NextSequence is the sequence number for a new volume of pool.
func (c *Catalog) NextSequence(pool string) int {
	n := 0
	for _, v := range c.Volumes {
		if v.Pool == pool && v.Sequence > n {
			n = v.Sequence
		}
	}
	return n + 1
}

// Relabel forgets what was on a volume that is labeled again (its sets are gone).
func (c *Catalog) Relabel(v Volume) {
	kept := c.Sets[:0]
	for _, s := range c.Sets {
		var parts []Part
		for _, p := range s.Parts {
			if p.Volume != v.ID {
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			s.Parts = parts
			kept = append(kept, s)
		}
	}
	c.Sets = kept
	c.PutVolume(v)
}

// mergeSet adds what e knows to the catalog: parts are merged by part number, a complete
// entry's totals win.
func (c *Catalog) mergeSet(e SetEntry) {
	old := c.Set(e.ID)
	if old == nil {
		c.Sets = append(c.Sets, e)
		return
	}
	for _, p := range e.Parts {
		found := false
		for i := range old.Parts {
			if old.Parts[i].Part == p.Part {
				old.Parts[i], found = p, true
			}
		}
		if !found {
			old.Parts = append(old.Parts, p)
		}
	}
	sort.Slice(old.Parts, func(i, j int) bool { return old.Parts[i].Part < old.Parts[j].Part })
	if e.Complete && !old.Complete {
		parts := old.Parts
		*old = e
		old.Parts = parts
	}
}

// Find resolves a set id, a unique prefix of a set or snapshot id, or "latest" (the newest
// complete set, narrowed by source when given).
func (c *Catalog) Find(ref, source string) (*SetEntry, error) {
	if ref == "latest" {
		var best *SetEntry
		for i := range c.Sets {
			s := &c.Sets[i]
			if !s.Complete || source != "" && s.Source != source {
				continue
			}
			if best == nil || s.Time.After(best.Time) {
				best = s
			}
		}
		if best == nil {
			if source != "" {
				return nil, fmt.Errorf("no complete save set of %s in the tape catalog; see `snapferry tape list`", source)
			}
			return nil, errors.New("no complete save set in the tape catalog; see `snapferry tape list`")
		}
		return best, nil
	}
	if ref == "" {
		return nil, errors.New("no save set given: pass a set or snapshot id, a unique prefix, or latest")
	}
	var hits []*SetEntry
	for i := range c.Sets {
		s := &c.Sets[i]
		if strings.HasPrefix(s.ID, ref) || s.Snapshot != "" && strings.HasPrefix(s.Snapshot, ref) {
			hits = append(hits, s)
		}
	}
	switch len(hits) {
	case 0:
		return nil, fmt.Errorf("save set %q is not in the tape catalog; see `snapferry tape list` (or `snapferry tape scan` after losing the catalog)", ref)
	case 1:
		return hits[0], nil
	}
	return nil, fmt.Errorf("save set %q is ambiguous (%d sets match); give more digits", ref, len(hits))
}

// CatalogFile is the catalog in the tape host's state folder. Updates take an exclusive lock
// and replace the file atomically, so concurrent serve processes and a crash never leave half
// a catalog.
type CatalogFile struct {
	Path string
}

// NewCatalogFile returns the catalog kept in stateDir/tape/catalog.json.
func NewCatalogFile(stateDir string) *CatalogFile {
	return &CatalogFile{Path: filepath.Join(stateDir, "tape", "catalog.json")}
}

// Load reads the catalog; a missing file is an empty catalog.
func (f *CatalogFile) Load() (*Catalog, error) {
	c := &Catalog{Version: catalogVersion}
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tape catalog %s: %w", f.Path, err)
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("read tape catalog %s: %w; rebuild it with `snapferry tape scan`", f.Path, err)
	}
	if c.Version > catalogVersion {
		return nil, fmt.Errorf("read tape catalog %s: version %d is newer than this build's; use a newer snapferry", f.Path, c.Version)
	}
	return c, nil
}

// Update runs fn on the current catalog under the lock and stores the result. It returns the
// catalog as stored.
func (f *CatalogFile) Update(fn func(*Catalog) error) (*Catalog, error) {
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tape catalog folder %s: %w", dir, err)
	}
	lk, err := os.OpenFile(f.Path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock tape catalog %s: %w", f.Path, err)
	}
	defer lk.Close()
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock tape catalog %s: %w", f.Path, err)
	}
	c, err := f.Load()
	if err != nil {
		return nil, err
	}
	if err := fn(c); err != nil {
		return nil, err
	}
	c.Version = catalogVersion
	sort.SliceStable(c.Sets, func(i, j int) bool { return c.Sets[i].Time.Before(c.Sets[j].Time) })
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode tape catalog: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".catalog-*")
	if err != nil {
		return nil, fmt.Errorf("write tape catalog %s: %w", f.Path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("write tape catalog %s: %w", f.Path, err)
	}
	return c, nil
}

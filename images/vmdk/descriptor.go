package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SectorSize is the unit of extent sizes in a descriptor.
const SectorSize = 512

// NoParentCID is the parentCID of a disk that has no parent (a base disk).
const NoParentCID = 0xffffffff

// Descriptor is a parsed VMDK descriptor. The typed fields mirror the lines they came from;
// change them only through the methods, which keep the lines in step.
type Descriptor struct {
	Version            int
	Encoding           string // "UTF-8" when absent is the common assumption; empty here
	CID                uint32
	ParentCID          uint32
	CreateType         string
	ParentFileNameHint string
	ChangeTrackPath    string
	Extents            []Extent
	// DDB holds the disk database, keys with their "ddb." prefix ("ddb.geometry.heads").
	DDB map[string]string

	lines []line
	crlf  bool
}

// Extent is one extent line: `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`.
type Extent struct {
	Access  string // RW, RDONLY or NOACCESS
	Sectors int64
	Type    string // VMFS, FLAT, VMFSSPARSE, SESPARSE, SPARSE, ZERO, VMFSRDM, VMFSRAW, ...
	File    string // relative to the descriptor unless absolute; empty for ZERO
	Offset  int64  // in sectors, FLAT extents only
}

// Size is the extent's size in bytes.
func (e Extent) Size() int64 { return e.Sectors * SectorSize }

// line is one original line; key is set for key=value lines, extent >= 0 for extent lines.
type line struct {
	text   string
	key    string
	extent int
}

// ErrNotDescriptor is wrapped by Parse errors for input that is not a descriptor at all (a
// binary sparse VMDK, a flat extent, some other file).
var ErrNotDescriptor = errors.New("not a VMDK descriptor")

// MaxDescriptorSize bounds what ReadDescriptor accepts: real descriptors are a few hundred
// bytes; a bigger file is a data extent passed by mistake.
const MaxDescriptorSize = 64 << 10

// Parse parses descriptor text. It accepts LF and CRLF line ends, '#' comments, blank lines,
// quoted or bare values and spaces around '='. Unknown keys are kept verbatim.
func Parse(b []byte) (*Descriptor, error) {
	if err := sniff(b); err != nil {
		return nil, err
	}
	d := &Descriptor{DDB: map[string]string{}, ParentCID: NoParentCID}
	text := string(b)
	d.crlf = strings.Contains(text, "\r\n")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.TrimSuffix(text, "\n")
	seenVersion := false
	for i, raw := range strings.Split(text, "\n") {
		l := line{text: raw, extent: -1}
		s := strings.TrimSpace(raw)
		switch {
		case s == "" || strings.HasPrefix(s, "#"):
		case isExtentLine(s):
			e, err := parseExtent(s)
			if err != nil {
				return nil, fmt.Errorf("vmdk descriptor line %d: %w", i+1, err)
			}
			l.extent = len(d.Extents)
			d.Extents = append(d.Extents, e)
		default:
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				return nil, fmt.Errorf("vmdk descriptor line %d: %q is neither key=value nor an extent: %w", i+1, s, ErrNotDescriptor)
			}
			k = strings.TrimSpace(k)
			v = unquote(strings.TrimSpace(v))
			l.key = k
			if err := d.set(k, v); err != nil {
				return nil, fmt.Errorf("vmdk descriptor line %d: %w", i+1, err)
			}
			seenVersion = seenVersion || k == "version"
		}
		d.lines = append(d.lines, l)
	}
	if !seenVersion && len(d.Extents) == 0 {
		return nil, fmt.Errorf("no version and no extent lines: %w", ErrNotDescriptor)
	}
	return d, nil
}

// sniff recognises binary input before line parsing produces a confusing error.
func sniff(b []byte) error {
	switch {
	case bytes.HasPrefix(b, []byte("KDMV")):
		return fmt.Errorf("a sparse VMDK with an embedded descriptor (hosted/monolithicSparse); convert it with vmkfstools -i first: %w", ErrNotDescriptor)
	case bytes.HasPrefix(b, []byte("COWD")):
		return fmt.Errorf("an ESX 2.x sparse VMDK; convert it with vmkfstools -i first: %w", ErrNotDescriptor)
	case bytes.IndexByte(b, 0) >= 0:
		return fmt.Errorf("binary data (a flat extent? pass the small descriptor .vmdk instead): %w", ErrNotDescriptor)
	}
	return nil
}

func (d *Descriptor) set(k, v string) error {
	var err error
	switch {
	case k == "version":
		if d.Version, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("version %q is not a number", v)
		}
	case k == "encoding":
		d.Encoding = v
	case k == "CID":
		d.CID, err = parseCID(k, v)
	case k == "parentCID":
		d.ParentCID, err = parseCID(k, v)
	case k == "createType":
		d.CreateType = v
	case k == "parentFileNameHint":
		d.ParentFileNameHint = v
	case k == "changeTrackPath":
		d.ChangeTrackPath = v
	case strings.HasPrefix(k, "ddb."):
		d.DDB[k] = v
	}
	return err
}

func parseCID(k, v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not 8 hex digits", k, v)
	}
	return uint32(n), nil
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

func isExtentLine(s string) bool {
	for _, a := range []string{"RW ", "RDONLY ", "NOACCESS "} {
		if strings.HasPrefix(s, a) || strings.HasPrefix(s, strings.TrimSuffix(a, " ")+"\t") {
			return true
		}
	}
	return false
}

// parseExtent parses `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`; the file name may hold spaces.
func parseExtent(s string) (Extent, error) {
	var e Extent
	var sectors string
	rest := s
	e.Access, rest = cutField(rest)
	sectors, rest = cutField(rest)
	e.Type, rest = cutField(rest)
	if e.Type == "" {
		return e, fmt.Errorf("extent %q: want ACCESS SECTORS TYPE [\"FILE\" [OFFSET]]", s)
	}
	n, err := strconv.ParseInt(sectors, 10, 64)
	if err != nil || n < 0 || n > 1<<54 {
		return e, fmt.Errorf("extent %q: sector count %q is not a valid size", s, sectors)
	}
	e.Sectors = n
	if rest == "" {
		return e, nil
	}
	if rest[0] != '"' {
		return e, fmt.Errorf("extent %q: file name must be quoted", s)
	}
	end := strings.IndexByte(rest[1:], '"')
	if end < 0 {
		return e, fmt.Errorf("extent %q: file name quote not closed", s)
	}
	e.File = rest[1 : 1+end]
	if tail := strings.TrimSpace(rest[2+end:]); tail != "" {
		off, err := strconv.ParseInt(tail, 10, 64)
		if err != nil || off < 0 {
			return e, fmt.Errorf("extent %q: offset %q is not a number", s, tail)
		}
		e.Offset = off
	}
	return e, nil
}

// cutField splits off the first whitespace-separated token of s; rest has no leading space.
func cutField(s string) (tok, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// Size is the disk's size in bytes: the sum of its extents.
func (d *Descriptor) Size() int64 {
	var n int64
	for _, e := range d.Extents {
		n += e.Size()
	}
	return n
}

// Bytes encodes the descriptor: the original lines, with the line ends it came with.
func (d *Descriptor) Bytes() []byte {
	var b strings.Builder
	nl := "\n"
	if d.crlf {
		nl = "\r\n"
	}
	for _, l := range d.lines {
		b.WriteString(l.text)
		b.WriteString(nl)
	}
	return []byte(b.String())
}

// String is the extent line. Names are written between plain quotes: VMDK has no escapes.
func (e Extent) String() string {
	s := fmt.Sprintf("%s %d %s", e.Access, e.Sectors, e.Type)
	if e.File != "" {
		s += ` "` + e.File + `"`
	}
	if e.Offset != 0 {
		s += fmt.Sprintf(" %d", e.Offset)
	}
	return s
}

package vib

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
)

// Limits that bound what Read accepts: a snapferry VIB is a ~15 MiB binary and a rule file.
const (
	MaxPayload    = 256 << 20 // uncompressed payload bytes
	maxDescriptor = 1 << 20
	maxEntries    = 10000
)

// VIB is a package as Read found it, checked.
type VIB struct {
	Descriptor Descriptor
	// Members are the ar member names in file order.
	Members []string
	// Files are the payload's regular files, by path relative to /, with their modes.
	Files map[string]File
}

// Read parses and verifies a VIB: members descriptor.xml, sig.pkcs7, then one member per
// payload in the descriptor's order; each payload's size and every checksum the descriptor
// gives (at least the sha-256 of the gzipped bytes); the payload's regular files are exactly
// the descriptor's file list, under clean relative paths.
func Read(b []byte) (*VIB, error) {
	members, err := readAr(b)
	if err != nil {
		return nil, err
	}
	v := &VIB{Files: map[string]File{}}
	for _, m := range members {
		v.Members = append(v.Members, m.name)
	}
	if len(members) < 3 || members[0].name != "descriptor.xml" || members[1].name != "sig.pkcs7" {
		return nil, fmt.Errorf("members %s: want descriptor.xml, sig.pkcs7, then the payloads: %w", strings.Join(v.Members, ", "), ErrFormat)
	}
	if len(members[0].data) > maxDescriptor {
		return nil, fmt.Errorf("descriptor.xml is %d bytes, over %d: %w", len(members[0].data), maxDescriptor, ErrFormat)
	}
	if err := xml.Unmarshal(members[0].data, &v.Descriptor); err != nil {
		return nil, fmt.Errorf("descriptor.xml: %v: %w", err, ErrFormat)
	}
	d := &v.Descriptor
	if d.Name == "" || d.Vendor == "" || d.Version == "" || d.AcceptanceLevel == "" {
		return nil, fmt.Errorf("descriptor.xml: name, vendor, version and acceptance-level are required: %w", ErrFormat)
	}
	if _, _, err := splitVersion(d.Version); err != nil {
		return nil, fmt.Errorf("descriptor.xml: %v: %w", err, ErrFormat)
	}
	if len(d.Payloads) != len(members)-2 {
		return nil, fmt.Errorf("descriptor.xml lists %d payload(s), the archive has %d: %w", len(d.Payloads), len(members)-2, ErrFormat)
	}
	var total int64
	for i, p := range d.Payloads {
		m := members[2+i]
		if m.name != p.Name {
			return nil, fmt.Errorf("payload %d is member %q, descriptor says %q: %w", i+1, m.name, p.Name, ErrFormat)
		}
		if err := v.readPayload(p, m.data, &total); err != nil {
			return nil, err
		}
	}
	listed := slices.Clone(d.Files)
	slices.Sort(listed)
	var found []string
	for p := range v.Files {
		found = append(found, p)
	}
	slices.Sort(found)
	if !slices.Equal(listed, found) {
		return nil, fmt.Errorf("file-list %v does not match the payload files %v: %w", listed, found, ErrFormat)
	}
	return v, nil
}

func (v *VIB) readPayload(p Payload, gz []byte, total *int64) error {
	if p.Type != "tgz" && p.Type != "vgz" {
		return fmt.Errorf("payload %s: type %q (want tgz): %w", p.Name, p.Type, ErrFormat)
	}
	if p.Size != int64(len(gz)) {
		return fmt.Errorf("payload %s: descriptor size %d, member has %d bytes: %w", p.Name, p.Size, len(gz), ErrFormat)
	}
	if _, ok := p.Checksum("sha-256", ""); !ok {
		return fmt.Errorf("payload %s: no sha-256 checksum: %w", p.Name, ErrFormat)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return fmt.Errorf("payload %s: %v: %w", p.Name, err, ErrFormat)
	}
	plain, err := io.ReadAll(io.LimitReader(zr, MaxPayload-*total+1))
	if err != nil {
		return fmt.Errorf("payload %s: gunzip: %v: %w", p.Name, err, ErrFormat)
	}
	*total += int64(len(plain))
	if *total > MaxPayload {
		return fmt.Errorf("payload %s: over %d bytes uncompressed: %w", p.Name, MaxPayload, ErrFormat)
	}
	for _, c := range p.Checksums {
		var h func() hash.Hash
		switch c.Type {
		case "sha-256":
			h = sha256.New
		case "sha-1":
			h = sha1.New
		default:
			continue // a type this reader does not know is not ours to judge
		}
		data := gz
		switch c.VerifyProcess {
		case "":
		case "gunzip":
			data = plain
		default:
			continue
		}
		if got := hexSum(h, data); !strings.EqualFold(got, strings.TrimSpace(c.Value)) {
			return fmt.Errorf("payload %s: %s checksum (%s) is %s, descriptor says %s: %w",
				p.Name, c.Type, orRaw(c.VerifyProcess), got, strings.TrimSpace(c.Value), ErrFormat)
		}
	}
	tr := tar.NewReader(bytes.NewReader(plain))
	for n := 0; ; n++ {
		if n > maxEntries {
			return fmt.Errorf("payload %s: over %d entries: %w", p.Name, maxEntries, ErrFormat)
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("payload %s: tar: %v: %w", p.Name, err, ErrFormat)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if err := checkPath(name); err != nil {
			return fmt.Errorf("payload %s: %v: %w", p.Name, err, ErrFormat)
		}
		switch h.Typeflag {
		case tar.TypeDir:
		case tar.TypeReg:
			if _, dup := v.Files[name]; dup {
				return fmt.Errorf("payload %s: %s twice: %w", p.Name, name, ErrFormat)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("payload %s: %s: %v: %w", p.Name, name, err, ErrFormat)
			}
			v.Files[name] = File{Path: name, Mode: h.Mode & 0o7777, Data: data}
		default:
			return fmt.Errorf("payload %s: %s is neither a file nor a folder (type %q): %w", p.Name, name, h.Typeflag, ErrFormat)
		}
	}
}

func orRaw(verify string) string {
	if verify == "" {
		return "of the gzipped payload"
	}
	return "after " + verify
}

func hexSum(newHash func() hash.Hash, b []byte) string {
	h := newHash()
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

package vib

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/xml"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// ErrFormat marks a file that is not a well-formed VIB (wrapped by Read's errors).
var ErrFormat = errors.New("not a valid VIB")

// Acceptance levels as descriptor.xml spells them, and as `esxcli software acceptance` does.
const (
	AcceptanceCommunity = "community" // host level CommunitySupported
	AcceptancePartner   = "partner"   // PartnerSupported
	AcceptanceAccepted  = "accepted"  // VMwareAccepted
	AcceptanceCertified = "certified" // VMwareCertified
)

// HostLevel maps a descriptor acceptance level to the host level name esxcli uses.
func HostLevel(descriptorLevel string) string {
	switch descriptorLevel {
	case AcceptanceCommunity:
		return "CommunitySupported"
	case AcceptancePartner:
		return "PartnerSupported"
	case AcceptanceAccepted:
		return "VMwareAccepted"
	case AcceptanceCertified:
		return "VMwareCertified"
	}
	return descriptorLevel
}

// File is one file of the payload. Path is relative to / ("opt/snapferry/snapferry").
type File struct {
	Path string
	Mode int64 // permission bits, e.g. 0o755
	Data []byte
}

// Package is what Build needs. Its parent directories are added to the payload by themselves.
type Package struct {
	Name        string // "snapferry"
	Vendor      string
	Version     string // "1.2.3-1.0.0"
	Summary     string
	Description string
	URL         string // project page, optional
	// ReleaseDate goes into the descriptor and is every tar entry's mtime: give a fixed time
	// (the commit's) for a reproducible build.
	ReleaseDate time.Time
	Acceptance  string // AcceptanceCommunity unless signed by a partner key
	PayloadName string // ar member name of the payload, at most 8 characters; default "payload1"
	Files       []File
}

// Build returns the bytes of the VIB: descriptor.xml, an empty sig.pkcs7, the payload.
func Build(p Package) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	payload, tarBytes, err := p.payload()
	if err != nil {
		return nil, err
	}
	d := p.descriptor(payload, tarBytes)
	x, err := xml.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode descriptor.xml: %w", err)
	}
	return writeAr([]arMember{
		{name: "descriptor.xml", data: append(x, '\n')},
		{name: "sig.pkcs7", data: nil},
		{name: d.Payloads[0].Name, data: payload},
	})
}

func (p *Package) payloadName() string {
	if p.PayloadName == "" {
		return "payload1"
	}
	return p.PayloadName
}

func (p *Package) check() error {
	if p.Name == "" || p.Vendor == "" || p.Version == "" {
		return errors.New("build VIB: name, vendor and version are required")
	}
	if _, _, err := splitVersion(p.Version); err != nil {
		return fmt.Errorf("build VIB: %w", err)
	}
	if n := p.payloadName(); len(n) > 8 || strings.ContainsAny(n, "/ ") {
		return fmt.Errorf("build VIB: payload name %q: at most 8 characters, no '/' or blanks", n)
	}
	if len(p.Files) == 0 {
		return errors.New("build VIB: no files")
	}
	seen := map[string]bool{}
	for _, f := range p.Files {
		if err := checkPath(f.Path); err != nil {
			return fmt.Errorf("build VIB: %w", err)
		}
		if seen[f.Path] {
			return fmt.Errorf("build VIB: file %s given twice", f.Path)
		}
		seen[f.Path] = true
	}
	return nil
}

// checkPath accepts clean relative paths only: a payload must not write outside /.
func checkPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == ".." ||
		strings.ContainsAny(p, "\x00\\") {
		return fmt.Errorf("payload path %q is not a clean relative path", p)
	}
	return nil
}

// payload returns the gzipped tar and the tar itself. Directories come first, then files, each
// group sorted, all owned by root with the release date as mtime.
func (p *Package) payload() (gz, plain []byte, err error) {
	files := slices.Clone(p.Files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	dirSet := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			dirSet[d] = true
		}
	}
	dirs := make([]string, 0, len(dirSet))
	for d := range dirSet {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	mtime := p.ReleaseDate.UTC().Truncate(time.Second)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	hdr := func(name string, typ byte, mode, size int64) *tar.Header {
		return &tar.Header{Typeflag: typ, Name: name, Mode: mode, Size: size, ModTime: mtime,
			Uname: "root", Gname: "root", Format: tar.FormatUSTAR}
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(hdr(d+"/", tar.TypeDir, 0o755, 0)); err != nil {
			return nil, nil, fmt.Errorf("build VIB payload: %w", err)
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(hdr(f.Path, tar.TypeReg, f.Mode&0o7777, int64(len(f.Data)))); err != nil {
			return nil, nil, fmt.Errorf("build VIB payload %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, nil, fmt.Errorf("build VIB payload %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, fmt.Errorf("build VIB payload: %w", err)
	}
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression) // a valid level: no error
	if _, err := zw.Write(tb.Bytes()); err != nil {
		return nil, nil, fmt.Errorf("compress VIB payload: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, nil, fmt.Errorf("compress VIB payload: %w", err)
	}
	return zb.Bytes(), tb.Bytes(), nil
}

func (p *Package) descriptor(gz, plain []byte) *Descriptor {
	level := p.Acceptance
	if level == "" {
		level = AcceptanceCommunity
	}
	files := make([]string, len(p.Files))
	for i, f := range p.Files {
		files[i] = f.Path
	}
	slices.Sort(files)
	d := &Descriptor{
		FormatVersion: "5.0", Type: "bootbank", Name: p.Name, Version: p.Version, Vendor: p.Vendor,
		Summary: p.Summary, Description: p.Description,
		ReleaseDate:     p.ReleaseDate.UTC().Format("2006-01-02T15:04:05"),
		Files:           files,
		AcceptanceLevel: level, LiveInstallAllowed: true, LiveRemoveAllowed: true, StatelessReady: true,
		Payloads: []Payload{{Name: p.payloadName(), Type: "tgz", Size: int64(len(gz)), Checksums: []Checksum{
			{Type: "sha-256", Value: hexSum(sha256.New, gz)},
			{Type: "sha-256", VerifyProcess: "gunzip", Value: hexSum(sha256.New, plain)},
			{Type: "sha-1", VerifyProcess: "gunzip", Value: hexSum(sha1.New, plain)},
		}}},
	}
	if p.URL != "" {
		d.URLs = []URL{{Key: p.Name, Value: p.URL}}
	}
	return d
}

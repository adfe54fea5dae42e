package vib

import "encoding/xml"

// Descriptor is descriptor.xml, in the element order VMware's tools write it.
type Descriptor struct {
	XMLName            xml.Name       `xml:"vib"`
	FormatVersion      string         `xml:"version,attr"`
	Type               string         `xml:"type"`
	Name               string         `xml:"name"`
	Version            string         `xml:"version"`
	Vendor             string         `xml:"vendor"`
	Summary            string         `xml:"summary"`
	Description        string         `xml:"description"`
	ReleaseDate        string         `xml:"release-date"`
	URLs               []URL          `xml:"urls>url"`
	Relationships      Relationships  `xml:"relationships"`
	SoftwareTags       string         `xml:"software-tags"`
	SystemRequires     SystemRequires `xml:"system-requires"`
	Files              []string       `xml:"file-list>file"`
	AcceptanceLevel    string         `xml:"acceptance-level"`
	LiveInstallAllowed bool           `xml:"live-install-allowed"`
	LiveRemoveAllowed  bool           `xml:"live-remove-allowed"`
	CimomRestart       bool           `xml:"cimom-restart"`
	StatelessReady     bool           `xml:"stateless-ready"`
	Overlay            bool           `xml:"overlay"`
	Payloads           []Payload      `xml:"payloads>payload"`
}

// URL is one <url key="...">.
type URL struct {
	Key   string `xml:"key,attr"`
	Value string `xml:",chardata"`
}

// Relationships are the dependency lists; snapferry needs none, but hosts expect the elements.
type Relationships struct {
	Depends        string `xml:"depends"`
	Conflicts      string `xml:"conflicts"`
	Replaces       string `xml:"replaces"`
	Provides       string `xml:"provides"`
	CompatibleWith string `xml:"compatibleWith"`
}

// SystemRequires says the host need not enter maintenance mode for this package.
type SystemRequires struct {
	MaintenanceMode bool `xml:"maintenance-mode"`
}

// Payload describes one payload member: its ar member name (at most 8 characters), type, the
// size of its gzipped bytes and their checksums.
type Payload struct {
	Name      string     `xml:"name,attr"`
	Type      string     `xml:"type,attr"`
	Size      int64      `xml:"size,attr"`
	Checksums []Checksum `xml:"checksum"`
}

// Checksum is one <checksum>; VerifyProcess "gunzip" means it covers the uncompressed tar.
type Checksum struct {
	Type          string `xml:"checksum-type,attr"`
	VerifyProcess string `xml:"verify-process,attr,omitempty"`
	Value         string `xml:",chardata"`
}

// Checksum returns the value of the checksum of type typ ("sha-256", "sha-1") with the given
// verify process ("" or "gunzip").
func (p Payload) Checksum(typ, verify string) (string, bool) {
	for _, c := range p.Checksums {
		if c.Type == typ && c.VerifyProcess == verify {
			return c.Value, true
		}
	}
	return "", false
}

// ID is how ESXi names an installed VIB: VENDOR_TYPE_NAME_VERSION
// (e.g. "snapferry_bootbank_snapferry_1.2.3-1.0.0"), as esxcli prints it in "VIBs Installed".
func (d *Descriptor) ID() string {
	return d.Vendor + "_" + d.Type + "_" + d.Name + "_" + d.Version
}

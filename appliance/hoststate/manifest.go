package hoststate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
)

// Snapshot kind and source of a host-state snapshot.
const (
	Kind   = repo.SnapshotHostState
	Source = "snapferry host state"
)

// Names of the files in a host-state snapshot's tree.
const (
	ManifestFile   = "manifest.json"
	JobsFile       = "jobs.json"
	HistoryFile    = "history.jsonl"
	KnownHostsFile = "known_hosts"
)

// ManifestFormat is the manifest version this build writes and the newest it reads.
const ManifestFormat = 1

// ErrCorrupt marks a host-state snapshot this build cannot use.
var ErrCorrupt = errors.New("damaged host-state snapshot")

// Manifest says where a host's state came from and how its schedule was installed.
type Manifest struct {
	Format     int    `json:"format"`
	Host       string `json:"host"`
	Home       string `json:"home"`             // the state folder
	Binary     string `json:"binary,omitempty"` // the binary the crontab lines started
	KnownHosts string `json:"known_hosts,omitempty"`
	// Persisted is true when local.sh held snapferry's boot stanza (cron install --persist);
	// SMTPFirewall when that stanza or the firewall folder had the SMTP rule.
	Persisted    bool `json:"persisted,omitempty"`
	SMTPFirewall bool `json:"smtp_firewall,omitempty"`
	// Encrypted records that the repository was encrypted, so secrets could be stored.
	Encrypted bool     `json:"encrypted,omitempty"`
	Secrets   []Secret `json:"secrets,omitempty"`
	// Files lists the tree's files other than the manifest.
	Files []string `json:"files"`
}

// Secret is a password file a job names. File is its name in the tree when stored.
type Secret struct {
	Path string   `json:"path"`
	Jobs []string `json:"jobs"`
	File string   `json:"file,omitempty"`
}

// ParseManifest decodes and checks a manifest read from a repository.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", ManifestFile, err, ErrCorrupt)
	}
	if m.Format < 1 {
		return nil, fmt.Errorf("%s: no format version: %w", ManifestFile, ErrCorrupt)
	}
	if m.Format > ManifestFormat {
		return nil, fmt.Errorf("%s: format %d is newer than this snapferry reads (%d); restore with a newer snapferry", ManifestFile, m.Format, ManifestFormat)
	}
	known := map[string]bool{JobsFile: true, HistoryFile: true, KnownHostsFile: true}
	for _, s := range m.Secrets {
		if s.Path == "" || !strings.HasPrefix(s.Path, "/") {
			return nil, fmt.Errorf("%s: secret path %q is not absolute: %w", ManifestFile, s.Path, ErrCorrupt)
		}
		if s.File != "" {
			if !validSecretName(s.File) {
				return nil, fmt.Errorf("%s: secret file name %q: %w", ManifestFile, s.File, ErrCorrupt)
			}
			known[s.File] = true
		}
	}
	for _, f := range m.Files {
		if !known[f] {
			return nil, fmt.Errorf("%s: unexpected file %q: %w", ManifestFile, f, ErrCorrupt)
		}
	}
	return &m, nil
}

func secretName(i int) string { return fmt.Sprintf("secret-%d", i+1) }

func validSecretName(s string) bool {
	rest, ok := strings.CutPrefix(s, "secret-")
	if !ok || rest == "" || len(rest) > 6 {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

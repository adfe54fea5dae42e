package hoststate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/history"
)

// Sources say where this host's state lives.
type Sources struct {
	Host   string // the name the snapshot is filed under (os.Hostname)
	Home   string // the state folder
	Binary string // the binary the crontab lines start
	// KnownHosts is the known_hosts file the jobs' SSH connections use ("" none).
	KnownHosts string
	// LocalSh and FirewallDir are looked at (never changed) to record whether the schedule was
	// persisted and the SMTP rule installed; "" skips the look (not ESXi).
	LocalSh, FirewallDir string
	// Encrypted says the repository encrypts what it stores: only then are secrets collected.
	Encrypted bool
}

// State is one host's snapferry state: the manifest and the contents of the files it lists.
type State struct {
	Manifest Manifest
	Files    map[string][]byte // by file name in the snapshot (JobsFile, ...)
}

// maxFile bounds one collected or restored file: state files are small; a history file past
// this is not worth failing a backup for, so it is left out with an error the caller reports.
const maxFile = 64 << 20

// Collect reads this host's state. A file that does not exist is simply not part of it; a file
// that exists but cannot be read is an error naming it.
func Collect(ctx context.Context, src Sources) (*State, error) {
	if src.Home == "" {
		return nil, errors.New("collect host state: no state folder")
	}
	st := &State{Files: map[string][]byte{}, Manifest: Manifest{Format: ManifestFormat, Host: src.Host, Home: src.Home,
		Binary: src.Binary, KnownHosts: src.KnownHosts, Encrypted: src.Encrypted}}
	add := func(name, path string) error {
		if path == "" {
			return nil
		}
		b, err := readSmall(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("collect host state: %w", err)
		}
		st.Files[name] = b
		return nil
	}
	jobsPath := cron.NewStore(src.Home).Path()
	if err := add(JobsFile, jobsPath); err != nil {
		return nil, err
	}
	if err := add(HistoryFile, filepath.Join(src.Home, history.FileName)); err != nil {
		return nil, err
	}
	if err := add(KnownHostsFile, src.KnownHosts); err != nil {
		return nil, err
	}
	if b, ok := st.Files[JobsFile]; ok {
		jf, err := cron.ParseJobsFile(b)
		if err != nil {
			return nil, fmt.Errorf("collect host state: jobs file %s: %w", jobsPath, err)
		}
		for i, s := range secretsOf(jf.Jobs) {
			if src.Encrypted {
				s.File = secretName(i)
				if err := add(s.File, s.Path); err != nil {
					return nil, err
				}
				if _, ok := st.Files[s.File]; !ok {
					s.File = "" // named by a job but missing here: nothing to keep
				}
			}
			st.Manifest.Secrets = append(st.Manifest.Secrets, s)
		}
	}
	if src.LocalSh != "" {
		if b, err := readSmall(src.LocalSh); err == nil {
			stanza := stanzaOf(string(b))
			st.Manifest.Persisted = stanza != ""
			st.Manifest.SMTPFirewall = strings.Contains(stanza, cron.FirewallRuleName)
		}
	}
	if src.FirewallDir != "" {
		if _, err := os.Stat(filepath.Join(src.FirewallDir, cron.FirewallRuleName)); err == nil {
			st.Manifest.SMTPFirewall = true
		}
	}
	for name := range st.Files {
		st.Manifest.Files = append(st.Manifest.Files, name)
	}
	slices.Sort(st.Manifest.Files)
	return st, nil
}

func readSmall(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > maxFile {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit for state files", path, fi.Size(), maxFile)
	}
	return os.ReadFile(path)
}

// stanzaOf returns snapferry's local.sh stanza, markers included, or "".
func stanzaOf(text string) string {
	i := strings.Index(text, cron.StanzaBegin)
	if i < 0 {
		return ""
	}
	j := strings.Index(text[i:], cron.StanzaEnd)
	if j < 0 {
		return ""
	}
	return text[i : i+j+len(cron.StanzaEnd)]
}

// secretsOf lists the absolute password files the jobs name, once each, in first-use order:
// --mail's SMTP password file and every --*password-file=FILE argument (repository passwords).
func secretsOf(jobs []cron.Job) []Secret {
	var out []Secret
	idx := map[string]int{}
	note := func(path, job string) {
		if !filepath.IsAbs(path) {
			return // relative to whatever folder cron starts in: nothing reliable to keep
		}
		path = filepath.Clean(path)
		i, ok := idx[path]
		if !ok {
			i = len(out)
			idx[path] = i
			out = append(out, Secret{Path: path})
		}
		if !slices.Contains(out[i].Jobs, job) {
			out[i].Jobs = append(out[i].Jobs, job)
		}
	}
	for _, j := range jobs {
		if j.Mail.PasswordFile != "" {
			note(j.Mail.PasswordFile, j.Name)
		}
		for k, a := range j.Args {
			if a == "--" {
				break
			}
			name, val, hasVal := strings.Cut(a, "=")
			if !strings.HasPrefix(name, "--") || !strings.HasSuffix(name, "password-file") {
				continue
			}
			if !hasVal && k+1 < len(j.Args) {
				val = j.Args[k+1]
			}
			if val != "" {
				note(val, j.Name)
			}
		}
	}
	return out
}

package hoststate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/history"
)

// ErrExists is returned (wrapped) when restoring would replace a jobs file that holds other jobs
// and Overwrite was not given.
var ErrExists = errors.New("state already present")

// Target says where to restore and how to install the schedule on this host.
type Target struct {
	Home string // this host's state folder
	// KnownHosts is this host's known_hosts file; "" leaves known_hosts alone.
	KnownHosts string
	// Overwrite replaces a jobs file with other jobs, a history and secret files that differ.
	Overwrite bool
	// Crontab and Restart are where the job lines go and how cron re-reads them
	// (cron.TargetFor); a nil Crontab installs nothing. Lines gives the binary and state folder
	// the lines start (Home is taken from Home).
	Crontab cron.CrontabTarget
	Restart func(context.Context) error
	Lines   cron.LineOptions
	// LocalSh, when not "", is the boot script the stanza is written to if the old host had
	// one; FirewallDir and Run install the SMTP rule first if the old host had that.
	LocalSh     string
	FirewallDir string
	Run         cron.CommandRunner
}

// Report says what Apply changed, for the user to read.
type Report struct {
	Actions []Action `json:"actions"`
	// Notes are things the user must do by hand (secrets not stored, a boot stanza not written).
	Notes          []string `json:"notes,omitempty"`
	Jobs           int      `json:"jobs"`
	Suspended      bool     `json:"suspended"`
	CrontabChanged bool     `json:"crontab_changed"`
}

// Action is one thing Apply did or left alone.
type Action struct {
	What   string `json:"what"`
	Path   string `json:"path"`
	Result string `json:"result"`
}

// Apply writes st into the target host: jobs file, history, known_hosts, secrets, then the
// crontab lines from the restored jobs file and, when the old host had them and the target
// names a local.sh, the boot stanza (and SMTP firewall rule). It checks for conflicts before
// it writes anything.
func Apply(ctx context.Context, st *State, t Target) (*Report, error) {
	rep := &Report{}
	store := cron.NewStore(t.Home)
	restored, err := cron.ParseJobsFile(st.Files[JobsFile])
	if err != nil {
		return nil, fmt.Errorf("restore host state: jobs file from the repository: %w", err)
	}
	current, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore host state: %w", err)
	}
	_, hasJobs := st.Files[JobsFile]
	same := reflect.DeepEqual(normalise(current), normalise(restored))
	if hasJobs && len(current.Jobs) > 0 && !same && !t.Overwrite {
		return nil, fmt.Errorf("restore host state: %w: %s already holds %d job(s) that differ from the backup; "+
			"compare with `snapferry cron list`, then run again with --overwrite to replace them", ErrExists, store.Path(), len(current.Jobs))
	}
	rep.Jobs, rep.Suspended = len(restored.Jobs), restored.Suspended
	if !hasJobs {
		rep.Jobs, rep.Suspended = len(current.Jobs), current.Suspended
	}
	if hasJobs {
		result := "unchanged"
		if !same {
			if err := store.Update(ctx, func(f *cron.JobsFile) error { *f = restored; return nil }); err != nil {
				return nil, fmt.Errorf("restore host state: %w", err)
			}
			result = fmt.Sprintf("restored (%d job(s))", len(restored.Jobs))
		}
		rep.Actions = append(rep.Actions, Action{"jobs", store.Path(), result})
	}
	if b, ok := st.Files[HistoryFile]; ok {
		a, err := restoreFile(filepath.Join(t.Home, history.FileName), b, t.Overwrite)
		if err != nil {
			return nil, err
		}
		rep.Actions = append(rep.Actions, Action{"job history", filepath.Join(t.Home, history.FileName), a})
	}
	if b, ok := st.Files[KnownHostsFile]; ok && t.KnownHosts != "" {
		a, err := mergeKnownHosts(t.KnownHosts, b)
		if err != nil {
			return nil, err
		}
		rep.Actions = append(rep.Actions, Action{"known hosts", t.KnownHosts, a})
	}
	for _, s := range st.Manifest.Secrets {
		jobs := strings.Join(s.Jobs, ", ")
		if s.File == "" {
			if _, err := os.Stat(s.Path); err != nil {
				why := "the repository is not encrypted, so it was not stored"
				if st.Manifest.Encrypted {
					why = "it was missing on the old host too"
				}
				rep.Notes = append(rep.Notes, fmt.Sprintf("create %s (a password file of job %s): %s", s.Path, jobs, why))
			}
			continue
		}
		a, err := restoreFile(s.Path, st.Files[s.File], t.Overwrite)
		if err != nil {
			return nil, err
		}
		rep.Actions = append(rep.Actions, Action{"password file of job " + jobs, s.Path, a})
	}
	if t.Crontab != nil {
		o := t.Lines
		o.Home = t.Home
		if rep.CrontabChanged, err = cron.InstallFromStore(ctx, store, o, t.Crontab, t.Restart); err != nil {
			return rep, fmt.Errorf("restore host state: state restored, but %w; run `snapferry cron install` once that is fixed", err)
		}
		result := "unchanged"
		if rep.CrontabChanged {
			result = fmt.Sprintf("updated (%d job line(s))", len(restored.Jobs))
		}
		rep.Actions = append(rep.Actions, Action{"crontab", t.Crontab.String(), result})
	}
	if err := persist(ctx, st, t, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// normalise makes an empty and a missing job list compare equal.
func normalise(f cron.JobsFile) cron.JobsFile {
	if len(f.Jobs) == 0 {
		f.Jobs = nil
	}
	return f
}

func persist(ctx context.Context, st *State, t Target, rep *Report) error {
	if !st.Manifest.Persisted {
		return nil
	}
	if t.LocalSh == "" || t.Crontab == nil {
		rep.Notes = append(rep.Notes, "the old host kept its crontab lines across reboots (local.sh); run `snapferry cron install --persist` here to do the same")
		return nil
	}
	o := cron.PersistOptions{Binary: t.Lines.Binary, Home: t.Home, Crontab: t.Crontab.String()}
	if _, ok := t.Crontab.(cron.FileCrontab); !ok {
		o.Crontab = ""
	}
	if st.Manifest.SMTPFirewall && t.FirewallDir != "" {
		if err := cron.InstallFirewallRule(ctx, t.FirewallDir, t.Run); err != nil {
			return fmt.Errorf("restore host state: state and crontab restored, but %w", err)
		}
		rep.Actions = append(rep.Actions, Action{"SMTP firewall rule", filepath.Join(t.FirewallDir, cron.FirewallRuleName), "installed"})
		o.FirewallDir = t.FirewallDir
	}
	changed, err := cron.Persist(t.LocalSh, cron.PersistStanza(o))
	if err != nil {
		return fmt.Errorf("restore host state: state and crontab restored, but %w", err)
	}
	result := "unchanged"
	if changed {
		result = "boot stanza written"
	}
	rep.Actions = append(rep.Actions, Action{"boot persistence", t.LocalSh, result})
	return nil
}

// restoreFile writes data to path unless a different file is there and overwrite is false.
func restoreFile(path string, data []byte, overwrite bool) (string, error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		return "unchanged", nil
	case err == nil && len(old) > 0 && !overwrite:
		return "kept the file already there (differs from the backup; --overwrite replaces it)", nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("restore host state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("restore host state: %w", err)
	}
	if err := cron.WriteFileAtomic(path, data, 0o600); err != nil {
		return "", fmt.Errorf("restore host state: %w", err)
	}
	return "restored", nil
}

// mergeKnownHosts appends the backed-up lines that path lacks: keys this host learnt since are
// kept, and a restore run twice adds nothing.
func mergeKnownHosts(path string, data []byte) (string, error) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("restore host state: %w", err)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	out := string(old)
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	added := 0
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || have[l] {
			continue
		}
		have[l] = true
		out += l + "\n"
		added++
	}
	if added == 0 {
		return "unchanged", nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("restore host state: %w", err)
	}
	if err := cron.WriteFileAtomic(path, []byte(out), 0o600); err != nil {
		return "", fmt.Errorf("restore host state: %w", err)
	}
	return fmt.Sprintf("%d line(s) added", added), nil
}

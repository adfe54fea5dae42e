package cron

import (
	"context"
	"fmt"
	"path/filepath"
)

// Install writes entries into the crontab, replacing only snapferry's own lines, and calls
// restart (may be nil) when the table changed. It reports whether anything changed; an
// unchanged table is neither rewritten nor is crond restarted, so running it at every boot or
// after every `cron add` is cheap.
func Install(ctx context.Context, target CrontabTarget, entries []CrontabEntry, restart func(context.Context) error) (bool, error) {
	old, err := target.Read(ctx)
	if err != nil {
		return false, fmt.Errorf("install crontab %s: %w", target, err)
	}
	text := EditCrontab(old, entries)
	if text == old {
		return false, nil
	}
	if err := target.Write(ctx, text); err != nil {
		return false, fmt.Errorf("install crontab %s: %w", target, err)
	}
	if restart != nil {
		if err := restart(ctx); err != nil {
			return true, fmt.Errorf("install crontab %s: lines written, but %w", target, err)
		}
	}
	return true, nil
}

// InstallFromStore installs the lines of every job in the store's jobs file, commented out while
// scheduling is suspended, and reports whether the crontab changed. Binary and Home of o are
// used; o.Suspended is taken from the jobs file.
func InstallFromStore(ctx context.Context, s *Store, o LineOptions, target CrontabTarget, restart func(context.Context) error) (bool, error) {
	f, err := s.Load(ctx)
	if err != nil {
		return false, err
	}
	o.Suspended = f.Suspended
	entries, err := CrontabLines(f.Jobs, o)
	if err != nil {
		return false, err
	}
	return Install(ctx, target, entries, restart)
}

// Installed reports whether the crontab holds any snapferry line (active or suspended). The CLI
// uses it to re-install after add, remove, suspend and resume only where the user has installed
// before, so those commands never write a crontab unasked.
func Installed(ctx context.Context, target CrontabTarget) (bool, error) {
	text, err := target.Read(ctx)
	if err != nil {
		return false, fmt.Errorf("read crontab %s: %w", target, err)
	}
	for _, l := range splitLines(text) {
		if _, ok := OwnedCrontabLine(l.text); ok {
			return true, nil
		}
	}
	return false, nil
}

// TargetFor picks the crontab to install into and how to make cron re-read it:
//   - crontabPath given (--crontab=FILE): that file; crond is restarted only when it is ESXi's
//     root table on an ESXi host, since a test or a custom table needs no daemon restart;
//   - on ESXi: root's table, then busybox crond restarted as host-facts.md describes;
//   - elsewhere: the invoking user's crontab through crontab(1), which tells cron itself.
func TargetFor(crontabPath string, esxi bool, run CommandRunner) (CrontabTarget, func(context.Context) error) {
	if crontabPath == "" && esxi {
		crontabPath = ESXiCrontab
	}
	if crontabPath == "" {
		return UserCrontab{Run: run}, nil
	}
	if esxi && filepath.Clean(crontabPath) == ESXiCrontab {
		return FileCrontab{Path: crontabPath}, ESXiCrondRestart(run).Restart
	}
	return FileCrontab{Path: crontabPath}, nil
}

// PersistOptions describe the boot stanza in local.sh.
type PersistOptions struct {
	// Binary and Home are those of the crontab lines; the stanza runs
	// `BINARY --home=HOME cron install --crontab=CRONTAB` at boot.
	Binary, Home string
	// Crontab is the table to re-create; "" means ESXiCrontab.
	Crontab string
	// FirewallDir, when not "", makes the stanza re-create the SMTP firewall rule there first
	// (DefaultFirewallDir on ESXi).
	FirewallDir string
}

// PersistStanza returns the body of the local.sh stanza. It re-installs from the jobs file
// rather than copying today's lines, so jobs added later survive a reboot without another
// --persist. Its output goes to cron/boot.log in the state folder: local.sh has no terminal.
func PersistStanza(o PersistOptions) []string {
	crontab := o.Crontab
	if crontab == "" {
		crontab = ESXiCrontab
	}
	var body []string
	if o.FirewallDir != "" {
		body = append(body, FirewallStanzaLines(o.FirewallDir)...)
	}
	cmd := QuoteShellArg(o.Binary)
	log := "/dev/null"
	if o.Home != "" {
		cmd += " " + QuoteShellArg("--home="+o.Home)
		log = QuoteShellArg(filepath.Join(o.Home, "cron", "boot.log"))
	}
	cmd += " cron install " + QuoteShellArg("--crontab="+crontab) + " >>" + log + " 2>&1"
	return append(body, cmd)
}

// Persist sets the snapferry stanza of the local.sh at path to body (nil removes it), keeping
// every other line. It reports whether the file changed.
func Persist(path string, body []string) (bool, error) {
	b, err := readFileOrEmpty(path)
	if err != nil {
		return false, fmt.Errorf("persist in %s: %w", path, err)
	}
	text, err := EditLocalSh(string(b), body)
	if err != nil {
		return false, fmt.Errorf("persist in %s: %w", path, err)
	}
	if text == string(b) {
		return false, nil
	}
	if err := writeFileAtomic(path, []byte(text), fileMode(path, 0o755)); err != nil {
		return false, fmt.Errorf("persist in %s: %w", path, err)
	}
	return true, nil
}

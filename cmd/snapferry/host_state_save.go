package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/snapferry/snapferry/appliance/hoststate"
	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/wire"
)

// startHostState stores this host's snapferry state (jobs, schedule, history, known hosts; see
// appliance/hoststate) as a host-state snapshot in the repository the run writes, so
// `restore-state` can rebuild the host. It starts once the run's backups are committed (beside
// them, its pack, index and commit raced theirs and another writer's prune: a snapshot could
// name blobs no index held yet), beside the low-space question. waitHostState waits for it and
// prints its warning. A failure is a warning: the run's backups matter more.
func (t *backupTarget) startHostState(a *app) {
	t.stateStarted = true
	done := make(chan string, 1)
	t.hostState = done
	go func() { done <- t.saveHostState(a) }()
}

// waitHostState waits for the save startHostState began (once; later calls return at once).
func (t *backupTarget) waitHostState(a *app) {
	if t.hostState == nil {
		return
	}
	if warning := <-t.hostState; warning != "" {
		a.warnf("%s", warning)
	}
	t.hostState = nil
}

// saveHostState saves the host-state snapshot and trims old ones; it returns a warning, or "".
func (t *backupTarget) saveHostState(a *app) string {
	if a.ctx == nil || a.ctx.Err() != nil {
		return "" // interrupted: clean up, do not start more writes
	}
	src, err := a.hostStateSources(t.host)
	if err == nil {
		src.Encrypted = t.r.Config().Encryption != repo.EncryptionNone
		var st *hoststate.State
		if st, err = hoststate.Collect(a.ctx, src); err == nil {
			_, err = hoststate.Save(a.ctx, t.r, st, time.Now().UTC())
		}
	}
	if err != nil {
		return fmt.Sprintf("this host's snapferry state was not saved in the repository (restore-state will find an older one): %v", err)
	}
	// An append-only store refuses removals; its owner prunes there.
	if _, err := hoststate.Trim(a.ctx, t.r, t.host, hoststate.KeepPerHost); err != nil && !errors.Is(err, wire.ErrRefused) {
		return fmt.Sprintf("removing old host-state snapshots: %v", err)
	}
	return ""
}

// hostStateSources says where this host keeps its state: the state folder, the binary the
// crontab lines start, the known_hosts file SSH uses, and on ESXi the boot script and firewall
// folder that show whether the schedule was persisted.
func (a *app) hostStateSources(host string) (hoststate.Sources, error) {
	dir, err := a.stateDir()
	if err != nil {
		return hoststate.Sources{}, err
	}
	home, err := filepath.Abs(dir)
	if err != nil {
		return hoststate.Sources{}, err
	}
	lines, err := cronLineOptions(home)
	if err != nil {
		return hoststate.Sources{}, err
	}
	src := hoststate.Sources{Host: host, Home: home, Binary: lines.Binary, KnownHosts: a.knownHostsPath()}
	if cron.IsESXi() {
		src.LocalSh, src.FirewallDir = cron.DefaultLocalSh, cron.DefaultFirewallDir
	}
	return src, nil
}

// knownHostsPath is the known_hosts file SSH connections use: --known-hosts, then
// $SNAPFERRY_KNOWN_HOSTS (parse applies both), else ~/.ssh/known_hosts ("" without a home).
func (a *app) knownHostsPath() string {
	if a.ssh.KnownHosts != "" {
		return a.ssh.KnownHosts
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(h, ".ssh", "known_hosts")
}

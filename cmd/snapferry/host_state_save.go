package main

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/snapferry/snapferry/appliance/hoststate"
	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/wire"
)

// saveHostState stores this host's snapferry state (jobs, schedule, history, known hosts; see
// appliance/hoststate) as a host-state snapshot in the repository a backup run just wrote, so
// `restore-state` can rebuild the host. It is called when the run closes its repository. A
// failure is a warning: the run's backups are committed and matter more.
func (t *backupTarget) saveHostState(a *app) {
	if a.ctx == nil || a.ctx.Err() != nil {
		return // interrupted: clean up, do not start more writes
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
		a.warnf("this host's snapferry state was not saved in the repository (restore-state will find an older one): %v", err)
		return
	}
	// An append-only store refuses removals; its owner prunes there.
	if _, err := hoststate.Trim(a.ctx, t.r, t.host, hoststate.KeepPerHost); err != nil && !errors.Is(err, wire.ErrRefused) {
		a.warnf("removing old host-state snapshots: %v", err)
	}
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

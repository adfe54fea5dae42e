package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/snapferry/snapferry/appliance/hoststate"
	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/images/repo"
)

// restoreStateReport is what `restore-state --json` prints.
type restoreStateReport struct {
	Host     string             `json:"host"`
	Snapshot string             `json:"snapshot"`
	Time     string             `json:"time"`
	Report   *hoststate.Report  `json:"report,omitempty"`
	States   []hostStateListing `json:"states,omitempty"`
}

type hostStateListing struct {
	Host     string `json:"host"`
	Snapshot string `json:"snapshot"`
	Time     string `json:"time"`
}

// runRestoreState is `snapferry restore-state --from=REPO [--host-name=H] [--crontab=FILE]
// [--local-sh=FILE] [--no-crontab] [--overwrite] [--list]`: on a freshly installed host, bring
// back the jobs, schedule, history, known hosts (and, from an encrypted repository, password
// files) that the old host's backups stored (appliance/hoststate), then install the crontab
// lines, and on ESXi the boot stanza when the old host had one.
func runRestoreState(a *app, args []string) int {
	var from, hostName, crontabPath, localSh, firewallDir string
	var noCrontab, overwrite, list bool
	fs := a.flags
	a.addPasswordFlag()
	a.addSSHFlags()
	fs.StringVar(&from, "from", "", "repository the old host backed up into (env SNAPFERRY_REPO)")
	fs.StringVar(&hostName, "host-name", "", "whose state to restore (default: this host's name)")
	a.addCrontabFlag(&crontabPath)
	fs.BoolVar(&noCrontab, "no-crontab", false, "restore the state folder only; install the crontab lines later with `cron install`")
	fs.StringVar(&localSh, "local-sh", "", "boot script for the persisted lines (default on ESXi "+cron.DefaultLocalSh+")")
	fs.StringVar(&firewallDir, "firewall-dir", "", "folder of ESXi firewall rule files (default on ESXi "+cron.DefaultFirewallDir+")")
	fs.MarkHidden("firewall-dir") // for tests and unusual layouts
	fs.BoolVar(&overwrite, "overwrite", false, "replace a jobs file with other jobs, and a history or password file that differs")
	fs.BoolVar(&list, "list", false, "list the hosts whose state the repository holds, newest first")
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("restore-state takes no arguments, got %q", pos))
	}
	spec, err := repoSpec(from, "from")
	if err != nil {
		return a.fail(err)
	}
	r, err := a.openRepo(spec, false)
	if err != nil {
		return a.fail(err)
	}
	defer r.Close()
	if list {
		return a.listHostStates(r)
	}
	if hostName == "" {
		if hostName, err = os.Hostname(); err != nil {
			return a.fail(usagef("this host's name: %v; give --host-name", err))
		}
	}
	st, si, err := hoststate.Load(a.ctx, r, hostName)
	if err != nil {
		return a.fail(err)
	}
	_, home, err := a.cronStore()
	if err != nil {
		return a.fail(err)
	}
	lines, err := cronLineOptions(home)
	if err != nil {
		return a.fail(err)
	}
	esxi := cron.IsESXi()
	t := hoststate.Target{Home: home, KnownHosts: a.knownHostsPath(), Overwrite: overwrite, Lines: lines, Run: cron.ExecRunner,
		LocalSh: localSh, FirewallDir: firewallDir}
	if esxi && t.LocalSh == "" {
		t.LocalSh = cron.DefaultLocalSh
	}
	if esxi && t.FirewallDir == "" {
		t.FirewallDir = cron.DefaultFirewallDir
	}
	if !noCrontab {
		for _, p := range []*string{&crontabPath, &t.LocalSh} {
			if *p != "" {
				if *p, err = filepath.Abs(*p); err != nil {
					return a.fail(usagef("path: %v", err))
				}
			}
		}
		t.Crontab, t.Restart = cron.TargetFor(crontabPath, esxi, cron.ExecRunner)
	}
	rep, err := hoststate.Apply(a.ctx, st, t)
	if rep != nil {
		a.printRestoreState(hostName, si, rep)
	}
	if err != nil {
		return a.fail(err)
	}
	return exitOK
}

func (a *app) printRestoreState(host string, si repo.SnapshotInfo, rep *hoststate.Report) {
	when := si.Snapshot.Time.Local().Format("2006-01-02 15:04:05")
	if a.jsonOut {
		a.printJSON(restoreStateReport{Host: host, Snapshot: si.ID.String(), Time: when, Report: rep})
		return
	}
	fmt.Fprintf(a.stdout, "state of host %s from snapshot %s (%s):\n", host, si.ID.Short(), when)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, ac := range rep.Actions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", ac.What, ac.Path, ac.Result)
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "%d job(s) scheduled", rep.Jobs)
	if rep.Suspended {
		fmt.Fprint(a.stdout, " (scheduling is SUSPENDED, as it was on the old host: `snapferry cron resume` starts it)")
	}
	fmt.Fprintln(a.stdout)
	for _, n := range rep.Notes {
		fmt.Fprintln(a.stdout, "to do: "+n)
	}
}

func (a *app) listHostStates(r *repo.Repository) int {
	all, err := r.ListSnapshots(a.ctx, repo.SnapshotFilter{Kind: hoststate.Kind})
	if err != nil {
		return a.fail(err)
	}
	newest := map[string]repo.SnapshotInfo{}
	var order []string
	for i := len(all) - 1; i >= 0; i-- { // newest first
		h := all[i].Snapshot.Host
		if _, ok := newest[h]; !ok {
			newest[h] = all[i]
			order = append(order, h)
		}
	}
	var out []hostStateListing
	for _, h := range order {
		s := newest[h]
		out = append(out, hostStateListing{Host: h, Snapshot: s.ID.String(), Time: s.Snapshot.Time.Local().Format("2006-01-02 15:04:05")})
	}
	if a.jsonOut {
		a.printJSON(restoreStateReport{States: out})
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tNEWEST STATE\tTIME")
	for _, l := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Host, l.Snapshot[:8], l.Time)
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "%d host(s)\n", len(out))
	return exitOK
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/health"
	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/exitcode"
)

// runStatus is `snapferry status`: is everything healthy here? Exit 0 when nothing needs a
// human, 1 when something does (each such finding is printed under "attention").
func newStatusCmd(a *app) *cobra.Command {
	var vmfs, crontab string
	c := &cobra.Command{
		Use:   "status [options]",
		Short: "is everything healthy here?",
		Long: "Status shows this host's registered processes, running jobs, schedule, last results and\n" +
			"leftover VM snapshots. It exits 0 when nothing needs a human and 1 when something does; each\n" +
			"such finding is listed under \"attention\".",
		Example: "  snapferry status\n  snapferry status --host=root@esxi01 --json",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.status(vmfs, crontab) },
	}
	c.Flags().StringVar(&crontab, "crontab", "", "crontab file to inspect (default: this host's)")
	a.addVMFSFlag(c.Flags(), &vmfs)
	a.addSSHFlags(c.Flags())
	a.addHostFlag(c)
	return c
}

func (a *app) status(vmfs, crontab string) error {
	dir, err := a.stateDir()
	if err != nil {
		return err
	}
	log, reg, err := a.historyLog()
	if err != nil {
		return err
	}
	target, _ := cron.TargetFor(crontab, cron.IsESXi(), cron.ExecRunner)
	var host appliance.Host
	if _, err := exec.LookPath("vim-cmd"); err == nil || vmfs != "" || os.Getenv("SNAPFERRY_VMFS_ROOT") != "" {
		if h, err := esxiHost(vmfs); err == nil {
			host = h
		}
	}
	name, _ := os.Hostname()
	rep := health.Collect(a.ctx, health.Options{Version: version, HostName: name, StateDir: dir, Registry: reg,
		History: log, Cron: cron.NewStore(dir), Crontab: target, Host: host, Now: time.Now()})
	if a.jsonOut {
		rep.Registry, rep.Running, rep.LastRuns = orEmpty(rep.Registry), orEmpty(rep.Running), orEmpty(rep.LastRuns)
		rep.Leftovers, rep.Attention, rep.Cron.Jobs = orEmpty(rep.Leftovers), orEmpty(rep.Attention), orEmpty(rep.Cron.Jobs)
		a.printJSON(rep)
	} else {
		printStatus(a, rep)
	}
	if !rep.Healthy() {
		return exitcode.New(exitcode.Failed, nil) // the findings are printed above
	}
	return nil
}

func printStatus(a *app, r *health.Report) {
	w := a.stdout
	fmt.Fprintf(w, "snapferry %s on %s, state in %s\n", r.Version, r.Host, r.StateDir)
	fmt.Fprintf(w, "\nprocesses (%d registered):\n", len(r.Registry))
	for _, e := range r.Registry {
		fmt.Fprintf(w, "  %d %s %s job %s: %s\n", e.PID, e.Type, e.State, e.JobID, strings.Join(e.Argv, " "))
	}
	fmt.Fprintf(w, "\nrunning jobs (%d):\n", len(r.Running))
	for _, j := range r.Running {
		fmt.Fprintf(w, "  %s %s (%s) since %s: read %s, stored %s\n", j.ID, j.Name, j.Origin, when(j.Started), humanBytes(j.BytesRead), humanBytes(j.BytesStored))
	}
	state := "active"
	if r.Cron.Suspended {
		state = "SUSPENDED"
	}
	crond := "unknown"
	if r.Cron.CrondActive != nil {
		crond = map[bool]string{true: "running", false: "NOT running"}[*r.Cron.CrondActive]
	}
	fmt.Fprintf(w, "\nschedule (%s, crond %s, crontab %s):\n", state, crond, r.Cron.Crontab)
	for _, j := range r.Cron.Jobs {
		inst := "installed"
		if !j.Installed {
			inst = "NOT installed"
		}
		fmt.Fprintf(w, "  %s %q %s, next run %s\n", j.Name, j.Schedule, inst, when(j.NextRun))
	}
	fmt.Fprintf(w, "\nlast results:\n")
	for _, s := range r.LastRuns {
		fmt.Fprintf(w, "  %s: %s at %s (%d runs, last ok %s)\n", s.Name, s.Last.Result(), when(s.Last.Updated), s.Runs, when(s.LastOK))
	}
	if len(r.Leftovers) > 0 {
		fmt.Fprintf(w, "\nleftover VM snapshots:\n")
		for _, l := range r.Leftovers {
			fmt.Fprintf(w, "  VM %s (%s): %s\n", l.VM, l.VMID, l.Snapshot)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
	if r.Healthy() {
		fmt.Fprintln(w, "\nall healthy")
		return
	}
	fmt.Fprintf(w, "\nattention (%d):\n", len(r.Attention))
	for _, m := range r.Attention {
		fmt.Fprintf(w, "  - %s\n", m)
	}
}

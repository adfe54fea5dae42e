package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/pidmgr"
)

// newPidCmd is `snapferry pid list | cleanup | kill-idle`: the PID registry by hand
// (docs/pid-registry.md).
func newPidCmd(a *app) *cobra.Command {
	list := &cobra.Command{
		Use:     "list",
		Short:   "the registered processes",
		Long:    "List shows every process in this host's PID registry: pid, type, state, job and command.",
		Example: "  snapferry pid list",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.pidList() },
	}
	cleanup := &cobra.Command{
		Use:     "cleanup",
		Short:   "remove the entries of processes that ended",
		Long:    "Cleanup removes the registry entries of processes that are gone, and says how many still run.",
		Example: "  snapferry pid cleanup",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.pidCleanup() },
	}
	var dryRun bool
	killIdle := &cobra.Command{
		Use:   "kill-idle [--dry-run]",
		Short: "stop snapferry processes that hang",
		Long: "Kill-idle stops user-started snapferry processes that the registry shows as idle or stuck; cron\n" +
			"and remote processes are never stopped. Each decision is printed with its reason.",
		Example: "  snapferry pid kill-idle --dry-run",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.pidKillIdle(dryRun) },
	}
	killIdle.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be stopped and why, stop nothing")
	c := groupCmd("pid COMMAND", "the PID registry: list, cleanup, kill-idle",
		"Pid shows and tidies this host's registry of snapferry processes (docs/pid-registry.md).",
		list, cleanup, killIdle)
	for _, s := range c.Commands() {
		a.addHostFlag(s)
	}
	return c
}

func (a *app) pidList() error {
	reg, err := a.registry()
	if err != nil {
		return err
	}
	st, err := reg.List(a.ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.printJSON(orEmpty(st))
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tTYPE\tSTATE\tJOB\tSINCE\tCOMMAND")
	for _, s := range st {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.PID, s.Type, s.State, s.JobID,
			s.Registered.Local().Format("2006-01-02 15:04:05"), strings.Join(s.Argv, " "))
	}
	return tw.Flush()
}

func (a *app) pidCleanup() error {
	reg, err := a.registry()
	if err != nil {
		return err
	}
	res, err := reg.Cleanup(a.ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		res.Removed = orEmpty(res.Removed)
		a.printJSON(res)
		return nil
	}
	for _, r := range res.Removed {
		fmt.Fprintf(a.stdout, "removed pid %d (%s, %s)\n", r.Entry.PID, r.Entry.Type, r.State)
	}
	fmt.Fprintf(a.stdout, "%d removed, %d still running\n", len(res.Removed), res.Kept)
	return nil
}

func (a *app) pidKillIdle(dryRun bool) error {
	reg, err := a.registry()
	if err != nil {
		return err
	}
	idle := jobrun.IdleAfter(os.Getenv, func(s string) { fmt.Fprintf(a.stderr, "warning: %s\n", s) })
	rep, err := reg.KillIdle(a.ctx, pidmgr.KillOptions{DryRun: dryRun, IdleAfter: idle})
	if a.jsonOut {
		rep.Decisions = orEmpty(rep.Decisions)
		a.printJSON(rep)
	} else {
		for _, d := range rep.Decisions {
			fmt.Fprintf(a.stdout, "%-10s pid %d %s: %s\n", d.Action, d.Process.PID, d.Process.Name, d.Reason)
		}
		fmt.Fprintf(a.stdout, "%d stopped\n", rep.Stopped())
	}
	return err
}

func (a *app) registry() (*pidmgr.Registry, error) {
	dir, err := a.stateDir()
	if err != nil {
		return nil, err
	}
	return pidmgr.New(pidmgr.Options{Dir: dir, Warn: func(s string) { fmt.Fprintf(a.stderr, "warning: %s\n", s) }})
}

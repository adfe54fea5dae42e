package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/pidmgr"
)

// runPid is `snapferry pid list | cleanup | kill-idle [--dry-run]`: the PID registry by hand.
func runPid(a *app, args []string) int {
	dryRun := a.flags.Bool("dry-run", false, "kill-idle: show what would be stopped and why, stop nothing")
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return a.fail(usagef("pid takes one of: list, cleanup, kill-idle"))
	}
	reg, err := a.registry()
	if err != nil {
		return a.fail(err)
	}
	switch pos[0] {
	case "list":
		st, err := reg.List(a.ctx)
		if err != nil {
			return a.fail(err)
		}
		if a.jsonOut {
			a.printJSON(st)
			return exitOK
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PID\tTYPE\tSTATE\tJOB\tSINCE\tCOMMAND")
		for _, s := range st {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.PID, s.Type, s.State, s.JobID,
				s.Registered.Local().Format("2006-01-02 15:04:05"), strings.Join(s.Argv, " "))
		}
		tw.Flush()
	case "cleanup":
		res, err := reg.Cleanup(a.ctx)
		if err != nil {
			return a.fail(err)
		}
		if a.jsonOut {
			a.printJSON(res)
			return exitOK
		}
		for _, r := range res.Removed {
			fmt.Fprintf(a.stdout, "removed pid %d (%s, %s)\n", r.Entry.PID, r.Entry.Type, r.State)
		}
		fmt.Fprintf(a.stdout, "%d removed, %d still running\n", len(res.Removed), res.Kept)
	case "kill-idle":
		idle := jobrun.IdleAfter(os.Getenv, func(s string) { fmt.Fprintf(a.stderr, "warning: %s\n", s) })
		rep, err := reg.KillIdle(a.ctx, pidmgr.KillOptions{DryRun: *dryRun, IdleAfter: idle})
		if a.jsonOut {
			a.printJSON(rep)
		} else {
			for _, d := range rep.Decisions {
				fmt.Fprintf(a.stdout, "%-10s pid %d %s: %s\n", d.Action, d.Process.PID, d.Process.Name, d.Reason)
			}
			fmt.Fprintf(a.stdout, "%d stopped\n", rep.Stopped())
		}
		if err != nil {
			return a.fail(err)
		}
	default:
		return a.fail(usagef("pid %q: want list, cleanup or kill-idle", pos[0]))
	}
	return exitOK
}

func (a *app) registry() (*pidmgr.Registry, error) {
	dir, err := a.stateDir()
	if err != nil {
		return nil, err
	}
	return pidmgr.New(pidmgr.Options{Dir: dir, Warn: func(s string) { fmt.Fprintf(a.stderr, "warning: %s\n", s) }})
}

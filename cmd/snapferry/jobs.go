package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/cron/history"
	"github.com/snapferry/snapferry/pidmgr"
)

func newJobsCmd(a *app) *cobra.Command {
	var summary bool
	c := &cobra.Command{
		Use:   "jobs [JOBID] [--summary]",
		Short: "the job history",
		Long: "Jobs lists the job history of this host (backups, restores, replicas, cron runs): state,\n" +
			"result, times, bytes and exit status; with JOBID one job in detail, with --summary one line per\n" +
			"job name.",
		Example: "  snapferry jobs\n  snapferry jobs --summary\n  snapferry jobs 20261122-0200-ab12",
		Args:    maxArgs(1),
		RunE:    func(_ *cobra.Command, args []string) error { return a.jobs(args, summary) },
	}
	c.Flags().BoolVar(&summary, "summary", false, "one line per job name: runs, results, last success")
	a.addHostFlag(c)
	return c
}

// jobs prints the job history: one job (pos[0]), a summary per name, or every job.
func (a *app) jobs(pos []string, summary bool) error {
	log, reg, err := a.historyLog()
	if err != nil {
		return err
	}
	// One process listing for all jobs: on ESXi every lookup would run `ps -c` again.
	alive, err := pidmgr.Snapshot(a.ctx, reg.Table())
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 1:
		j, err := log.Job(a.ctx, pos[0], alive)
		if err != nil {
			return err
		}
		if a.jsonOut {
			a.printJSON(j)
			return nil
		}
		printJob(a, j)
	case summary:
		ss, err := log.Summaries(a.ctx, alive)
		if err != nil {
			return err
		}
		if a.jsonOut {
			a.printJSON(orEmpty(ss))
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tRUNS\tOK\tPARTIAL\tFAILED\tDIED\tRUNNING\tLAST\tLAST OK")
		for _, s := range ss {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.Name, s.Runs, s.OK, s.Partial, s.Failed+s.Interrupted,
				s.Died, s.Running, s.Last.Result(), when(s.LastOK))
		}
		tw.Flush()
	default:
		js, err := log.Jobs(a.ctx, alive)
		if err != nil {
			return err
		}
		if a.jsonOut {
			a.printJSON(orEmpty(js))
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "JOB\tNAME\tORIGIN\tSTATE\tRESULT\tSTART\tEND\tREAD\tSTORED\tEXIT\tERROR")
		for _, j := range js {
			exit := "-"
			if j.Exit != nil {
				exit = fmt.Sprint(*j.Exit)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Name, j.Origin, j.State, j.Result(),
				when(j.Started), when(j.Ended), humanBytes(j.BytesRead), humanBytes(j.BytesStored), exit, oneLine(j.Error, 60))
		}
		tw.Flush()
	}
	return nil
}

// historyLog opens the job history and the registry (whose process table tells died jobs).
func (a *app) historyLog() (*history.Log, *pidmgr.Registry, error) {
	dir, err := a.stateDir()
	if err != nil {
		return nil, nil, err
	}
	reg, err := a.registry()
	if err != nil {
		return nil, nil, err
	}
	log, err := history.Open(history.Options{Dir: dir, Warn: func(s string) { fmt.Fprintf(a.stderr, "warning: %s\n", s) }})
	if err != nil {
		return nil, nil, err
	}
	return log, reg, nil
}

func printJob(a *app, j history.Job) {
	fmt.Fprintf(a.stdout, "job %s (%s, started by %s, attempt %d)\n", j.ID, j.Name, j.Origin, j.Attempt)
	fmt.Fprintf(a.stdout, "  state %s, result %s, pid %d\n", j.State, j.Result(), j.PID)
	fmt.Fprintf(a.stdout, "  started %s, ended %s\n", when(j.Started), when(j.Ended))
	if len(j.VMs) > 0 {
		fmt.Fprintf(a.stdout, "  VMs: %s\n", strings.Join(j.VMs, ", "))
	}
	if len(j.Paths) > 0 {
		fmt.Fprintf(a.stdout, "  paths: %s\n", strings.Join(j.Paths, ", "))
	}
	fmt.Fprintf(a.stdout, "  read %s, sent %s, stored %s\n", humanBytes(j.BytesRead), humanBytes(j.BytesSent), humanBytes(j.BytesStored))
	if j.Exit != nil {
		fmt.Fprintf(a.stdout, "  exit status %d\n", *j.Exit)
	}
	if j.Error != "" {
		fmt.Fprintf(a.stdout, "  error: %s\n", j.Error)
	}
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func oneLine(s string, max int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > max {
		return s[:max-1] + "…"
	}
	return s
}

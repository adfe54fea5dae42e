package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/cron"
)

// dueRun is one start that `cron due` lists.
type dueRun struct {
	At       time.Time `json:"at"`
	Name     string    `json:"name"`
	Schedule string    `json:"schedule"`
	Args     []string  `json:"args"`
}

// runCronDue is `snapferry cron due [--at=TIME] [--until=TIME]`: the jobs that start in the
// minute of --at (default now), or every start from then until --until. It reads the schedules
// the way crond will, so it answers "will my job run tonight?" without waiting for the night.
func newCronDueCmd(a *app) *cobra.Command {
	var at, until string
	c := &cobra.Command{
		Use:   "due [--at=TIME] [--until=TIME]",
		Short: "which jobs start at a time or until a time",
		Long: "Due lists the jobs that start in the minute of --at (default now), or every start from then until\n" +
			"--until. It reads the schedules as crond will: \"will my job run tonight?\" without waiting.",
		Example: "  snapferry cron due --at=02:00\n  snapferry cron due --until=\"2026-11-23 00:00\"",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.cronDue(&at, &until) },
	}
	c.Flags().StringVar(&at, "at", "", "the minute to ask about: 2026-11-22T02:00:00Z, \"2026-11-22 02:00\" or 02:00 (default now)")
	c.Flags().StringVar(&until, "until", "", "list every start from --at (or now) up to this time")
	return c
}

func (a *app) cronDue(atFlag, untilFlag *string) error {
	now := time.Now()
	from := now
	if *atFlag != "" {
		t, err := cron.ParseAt(*atFlag, now)
		if err != nil {
			return usagef("--at: %v", err)
		}
		from = t
	}
	store, _, err := a.cronStore()
	if err != nil {
		return err
	}
	f, err := store.Load(a.ctx)
	if err != nil {
		return err
	}
	runs := []dueRun{}
	if *untilFlag == "" {
		jobs, err := cron.DueAt(f.Jobs, from)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			runs = append(runs, dueRun{At: from.Truncate(time.Minute), Name: j.Name, Schedule: j.Schedule, Args: j.Args})
		}
	} else {
		until, err := cron.ParseAt(*untilFlag, from)
		if err != nil {
			return usagef("--until: %v", err)
		}
		occ, err := cron.DueUntil(f.Jobs, from, until)
		if err != nil {
			return asUsage(err)
		}
		for _, o := range occ {
			runs = append(runs, dueRun{At: o.At, Name: o.Job.Name, Schedule: o.Job.Schedule, Args: o.Job.Args})
		}
	}
	if a.jsonOut {
		a.printJSON(map[string]any{"suspended": f.Suspended, "runs": runs})
		return nil
	}
	if f.Suspended {
		fmt.Fprintln(a.stdout, "scheduling is SUSPENDED: none of these runs until `snapferry cron resume`")
	}
	if len(runs) == 0 {
		fmt.Fprintln(a.stdout, "no job is due")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tNAME\tSCHEDULE\tCOMMAND")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.At.Format("2006-01-02 15:04 MST"), r.Name, r.Schedule, strings.Join(r.Args, " "))
	}
	return tw.Flush()
}

package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

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
func runCronDue(a *app, args []string) int {
	atFlag := a.flags.String("at", "", "the minute to ask about: 2026-11-22T02:00:00Z, \"2026-11-22 02:00\" or 02:00 (default now)")
	untilFlag := a.flags.String("until", "", "list every start from --at (or now) up to this time")
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("cron due takes no arguments; ask with --at=TIME or --until=TIME"))
	}
	now := time.Now()
	from := now
	if *atFlag != "" {
		t, err := cron.ParseAt(*atFlag, now)
		if err != nil {
			return a.fail(usagef("--at: %v", err))
		}
		from = t
	}
	store, _, err := a.cronStore()
	if err != nil {
		return a.fail(err)
	}
	f, err := store.Load(a.ctx)
	if err != nil {
		return a.fail(err)
	}
	runs := []dueRun{}
	if *untilFlag == "" {
		jobs, err := cron.DueAt(f.Jobs, from)
		if err != nil {
			return a.fail(err)
		}
		for _, j := range jobs {
			runs = append(runs, dueRun{At: from.Truncate(time.Minute), Name: j.Name, Schedule: j.Schedule, Args: j.Args})
		}
	} else {
		until, err := cron.ParseAt(*untilFlag, from)
		if err != nil {
			return a.fail(usagef("--until: %v", err))
		}
		occ, err := cron.DueUntil(f.Jobs, from, until)
		if err != nil {
			return a.fail(usageError{err.Error()})
		}
		for _, o := range occ {
			runs = append(runs, dueRun{At: o.At, Name: o.Job.Name, Schedule: o.Job.Schedule, Args: o.Job.Args})
		}
	}
	if a.jsonOut {
		a.printJSON(map[string]any{"suspended": f.Suspended, "runs": runs})
		return exitOK
	}
	if f.Suspended {
		fmt.Fprintln(a.stdout, "scheduling is SUSPENDED: none of these runs until `snapferry cron resume`")
	}
	if len(runs) == 0 {
		fmt.Fprintln(a.stdout, "no job is due")
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tNAME\tSCHEDULE\tCOMMAND")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.At.Format("2006-01-02 15:04 MST"), r.Name, r.Schedule, strings.Join(r.Args, " "))
	}
	tw.Flush()
	return exitOK
}

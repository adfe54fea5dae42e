package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/snapferry/snapferry/cron"
)

// listedJob is a job as `cron list --json` shows it: the stored definition plus its next start.
type listedJob struct {
	cron.Job
	Next time.Time `json:"next,omitzero"`
}

// cronListing is the whole `cron list --json` document.
type cronListing struct {
	Suspended bool        `json:"suspended"`
	File      string      `json:"file"`
	Jobs      []listedJob `json:"jobs"`
}

// runCronList is `snapferry cron list`: every job, its schedule, next start and command.
func runCronList(a *app, args []string) int {
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("cron list takes no arguments"))
	}
	store, _, err := a.cronStore()
	if err != nil {
		return a.fail(err)
	}
	f, err := store.Load(a.ctx)
	if err != nil {
		return a.fail(err)
	}
	now := time.Now()
	out := cronListing{Suspended: f.Suspended, File: store.Path(), Jobs: []listedJob{}}
	for _, j := range f.Jobs {
		next, err := cron.NextRun(j, now)
		if err != nil {
			return a.fail(err)
		}
		out.Jobs = append(out.Jobs, listedJob{Job: j, Next: next})
	}
	if a.jsonOut {
		a.printJSON(out)
		return exitOK
	}
	if f.Suspended {
		fmt.Fprintln(a.stdout, "scheduling is SUSPENDED: no job runs until `snapferry cron resume`")
	}
	if len(out.Jobs) == 0 {
		fmt.Fprintf(a.stdout, "no jobs in %s; add one with snapferry cron add\n", store.Path())
		return exitOK
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCHEDULE\tNEXT\tRETRIES\tMAIL\tHOOKS\tCOMMAND")
	for _, j := range out.Jobs {
		next := when(j.Next)
		if f.Suspended {
			next = "suspended"
		}
		mail := "-"
		if len(j.Mail.To) > 0 {
			mail = strings.Join(j.Mail.To, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", j.Name, j.Schedule, next, j.Retry.Retries, mail,
			len(j.Hooks), strings.Join(j.Args, " "))
	}
	tw.Flush()
	return exitOK
}

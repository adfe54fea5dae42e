package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

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

func newCronListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "the jobs, their next run and the suspend state",
		Long:    "List shows every job: its schedule, next start, retries, mail, hooks and command.",
		Example: "  snapferry cron list\n  snapferry --home=/vmfs/volumes/ds1/snapferry cron list --json",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.cronList() },
	}
}

// cronList prints every job, its schedule, next start and command.
func (a *app) cronList() error {
	store, _, err := a.cronStore()
	if err != nil {
		return err
	}
	f, err := store.Load(a.ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	out := cronListing{Suspended: f.Suspended, File: store.Path(), Jobs: []listedJob{}}
	for _, j := range f.Jobs {
		next, err := cron.NextRun(j, now)
		if err != nil {
			return err
		}
		out.Jobs = append(out.Jobs, listedJob{Job: j, Next: next})
	}
	if a.jsonOut {
		a.printJSON(out)
		return nil
	}
	if f.Suspended {
		fmt.Fprintln(a.stdout, "scheduling is SUSPENDED: no job runs until `snapferry cron resume`")
	}
	if len(out.Jobs) == 0 {
		fmt.Fprintf(a.stdout, "no jobs in %s; add one with snapferry cron add\n", store.Path())
		return nil
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
	return tw.Flush()
}

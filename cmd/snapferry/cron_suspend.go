package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// newCronSuspendCmd is `snapferry cron suspend` (pause all scheduling, keep every job) or, with
// suspend false, `snapferry cron resume`.
func newCronSuspendCmd(a *app, suspend bool) *cobra.Command {
	var crontabPath string
	c := &cobra.Command{
		Use:   "suspend [--crontab=FILE]",
		Short: "pause all scheduling, keep every job",
		Long: "Suspend pauses every job: the crontab lines are written commented out and `cron run` refuses,\n" +
			"until `snapferry cron resume`.",
		Example: "  snapferry cron suspend",
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return a.setCronSuspended(suspend, crontabPath) },
	}
	if !suspend {
		c.Use, c.Short, c.Example = "resume [--crontab=FILE]", "end a suspend", "  snapferry cron resume"
		c.Long = "Resume ends a suspend: the crontab lines are written active again."
	}
	a.addCrontabFlag(c.Flags(), &crontabPath)
	return c
}

// setCronSuspended sets the flag in the jobs file and, where snapferry lines are installed,
// comments them out or back in, so the crontab shows the state. `cron run` also checks the flag,
// so a stale crontab cannot start a suspended job either.
func (a *app) setCronSuspended(suspended bool, crontabPath string) error {
	store, home, err := a.cronStore()
	if err != nil {
		return err
	}
	if err := store.SetSuspended(a.ctx, suspended); err != nil {
		return err
	}
	state := "resumed"
	if suspended {
		state = "suspended: no job runs until `snapferry cron resume`; every job is kept"
	}
	if a.jsonOut {
		a.printJSON(map[string]any{"suspended": suspended, "file": store.Path()})
	} else {
		fmt.Fprintf(a.stdout, "scheduling %s\n", state)
	}
	if _, err := a.refreshCrontab(store, home, crontabPath); err != nil {
		return err
	}
	return nil
}

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/cron"
)

// runCronRemove is `snapferry cron remove NAME`: the job goes from the jobs file and, where
// snapferry lines are installed, from the crontab. Its log and history stay.
func newCronRemoveCmd(a *app) *cobra.Command {
	var crontabPath string
	c := &cobra.Command{
		Use:   "remove NAME [--crontab=FILE]",
		Short: "delete a job",
		Long: "Remove deletes job NAME from the jobs file and, where snapferry lines are installed, its\n" +
			"crontab line. Its log and history stay.",
		Example: "  snapferry cron remove nightly",
		Args:    exactArgs(1),
		RunE:    func(_ *cobra.Command, args []string) error { return a.cronRemove(args[0], crontabPath) },
	}
	a.addCrontabFlag(c.Flags(), &crontabPath)
	return c
}

func (a *app) cronRemove(name, crontabPath string) error {
	store, home, err := a.cronStore()
	if err != nil {
		return err
	}
	if err := store.Remove(a.ctx, name); err != nil {
		if errors.Is(err, cron.ErrJobNotFound) {
			return asUsage(err)
		}
		return err
	}
	if a.jsonOut {
		a.printJSON(map[string]string{"removed": name, "file": store.Path()})
	} else {
		a.cronNote("job %s removed from %s", name, store.Path())
	}
	if _, err := a.refreshCrontab(store, home, crontabPath); err != nil {
		return err
	}
	return nil
}

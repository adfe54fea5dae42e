package main

import (
	"errors"

	"github.com/snapferry/snapferry/cron"
)

// runCronRemove is `snapferry cron remove NAME`: the job goes from the jobs file and, where
// snapferry lines are installed, from the crontab. Its log and history stay.
func runCronRemove(a *app, args []string) int {
	var crontabPath string
	a.addCrontabFlag(&crontabPath)
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return a.fail(usagef("cron remove takes one job name (see snapferry cron list)"))
	}
	store, home, err := a.cronStore()
	if err != nil {
		return a.fail(err)
	}
	if err := store.Remove(a.ctx, pos[0]); err != nil {
		if errors.Is(err, cron.ErrJobNotFound) {
			return a.fail(usageError{err.Error()})
		}
		return a.fail(err)
	}
	a.cronNote("job %s removed from %s", pos[0], store.Path())
	if _, err := a.refreshCrontab(store, home, crontabPath); err != nil {
		return a.fail(err)
	}
	return exitOK
}

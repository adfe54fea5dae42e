package main

import "fmt"

// runCronSuspend is `snapferry cron suspend`: pause all scheduling, keep every job.
func runCronSuspend(a *app, args []string) int { return setCronSuspended(a, args, true) }

// runCronResume is `snapferry cron resume`: end a suspend.
func runCronResume(a *app, args []string) int { return setCronSuspended(a, args, false) }

// setCronSuspended sets the flag in the jobs file and, where snapferry lines are installed,
// comments them out or back in, so the crontab shows the state. `cron run` also checks the flag,
// so a stale crontab cannot start a suspended job either.
func setCronSuspended(a *app, args []string, suspended bool) int {
	var crontabPath string
	a.addCrontabFlag(&crontabPath)
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("%s takes no arguments", a.cmd))
	}
	store, home, err := a.cronStore()
	if err != nil {
		return a.fail(err)
	}
	if err := store.SetSuspended(a.ctx, suspended); err != nil {
		return a.fail(err)
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
		return a.fail(err)
	}
	return exitOK
}

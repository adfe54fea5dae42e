package main

import (
	"fmt"
)

// runRetain is `snapferry retain --repo=REPO`: on an Object Lock store, extend the retention of
// what the snapshots younger than the retention still need (repo.RenewRetention). Meant to run
// daily from cron, or after each backup; on other stores it says so and does nothing.
func runRetain(a *app, args []string) int {
	a.addPasswordFlag() // not in opensRepository: this command is newer than that list
	repoFlag := a.addRepoFlag()
	r, code := a.openRepoOnly(args, repoFlag, false)
	if r == nil {
		return code
	}
	defer r.Close()
	rep, err := r.RenewRetention(a.ctx)
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(rep)
		return exitOK
	}
	if rep.Retention == 0 {
		fmt.Fprintf(a.stdout, "retain: %s keeps no retention (no S3 Object Lock); nothing to do\n", r.Backend().Location())
		return exitOK
	}
	fmt.Fprintf(a.stdout, "retain: %d snapshots younger than %s need %d files; %d renewed until %s\n",
		rep.Snapshots, rep.Retention, rep.Files, rep.Renewed, rep.Until.Local().Format("2006-01-02 15:04"))
	return exitOK
}

package main

import (
	"fmt"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
)

func runForget(a *app, args []string) int {
	repoFlag := a.flags.String("repo", "", "repository (env SNAPFERRY_REPO)")
	var p repo.Policy
	a.flags.IntVar(&p.Last, "keep-last", 0, "keep the N newest snapshots")
	a.flags.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last N hours")
	a.flags.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last N days")
	a.flags.IntVar(&p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last N weeks")
	a.flags.IntVar(&p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last N months")
	a.flags.IntVar(&p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last N years")
	a.flags.DurationVar(&p.Within, "keep-within", 0, "keep every snapshot newer than this (e.g. 72h)")
	a.flags.StringSliceVar(&p.Tags, "keep-tag", nil, "keep every snapshot with one of these tags")
	source := a.flags.String("source", "", "only this source (VM name, path)")
	dryRun := a.flags.Bool("dry-run", false, "show what would be removed, remove nothing")
	prune := a.flags.Bool("prune", false, "run prune afterwards")
	a.addSSHFlags()
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("forget takes no arguments, got %q", pos))
	}
	if p.Empty() {
		return a.fail(usagef("forget needs a policy (--keep-last, --keep-daily, ...): without one it would remove every snapshot"))
	}
	spec, err := repoSpec(*repoFlag, "repo")
	if err != nil {
		return a.fail(err)
	}
	r, err := a.openRepo(spec, *prune)
	if err != nil {
		return a.fail(err)
	}
	defer r.Close()
	groups, err := r.Forget(a.ctx, p, repo.SnapshotFilter{Source: *source}, *dryRun)
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(groups)
	} else {
		verb := "remove"
		if *dryRun {
			verb = "would remove"
		}
		for _, g := range groups {
			fmt.Fprintf(a.stdout, "%s %s:\n", g.Host, g.Source)
			for _, d := range g.Decisions {
				if d.Keep {
					fmt.Fprintf(a.stdout, "  keep   %s %s (%s)\n", d.ID.Short(), d.Snapshot.Time.Local().Format("2006-01-02 15:04"), strings.Join(d.Reasons, ", "))
				} else {
					fmt.Fprintf(a.stdout, "  %s %s %s\n", verb, d.ID.Short(), d.Snapshot.Time.Local().Format("2006-01-02 15:04"))
				}
			}
		}
	}
	if *prune && !*dryRun {
		return a.prune(r, 0)
	}
	return exitOK
}

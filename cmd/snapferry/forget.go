package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

type forgetOptions struct {
	repo   *string
	policy repo.Policy
	source string
	dryRun bool
	prune  bool
}

func newForgetCmd(a *app) *cobra.Command {
	var o forgetOptions
	c := &cobra.Command{
		Use:   "forget --repo=REPO --keep-...=N [options]",
		Short: "remove snapshots by a keep policy",
		Long: "Forget removes the snapshots that no --keep rule keeps, per host and source. Without a policy\n" +
			"it refuses (it would remove every snapshot). The data stays until prune (or --prune) runs.",
		Example: "  snapferry forget --repo=/backup/repo --keep-daily=7 --keep-weekly=4 --dry-run\n" +
			"  snapferry forget --repo=/backup/repo --keep-last=10 --source=web01 --prune",
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return a.forget(o) },
	}
	fs := c.Flags()
	o.repo = a.addRepoFlag(fs)
	p := &o.policy
	fs.IntVar(&p.Last, "keep-last", 0, "keep the N newest snapshots")
	fs.IntVar(&p.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last N hours")
	fs.IntVar(&p.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last N days")
	fs.IntVar(&p.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last N weeks")
	fs.IntVar(&p.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last N months")
	fs.IntVar(&p.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last N years")
	fs.DurationVar(&p.Within, "keep-within", 0, "keep every snapshot newer than this (e.g. 72h)")
	fs.StringSliceVar(&p.Tags, "keep-tag", nil, "keep every snapshot with one of these tags")
	fs.StringVar(&o.source, "source", "", "only this source (VM name, path)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "show what would be removed, remove nothing")
	fs.BoolVar(&o.prune, "prune", false, "run prune afterwards")
	a.addHostFlag(c)
	return c
}

func (a *app) forget(o forgetOptions) error {
	if o.policy.Empty() {
		return usagef("forget needs a policy (--keep-last, --keep-daily, ...): without one it would remove every snapshot")
	}
	a.storeCopies = o.prune // prune judges the store's own files
	r, err := a.openRepoFlag(*o.repo, o.prune)
	if err != nil {
		return err
	}
	defer r.Close()
	groups, err := r.Forget(a.ctx, o.policy, repo.SnapshotFilter{Source: o.source}, o.dryRun)
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.printJSON(orEmpty(groups))
	} else {
		verb := "remove"
		if o.dryRun {
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
	if o.prune && !o.dryRun {
		return a.prune(r, false, 0)
	}
	return nil
}

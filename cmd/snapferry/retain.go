package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

func newRetainCmd(a *app) *cobra.Command {
	var repoFlag *string
	c := &cobra.Command{
		Use:   "retain --repo=REPO",
		Short: "renew S3 Object Lock retention of what recent snapshots need",
		Long: "Retain extends, on an S3 Object Lock store, the retention of every file the snapshots younger\n" +
			"than the retention still need. Run it daily from cron, or after each backup; on other stores it\n" +
			"says so and does nothing.",
		Example: "  snapferry retain --repo=s3://bucket/snapferry",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.withRepo(*repoFlag, false, a.retain)
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	a.addHostFlag(c)
	return c
}

// retain extends the retention of what the young snapshots need (repo.RenewRetention).
func (a *app) retain(r *repo.Repository) error {
	rep, err := r.RenewRetention(a.ctx)
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.printJSON(rep)
		return nil
	}
	if rep.Retention == 0 {
		fmt.Fprintf(a.stdout, "retain: %s keeps no retention (no S3 Object Lock); nothing to do\n", r.Backend().Location())
		return nil
	}
	fmt.Fprintf(a.stdout, "retain: %s younger than %s need %s; %d renewed until %s\n",
		plural(rep.Snapshots, "snapshot"), rep.Retention, plural(rep.Files, "file"), rep.Renewed, rep.Until.Local().Format("2006-01-02 15:04"))
	return nil
}

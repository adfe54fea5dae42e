package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

func newUnlockCmd(a *app) *cobra.Command {
	var repoFlag *string
	var all bool
	c := &cobra.Command{
		Use:   "unlock --repo=REPO [--all]",
		Short: "remove stale repository locks",
		Long: "Unlock removes stale locks: those of dead processes and those not refreshed for 30 minutes.\n" +
			"--all removes every lock, also live ones: only when you know no backup or prune runs.",
		Example: "  snapferry unlock --repo=/backup/repo",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.withRepo(*repoFlag, false, func(r *repo.Repository) error {
				n, err := r.RemoveStaleLocks(a.ctx, all)
				if err != nil {
					return err
				}
				if a.jsonOut {
					a.printJSON(map[string]int{"removed": n})
					return nil
				}
				fmt.Fprintf(a.stdout, "removed %s\n", plural(n, "lock"))
				return nil
			})
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	c.Flags().BoolVar(&all, "all", false, "remove every lock, also live ones (only when no backup or prune runs)")
	a.addHostFlag(c)
	return c
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

func newRebuildIndexCmd(a *app) *cobra.Command {
	var repoFlag *string
	c := &cobra.Command{
		Use:   "rebuild-index --repo=REPO",
		Short: "rebuild the index from the packs",
		Long: "Rebuild-index reads the header of every pack and writes a new index from them alone, after\n" +
			"index files were lost or damaged. Packs it cannot read are listed; the run then exits 1.",
		Example: "  snapferry rebuild-index --repo=/backup/repo",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			a.storeCopies = true
			return a.withRepo(*repoFlag, true, func(r *repo.Repository) error {
				rep, err := r.RebuildIndex(a.ctx)
				if err != nil {
					return err
				}
				if a.jsonOut {
					a.printJSON(rep)
					return nil
				}
				fmt.Fprintf(a.stdout, "rebuilt the index from %s (%s): %s replaced by %d\n",
					plural(rep.Packs, "pack"), plural(rep.Blobs, "blob"), plural(rep.IndexFilesOld, "old index file"), rep.IndexFilesNew)
				for _, m := range rep.BadPackMessages {
					fmt.Fprintf(a.stdout, "unreadable pack: %s\n", m)
				}
				if len(rep.BadPacks) > 0 {
					return fmt.Errorf("%s could not be read; run `snapferry check --read-data` to see which snapshots need them", plural(len(rep.BadPacks), "pack"))
				}
				return nil
			})
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	a.addHostFlag(c)
	return c
}

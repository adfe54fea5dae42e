package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

func newPruneCmd(a *app) *cobra.Command {
	var repoFlag *string
	var dryRun bool
	c := &cobra.Command{
		Use:   "prune --repo=REPO [options]",
		Short: "remove data no snapshot needs",
		Long: "Prune deletes the packs no snapshot references and repacks the partly used ones. It takes the\n" +
			"repository's exclusive lock: no backup may run meanwhile.",
		Example: "  snapferry prune --repo=/backup/repo --dry-run\n  snapferry prune --repo=/backup/repo",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.withRepo(*repoFlag, true, func(r *repo.Repository) error {
				return a.prune(r, dryRun)
			})
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	c.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be removed, change nothing")
	a.addHostFlag(c)
	return c
}

// prune removes data no snapshot references; shared by `prune` and `forget --prune`.
func (a *app) prune(r *repo.Repository, dryRun bool) error {
	// Registered (no kill-idle of its own) so that a user launch keeps it while it makes progress.
	defer a.beginTask("prune")()
	prog := a.renderer()
	rep, err := r.Prune(a.ctx, repo.PruneOptions{DryRun: dryRun, Progress: prog})
	prog.Close()
	if err != nil {
		return err
	}
	if a.jsonOut {
		a.printJSON(rep)
		return nil
	}
	verb := "prune"
	if dryRun {
		verb = "prune --dry-run (nothing changed)"
	}
	fmt.Fprintf(a.stdout, "%s: %d snapshots, %d blobs used, %d unused; packs: %d kept, %d deleted, %d repacked into %d; freed %s\n", verb,
		rep.Snapshots, rep.BlobsUsed, rep.BlobsUnused, rep.PacksKept, rep.PacksDeleted, rep.PacksRepacked, rep.PacksWritten, humanBytes(rep.BytesFreed))
	for _, id := range rep.DamagedBlobs {
		fmt.Fprintf(a.stdout, "blob %s: no copy verified, every copy kept (run `snapferry check --read-data`, then `snapferry repair`)\n", id.Short())
	}
	return nil
}

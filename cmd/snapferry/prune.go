package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

func newPruneCmd(a *app) *cobra.Command {
	var repoFlag *string
	var dryRun bool
	var keep time.Duration
	c := &cobra.Command{
		Use:   "prune --repo=REPO [options]",
		Short: "remove data no snapshot needs",
		Long: "Prune deletes the packs no snapshot references and repacks the partly used ones. It takes the\n" +
			"repository's exclusive lock: no backup may run meanwhile.",
		Example: "  snapferry prune --repo=/backup/repo --dry-run\n  snapferry prune --repo=/backup/repo",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			a.storeCopies = true
			return a.withRepo(*repoFlag, true, func(r *repo.Repository) error {
				return a.prune(r, dryRun, keep)
			})
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	c.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be removed, change nothing")
	c.Flags().DurationVar(&keep, "keep-unindexed", 0, "also keep packs in no index and temp files younger than this "+
		"(0: delete them as soon as no running writer can use them)")
	a.addHostFlag(c)
	return c
}

// prune removes data no snapshot references; shared by `prune` and `forget --prune`.
// keepUnindexed is prune's --keep-unindexed.
func (a *app) prune(r *repo.Repository, dryRun bool, keepUnindexed time.Duration) error {
	// Registered (no kill-idle of its own) so that a user launch keeps it while it makes progress.
	defer a.beginTask("prune")()
	prog := a.renderer()
	rep, err := r.Prune(a.ctx, repo.PruneOptions{DryRun: dryRun, KeepUnindexed: keepUnindexed, Progress: prog})
	return a.printReport(prog, rep, err, func() {
		fmt.Fprintf(a.stdout, "%s: %d snapshots, %d blobs used, %d unused; packs: %d kept, %d deleted, %d repacked into %d; freed %s\n",
			dryRunVerb("prune", dryRun), rep.Snapshots, rep.BlobsUsed, rep.BlobsUnused, rep.PacksKept, rep.PacksDeleted,
			rep.PacksRepacked, rep.PacksWritten, humanBytes(rep.BytesFreed))
		if rep.PacksDeferred > 0 {
			fmt.Fprintf(a.stdout, "%d packs in no index stay for now: a writer that started before they left the index still runs "+
				"(or --keep-unindexed spares them); a later prune deletes them\n", rep.PacksDeferred)
		}
		if rep.TempFilesRemoved > 0 {
			fmt.Fprintf(a.stdout, "removed %d temp files of interrupted uploads (%s)\n", rep.TempFilesRemoved, humanBytes(rep.TempBytesRemoved))
		}
		for _, id := range rep.DamagedBlobs {
			fmt.Fprintf(a.stdout, "blob %s: no copy verified, every copy kept (run `snapferry check --read-data`, then `snapferry repair`)\n", id.Short())
		}
	})
}

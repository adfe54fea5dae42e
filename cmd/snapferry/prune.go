package main

import (
	"fmt"
	"time"

	"github.com/snapferry/snapferry/images/repo"
)

func runPrune(a *app, args []string) int {
	repoFlag := a.addRepoFlag()
	a.flags.BoolVar(&a.dryRun, "dry-run", false, "report what would be removed, change nothing")
	keep := a.flags.Duration("keep-unindexed", 0, "also keep packs in no index and temp files younger than this "+
		"(0: delete them as soon as no running writer can use them)")
	r, code := a.openRepoOnly(args, repoFlag, true)
	if r == nil {
		return code
	}
	defer r.Close()
	return a.prune(r, *keep)
}

// prune removes data no snapshot references; shared by `prune` and `forget --prune`.
// keepUnindexed is prune's --keep-unindexed.
func (a *app) prune(r *repo.Repository, keepUnindexed time.Duration) int {
	// Registered (no kill-idle of its own) so that a user launch keeps it while it makes progress.
	defer a.beginTask("prune")()
	prog := a.renderer()
	rep, err := r.Prune(a.ctx, repo.PruneOptions{DryRun: a.dryRun, KeepUnindexed: keepUnindexed, Progress: prog})
	prog.Close()
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(rep)
		return exitOK
	}
	verb := "prune"
	if a.dryRun {
		verb = "prune --dry-run (nothing changed)"
	}
	fmt.Fprintf(a.stdout, "%s: %d snapshots, %d blobs used, %d unused; packs: %d kept, %d deleted, %d repacked into %d; freed %s\n", verb,
		rep.Snapshots, rep.BlobsUsed, rep.BlobsUnused, rep.PacksKept, rep.PacksDeleted, rep.PacksRepacked, rep.PacksWritten, humanBytes(rep.BytesFreed))
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
	return exitOK
}

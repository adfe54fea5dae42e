package main

import (
	"fmt"

	"github.com/snapferry/snapferry/images/repo"
)

func runPrune(a *app, args []string) int {
	repoFlag := a.addRepoFlag()
	a.flags.BoolVar(&a.dryRun, "dry-run", false, "report what would be removed, change nothing")
	r, code := a.openRepoOnly(args, repoFlag, true)
	if r == nil {
		return code
	}
	defer r.Close()
	return a.prune(r)
}

// prune removes data no snapshot references; shared by `prune` and `forget --prune`.
func (a *app) prune(r *repo.Repository) int {
	// Registered (no kill-idle of its own) so that a user launch keeps it while it makes progress.
	defer a.beginTask("prune")()
	prog := a.renderer()
	rep, err := r.Prune(a.ctx, repo.PruneOptions{DryRun: a.dryRun, Progress: prog})
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
	for _, id := range rep.DamagedBlobs {
		fmt.Fprintf(a.stdout, "blob %s: no copy verified, every copy kept (run `snapferry check --read-data`, then `snapferry repair`)\n", id.Short())
	}
	return exitOK
}

package main

import "fmt"

// runRebuildIndex is `snapferry rebuild-index --repo=REPO`: rebuild the index from the pack
// headers alone (after lost or damaged index files).
func runRebuildIndex(a *app, args []string) int {
	repoFlag := a.addRepoFlag()
	r, code := a.openRepoOnly(args, repoFlag, true)
	if r == nil {
		return code
	}
	defer r.Close()
	rep, err := r.RebuildIndex(a.ctx)
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(rep)
		return exitOK
	}
	fmt.Fprintf(a.stdout, "rebuilt the index from %d packs (%d blobs): %d old index files replaced by %d\n",
		rep.Packs, rep.Blobs, rep.IndexFilesOld, rep.IndexFilesNew)
	for _, m := range rep.BadPackMessages {
		fmt.Fprintf(a.stdout, "unreadable pack: %s\n", m)
	}
	if len(rep.BadPacks) > 0 {
		return a.fail(fmt.Errorf("%d packs could not be read; run `snapferry check --read-data` to see which snapshots need them", len(rep.BadPacks)))
	}
	return exitOK
}

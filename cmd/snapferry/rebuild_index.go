package main

import "fmt"

// runRebuildIndex is `snapferry rebuild-index --repo=REPO`: rebuild the index from the pack
// headers alone (after lost or damaged index files).
func runRebuildIndex(a *app, args []string) int {
	repoFlag := a.flags.String("repo", "", "repository (env SNAPFERRY_REPO)")
	a.addSSHFlags()
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("rebuild-index takes no arguments, got %q", pos))
	}
	spec, err := repoSpec(*repoFlag, "repo")
	if err != nil {
		return a.fail(err)
	}
	r, err := a.openRepo(spec, true)
	if err != nil {
		return a.fail(err)
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

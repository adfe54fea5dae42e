package main

import (
	"fmt"

	"github.com/snapferry/snapferry/images/repo"
)

func runCheck(a *app, args []string) int {
	repoFlag := a.addRepoFlag()
	readData := a.flags.Bool("read-data", false, "re-read and re-hash every pack and blob")
	r, code := a.openRepoOnly(args, repoFlag, false)
	if r == nil {
		return code
	}
	defer r.Close()
	// Registered (no kill-idle of its own) so that a user launch keeps it while it makes progress.
	defer a.beginTask("check")()
	prog := a.renderer()
	rep, err := r.Check(a.ctx, repo.CheckOptions{ReadData: *readData, Progress: prog})
	prog.Close()
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(rep)
	} else {
		fmt.Fprintf(a.stdout, "checked %d snapshots, %d index files, %d packs, %d blobs", rep.Snapshots, rep.IndexFiles, rep.Packs, rep.Blobs)
		if *readData {
			fmt.Fprintf(a.stdout, " (read %d packs, %d blobs)", rep.PacksRead, rep.BlobsRead)
		}
		fmt.Fprintln(a.stdout)
		for _, w := range rep.Warnings {
			fmt.Fprintf(a.stdout, "warning: %s\n", w)
		}
		for _, e := range rep.Errors {
			fmt.Fprintf(a.stdout, "error: %s\n", e)
		}
		for _, p := range rep.DamagedPacks {
			fmt.Fprintf(a.stdout, "damaged pack: %s\n", p)
		}
		if rep.BlobsMarked > 0 {
			fmt.Fprintf(a.stdout, "marked %d damaged blob copies in the index: backups store them again instead of reusing them; "+
				"`snapferry repair` removes them\n", rep.BlobsMarked)
		}
		for _, s := range rep.DamagedSnapshots {
			fmt.Fprintf(a.stdout, "damaged snapshot: %s (restore of the damaged parts will fail)\n", s)
		}
	}
	if !rep.OK() {
		return a.fail(fmt.Errorf("repository %s has %d errors", r.Backend().Location(), len(rep.Errors)))
	}
	if !a.jsonOut {
		fmt.Fprintln(a.stdout, "no errors were found")
	}
	return exitOK
}

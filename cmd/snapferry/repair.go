package main

import (
	"fmt"

	"github.com/snapferry/snapferry/images/repo"
)

// runRepair is `snapferry repair --repo=REPO [--dry-run]`: read every pack, take damaged blobs
// out of the index (salvaging the good blobs of their packs) so the next backup of the same
// data stores them again, and name the snapshots that stay damaged.
func runRepair(a *app, args []string) int {
	repoFlag := a.addRepoFlag()
	a.flags.BoolVar(&a.dryRun, "dry-run", false, "read everything and report, change nothing")
	r, code := a.openRepoOnly(args, repoFlag, true)
	if r == nil {
		return code
	}
	defer r.Close()
	prog := newRenderer(a.stderr, a.jsonOut)
	rep, err := r.Repair(a.ctx, repo.RepairOptions{DryRun: a.dryRun, Progress: prog})
	prog.Close()
	if err != nil {
		return a.fail(err)
	}
	if a.jsonOut {
		a.printJSON(rep)
		return exitOK
	}
	verb := "repair"
	if a.dryRun {
		verb = "repair --dry-run (nothing changed)"
	}
	fmt.Fprintf(a.stdout, "%s: read %d packs; %d damaged, %d good blobs salvaged into %d new packs, %d blobs lost\n", verb,
		rep.PacksRead, len(rep.DamagedPacks), rep.BlobsSalvaged, rep.PacksWritten, len(rep.LostBlobs))
	for _, p := range rep.DamagedPacks {
		fmt.Fprintf(a.stdout, "damaged pack: %s\n", p)
	}
	for _, b := range rep.LostBlobs {
		fmt.Fprintf(a.stdout, "lost blob: %s (the next backup of the same data stores it again)\n", b)
	}
	for _, s := range rep.DamagedSnapshots {
		fmt.Fprintf(a.stdout, "damaged snapshot: %s (mended if a backup stores the lost data again; otherwise restore what is left, or forget it)\n", s)
	}
	if len(rep.DamagedPacks) == 0 && len(rep.DamagedSnapshots) == 0 {
		fmt.Fprintln(a.stdout, "no damage was found")
	}
	return exitOK
}

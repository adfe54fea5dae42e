package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

func newRepairCmd(a *app) *cobra.Command {
	var repoFlag *string
	var dryRun bool
	c := &cobra.Command{
		Use:   "repair --repo=REPO [--dry-run]",
		Short: "take damaged data out of a repository's index",
		Long: "Repair reads every pack, takes damaged blobs out of the index (salvaging the good blobs of their\n" +
			"packs) so the next backup of the same data stores them again, and names the snapshots that stay\n" +
			"damaged.",
		Example: "  snapferry repair --repo=/backup/repo --dry-run",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			a.storeCopies = true
			return a.withRepo(*repoFlag, true, func(r *repo.Repository) error { return a.repair(r, dryRun) })
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	c.Flags().BoolVar(&dryRun, "dry-run", false, "read everything and report, change nothing")
	a.addHostFlag(c)
	return c
}

// repair is `snapferry repair`: damaged blobs out of the index, the good ones salvaged.
func (a *app) repair(r *repo.Repository, dryRun bool) error {
	prog := newRenderer(a.stderr, a.jsonOut)
	rep, err := r.Repair(a.ctx, repo.RepairOptions{DryRun: dryRun, Progress: prog})
	return a.printReport(prog, rep, err, func() {
		fmt.Fprintf(a.stdout, "%s: read %d packs; %d damaged, %d good blobs salvaged into %d new packs, %d blobs lost\n",
			dryRunVerb("repair", dryRun), rep.PacksRead, len(rep.DamagedPacks), rep.BlobsSalvaged, rep.PacksWritten, len(rep.LostBlobs))
		printEach(a.stdout, "damaged pack: %s\n", rep.DamagedPacks)
		printEach(a.stdout, "lost blob: %s (the next backup of the same data stores it again)\n", rep.LostBlobs)
		printEach(a.stdout, "damaged snapshot: %s (mended if a backup stores the lost data again; otherwise restore what is left, or forget it)\n", rep.DamagedSnapshots)
		if len(rep.DamagedPacks) == 0 && len(rep.DamagedSnapshots) == 0 {
			fmt.Fprintln(a.stdout, "no damage was found")
		}
	})
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/images/repo"
)

func newCheckCmd(a *app) *cobra.Command {
	var readData bool
	var repoFlag *string
	c := &cobra.Command{
		Use:   "check --repo=REPO [options]",
		Short: "verify a repository",
		Long: "Check reads the repository's config, index files, snapshots and pack headers and reports\n" +
			"anything missing or damaged; with --read-data it also re-reads and re-hashes every blob.\n" +
			"It exits 1 when it found errors and 10 when REPO is not a repository.",
		Example: "  snapferry check --repo=/backup/repo\n  snapferry check --repo=ssh://nas/backup/repo --read-data",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			a.storeCopies = true
			return a.withRepo(*repoFlag, false, func(r *repo.Repository) error {
				return a.check(r, readData)
			})
		},
	}
	repoFlag = a.addRepoFlag(c.Flags())
	c.Flags().BoolVar(&readData, "read-data", false, "re-read and re-hash every pack and blob")
	a.addHostFlag(c)
	return c
}

func (a *app) check(r *repo.Repository, readData bool) error {
	// Registered (no kill-idle of its own) so that a user launch keeps it while it makes progress.
	defer a.beginTask("check")()
	prog := a.renderer()
	rep, err := r.Check(a.ctx, repo.CheckOptions{ReadData: readData, Progress: prog})
	err = a.printReport(prog, rep, err, func() {
		fmt.Fprintf(a.stdout, "checked %s, %s, %s, %s", plural(rep.Snapshots, "snapshot"), plural(rep.IndexFiles, "index file"),
			plural(rep.Packs, "pack"), plural(rep.Blobs, "blob"))
		if readData {
			fmt.Fprintf(a.stdout, " (read %s, %s)", plural(rep.PacksRead, "pack"), plural(rep.BlobsRead, "blob"))
		}
		fmt.Fprintln(a.stdout)
		printEach(a.stdout, "warning: %s\n", rep.Warnings)
		printEach(a.stdout, "error: %s\n", rep.Errors)
		printEach(a.stdout, "damaged pack: %s\n", rep.DamagedPacks)
		if rep.BlobsMarked > 0 {
			fmt.Fprintf(a.stdout, "marked %d damaged blob copies in the index: backups store them again instead of reusing them; "+
				"`snapferry repair` removes them\n", rep.BlobsMarked)
		}
		printEach(a.stdout, "damaged snapshot: %s (restore of the damaged parts will fail)\n", rep.DamagedSnapshots)
	})
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("repository %s has %s", r.Backend().Location(), plural(len(rep.Errors), "error"))
	}
	if !a.jsonOut {
		fmt.Fprintln(a.stdout, "no errors were found")
	}
	return nil
}

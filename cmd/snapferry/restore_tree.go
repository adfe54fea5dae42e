package main

import (
	"fmt"
	"path"

	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/tree"
)

// restoreTree restores a snapshot's file tree (or the part below sub) into the target folder.
// A snapshot path /etc/hosts lands at TARGET/etc/hosts. Entries that cannot be restored make
// the run partial (exit 3) but do not stop it.
func (a *app) restoreTree(r *repo.Repository, sn *repo.Snapshot, sub string, f restoreFlags, prog *renderer) (int, error) {
	var inc []string
	if sub != "" {
		inc = []string{path.Clean("/" + sub)}
	}
	errs, err := tree.Restore(a.ctx, r, *sn.Tree, f.target, tree.RestoreOptions{Include: inc, Progress: prog})
	if err != nil {
		return 0, err
	}
	for _, fe := range errs {
		fmt.Fprintf(a.stderr, "warning: %s\n", fe.Error())
	}
	if len(errs) > 0 {
		return 1, exitcode.Partialf("%s could not be restored", plural(len(errs), "entry/entries"))
	}
	return 1, nil
}

package main

import (
	"errors"
	"fmt"
	"path"

	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/tree"
)

// restoreTree restores a snapshot's file tree (or the part below sub) into the target folder.
// A snapshot path /etc/hosts lands at TARGET/etc/hosts. Entries that cannot be restored, and
// existing ones that differ and were kept (no --overwrite), make the run partial (exit 3) but
// do not stop it; the kept ones are returned for the caller to list.
func (a *app) restoreTree(r *repo.Repository, sn *repo.Snapshot, sub string, f restoreFlags, prog *renderer) (int, []string, error) {
	var inc []string
	if sub != "" {
		inc = []string{path.Clean("/" + sub)}
	}
	errs, err := tree.Restore(a.ctx, r, *sn.Tree, f.target, tree.RestoreOptions{Include: inc, Progress: prog, Overwrite: f.overwrite})
	if err != nil {
		return 0, nil, err
	}
	var kept []string
	failed := 0
	for _, fe := range errs {
		if errors.Is(fe, overwrite.ErrDiffers) {
			kept = append(kept, fe.Path)
			continue
		}
		failed++
		fmt.Fprintf(a.stderr, "warning: %s\n", fe.Error())
	}
	if failed > 0 {
		return 1, kept, partialError{fmt.Sprintf("%d entries could not be restored", failed)}
	}
	return 1, kept, nil
}

package main

import (
	"errors"
	"fmt"

	"github.com/snapferry/snapferry/images/diskfiles"
	"github.com/snapferry/snapferry/images/overwrite"
	"github.com/snapferry/snapferry/images/repo"
)

// restoreInsideDisk restores a file, folder or symlink from inside a backed-up disk
// (IMAGE/pN/PATH) to --target. handled is false when sub names no path inside a disk (the disk
// itself, or the file tree), so restore goes on as before.
func (a *app) restoreInsideDisk(r *repo.Repository, sn *repo.Snapshot, sub string, f restoreFlags) (handled bool, n int, err error) {
	d, rest, ok := diskfiles.Match(sn, sub)
	if !ok || rest == "" {
		return false, 0, nil
	}
	t, err := diskfiles.Open(a.ctx, r, d, rest)
	if err != nil {
		return true, 0, err
	}
	res, err := diskfiles.Restore(t, f.target, f.overwrite)
	n = res.Files + res.HardLinks + res.Dirs + res.Symlinks + res.Unchanged
	var kept *overwrite.NotReplaced
	if err != nil && !errors.As(err, &kept) { // kept: exit 3 after the summary, as every restore
		return true, n, err
	}
	if !a.jsonOut {
		st := t.Reader.Stats()
		fmt.Fprintf(a.stdout, "from %s: %d files (%d bytes), %d hard links, %d folders, %d symlinks, %d unchanged, %d skipped (devices, fifos)\n",
			sub, res.Files, res.Bytes, res.HardLinks, res.Dirs, res.Symlinks, res.Unchanged, res.Skipped)
		fmt.Fprintf(a.stdout, "read from the repository: %d of the disk's blocks (%d bytes) and %d block-map chunks\n",
			st.Blocks, st.BlockBytes, st.MapChunks)
	}
	return true, n, err
}

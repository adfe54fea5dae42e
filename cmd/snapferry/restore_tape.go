package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/transfer/tape"
)

// stageFromTape makes a tape:// restore an ordinary one: it reads the save set named by ref
// (a set or snapshot id prefix, or latest with --source) from the tape, skipping straight to its
// file, into a temporary repository in the state folder, and returns that repository as the
// spec and the snapshot's id as the ref. Any other spec is returned as it is. cleanup removes
// the temporary repository; call it when the restore is done.
func (a *app) stageFromTape(spec, ref string, f restoreFlags, tf *tapeFlags) (string, string, func(), error) {
	nothing := func() {}
	if !strings.HasPrefix(spec, "tape://") {
		return spec, ref, nothing, nil
	}
	dir, err := a.stateDir()
	if err != nil {
		return "", "", nothing, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return "", "", nothing, fmt.Errorf("create temp folder: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Join(dir, "tmp"), "tape-restore-")
	if err != nil {
		return "", "", nothing, fmt.Errorf("create temporary repository: %w", err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	id, err := a.fetchTapeSet(spec, ref, f.source, tmp, tf)
	if err != nil {
		cleanup()
		return "", "", nothing, err
	}
	return filepath.Join(tmp, "repo"), id.String(), cleanup, nil
}

// fetchTapeSet unpacks a save set into a new repository at tmp/repo while it streams off the
// tape; the stream's checksum is verified against the set's trailer before the snapshot is
// committed.
func (a *app) fetchTapeSet(spec, ref, source, tmp string, tf *tapeFlags) (repo.ID, error) {
	be := local.New(filepath.Join(tmp, "repo"))
	if _, err := repo.Init(a.ctx, be, repo.InitOptions{}); err != nil {
		return repo.ID{}, err
	}
	r, err := repo.Open(a.ctx, be, repo.Options{TempDir: tmp})
	if err != nil {
		return repo.ID{}, err
	}
	defer r.Close()
	lib, err := a.openTapeLibrary(spec, tf)
	if err != nil {
		return repo.ID{}, err
	}
	defer lib.Close()
	id, e, err := tape.FetchSet(a.ctx, lib, ref, source, r)
	if err != nil {
		return repo.ID{}, err
	}
	if !a.jsonOut {
		fmt.Fprintf(a.stderr, "read save set %s (%s from %s, %s) from tape\n", shortID(e.ID), e.Source, e.Host, humanBytes(e.Bytes))
	}
	return id, nil
}

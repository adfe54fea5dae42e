package main

import (
	"fmt"
	"strings"
	"sync"

	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
)

// startPrehash starts the block fingerprint pass (disk.StartPrehash) of the first disk image of
// a PATH backup to ssh://, so the image is read and checked against its cache while the job
// registers, the link comes up (early_store.go) and the repository is opened and locked; the
// backup then reads only what the pass did not vouch for (backupPaths hands a.prehash to it).
// Only the first image: the others start once the repository is open anyway, and a pass for
// them would take the disk and cores from the first one's backup. Paths that cannot be
// classified are left to backupPaths, which reports them. The returned func stops the pass
// (disk.Backup stops it when it starts); the wire trace notes how far it got.
func (a *app) startPrehash(f backupFlags, paths []string) func() {
	if !strings.HasPrefix(f.to, "ssh://") || f.rehash {
		return func() {}
	}
	images, _, _, err := classifyPaths(paths, f)
	if err != nil || len(images) == 0 || images[0].kind != repo.SnapshotImage {
		return func() {}
	}
	p := disk.StartPrehash(a.ctx, images[0].path, a.blockCacheDir())
	if p == nil {
		return func() {}
	}
	a.prehash = map[string]*disk.Prehash{images[0].path: p}
	var once sync.Once
	note := func() { // when the pass ends, or when the backup stops it, whichever is first
		once.Do(func() {
			if w := a.wireTrace(); w != nil {
				looked, unchanged := p.Counts()
				fmt.Fprintf(w, "prehash of %s: %d blocks looked at, %d of them unchanged\n", images[0].path, looked, unchanged)
			}
		})
	}
	go func() { <-p.Done(); note() }()
	return func() { p.Stop(); note() }
}

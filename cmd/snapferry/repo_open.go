package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/transfer/ratelimit"
)

// repoSpec returns the repository spec from a flag value or $SNAPFERRY_REPO.
func repoSpec(flagValue, flagName string) (string, error) {
	if flagValue == "" {
		flagValue = os.Getenv("SNAPFERRY_REPO")
	}
	if flagValue == "" {
		return "", usagef("no repository given: pass --%s=REPO or set SNAPFERRY_REPO", flagName)
	}
	return flagValue, nil
}

// openBackend opens the store named by spec (a local folder, ssh://, sftp://, s3://). With
// --bwlimit, uploads are paced: on the SSH link itself for ssh://, by the store's request bodies
// for s3:// (wrapping the source would make it read packs into memory), per file for the others.
func (a *app) openBackend(spec string) (store.Backend, error) {
	if strings.HasPrefix(spec, "ssh://") {
		return a.openRemoteBackend(spec)
	}
	var be store.Backend
	if strings.Contains(spec, "://") {
		b, err := a.openRemoteBackend(spec)
		if err != nil {
			return nil, err
		}
		be = b
	} else {
		abs, err := filepath.Abs(spec)
		if err != nil {
			return nil, usagef("repository path %q: %v", spec, err)
		}
		be = local.New(abs)
	}
	if a.bwlimit > 0 && !strings.HasPrefix(strings.ToLower(spec), "s3://") {
		be = ratelimit.Backend(be, ratelimit.NewLimiter(a.bwlimit, nil))
	}
	return be, nil
}

// openRepo opens an existing repository. Writers get a temp folder for pack building inside the
// state folder: on ESXi /tmp is a small ramdisk, the state folder lives on a datastore. Readers
// get it too when it can be had, for the index's spill file (4 bytes per loaded blob in memory
// instead of 52: a restore of 500 000 files peaked at 78 MiB without it); a reader without a
// writable state folder still works, with the index in memory.
func (a *app) openRepo(spec string, write bool) (*repo.Repository, error) {
	be, err := a.openBackend(spec)
	if err != nil {
		return nil, err
	}
	o := repo.Options{Compression: a.compression, CloseBackend: true}
	if o.TempDir, err = a.tempDir(); err != nil && write {
		be.Close()
		return nil, err
	}
	r, err := a.openWithPassword(be, o)
	if err != nil {
		be.Close()
		return nil, err // repo.Open names the location
	}
	return r, nil
}

// tempDir is the folder for temporary files inside the state folder, created if needed.
func (a *app) tempDir() (string, error) {
	dir, err := a.stateDir()
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", fmt.Errorf("create temp folder %s: %w", tmp, err)
	}
	return tmp, nil
}

// openWithPassword opens with the password from --password-file or the environment (secrets.go),
// asking on the terminal when the repository turns out to be encrypted and none was given.
// (security helper: encrypted repositories)
func (a *app) openWithPassword(be store.Backend, o repo.Options) (*repo.Repository, error) {
	pw, err := a.openPassword(false)
	if err != nil {
		return nil, err
	}
	o.Password = pw
	r, err := repo.Open(a.ctx, be, o)
	if needsPrompt(err, pw) {
		asked, perr := a.openPassword(true)
		if perr != nil {
			return nil, perr
		}
		if asked != nil {
			o.Password = asked
			r, err = repo.Open(a.ctx, be, o)
		}
	}
	return r, err
}

// addRepoFlag registers --repo (env SNAPFERRY_REPO), --password-file and the SSH options
// that reach the repository.
func (a *app) addRepoFlag(fs *pflag.FlagSet) *string {
	a.addSSHFlags(fs)
	a.addPasswordFlag(fs)
	return fs.String("repo", "", "repository (env SNAPFERRY_REPO)")
}

// openRepoFlag opens the repository a --repo flag (or $SNAPFERRY_REPO) names.
func (a *app) openRepoFlag(flagValue string, write bool) (*repo.Repository, error) {
	spec, err := repoSpec(flagValue, "repo")
	if err != nil {
		return nil, err
	}
	return a.openRepo(spec, write)
}

// withRepo opens the repository a --repo flag names, runs fn on it and closes it.
func (a *app) withRepo(flagValue string, write bool, fn func(*repo.Repository) error) error {
	r, err := a.openRepoFlag(flagValue, write)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(r)
}

// backupTarget is an open repository under a shared lock, ready for a backup run.
type backupTarget struct {
	r    *repo.Repository
	lock *repo.Lock
	host string
	prog *renderer
	// parents are this host's newest snapshots by source (repo.LatestBySource), when asked for.
	parents    map[string]repo.SnapshotInfo
	parentsErr error
	// hostState is the host-state snapshot being saved beside the run (startHostState): its
	// warning, if any, once it is done.
	hostState    chan string
	stateStarted bool
}

// openBackupTarget opens the repository for writing and takes a shared lock (several backups,
// even from several hosts, may write at once; only prune excludes them). Close releases all.
// withParents also lists this host's newest snapshots by source (t.parents), side by side with
// the search for packs an interrupted run left: over ssh:// two round trips become one.
func (a *app) openBackupTarget(spec string, withParents bool) (*backupTarget, error) {
	r, err := a.openRepo(spec, true)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	t := &backupTarget{r: r, host: host}
	// The listings go out with the lock check (they only read; what they found is used once
	// the lock holds): over ssh:// one round trip instead of two.
	var packs []store.FileInfo
	var packsErr error
	lock, err := r.LockAnd(a.ctx, false, func(ctx context.Context) {
		var listed sync.WaitGroup
		if withParents {
			listed.Go(func() { t.parents, t.parentsErr = r.LatestBySource(ctx, host) })
		}
		packs, packsErr = r.ListPacks(ctx)
		listed.Wait()
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	t.lock = lock
	a.resumeListed(r, packs, packsErr)
	t.prog = a.renderer()
	return t, nil
}

// resume indexes what a killed or failed run (a backup or a copy) uploaded but never indexed, so
// this run sends only what is missing instead of everything since that run's last index file.
// Call it under a shared lock, before anything is stored.
func (a *app) resume(r *repo.Repository) {
	packs, err := r.ListPacks(a.ctx)
	a.resumeListed(r, packs, err)
}

// resumeListed is resume on a listing of the data folder taken under the lock.
func (a *app) resumeListed(r *repo.Repository, packs []store.FileInfo, err error) {
	if err != nil {
		fmt.Fprintf(a.stderr, "warning: adopt unindexed packs: %v (this run stores that data again)\n", err)
		return
	}
	if ad, err := r.AdoptListed(a.ctx, packs); err != nil {
		fmt.Fprintf(a.stderr, "warning: %v (this run stores that data again)\n", err)
	} else if ad.Packs > 0 {
		fmt.Fprintf(a.stderr, "resumed: indexed %d packs (%s) an interrupted run left\n", ad.Packs, humanBytes(ad.Bytes))
	}
}

// backupInto opens the repository of --to for a backup run (withParents: as openBackupTarget) and
// has fill back up into it; when fill succeeds, it reports low space on the store.
func (a *app) backupInto(f backupFlags, withParents bool, fill func(t *backupTarget) (*backupResult, error)) (*backupResult, error) {
	t, err := a.openBackupTarget(f.to, withParents)
	if err != nil {
		return nil, err
	}
	defer t.Close(a)
	res, err := fill(t)
	if err == nil {
		// The host-state save follows the run's backups (saved beside them, its index and
		// commit raced theirs: TestManyWritersAcrossPrune); the low-space question goes out
		// beside it, so over ssh:// it costs no round trip of its own.
		var checked sync.WaitGroup
		checked.Go(func() { res.events.checkSpace(a, t.r, f.lowBytes) })
		t.startHostState(a)
		t.waitHostState(a)
		checked.Wait()
	}
	return res, err
}

func (t *backupTarget) Close(a *app) {
	if !t.stateStarted { // a failed run still saves the host's state, as before
		t.startHostState(a)
	}
	t.waitHostState(a)
	t.prog.Close()
	t.lock.Unlock(a.ctx)
	t.r.Close()
}

package replica

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/transfer/serve/jail"
)

// Recover finishes every replica update a cut-off run left below j's root: one that had
// committed is rolled forward (its new sidecars installed), any other is rolled back to the
// previous replica. Updates whose lock another live process holds are left alone. serve runs
// this on start.
func Recover(j *jail.Jail, logf func(format string, args ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	p, err := undoPathsFor(j, "")
	if err != nil {
		return err
	}
	journals, err := filepath.Glob(filepath.Join(p.dir, "*.journal"))
	if err != nil {
		return fmt.Errorf("list undo journals in %s: %w", p.dir, err)
	}
	var errs []error
	for _, jp := range journals {
		id := strings.TrimSuffix(filepath.Base(jp), ".journal")
		up := undoPaths{dir: p.dir, journal: jp, lock: filepath.Join(p.dir, id+".lock"), copies: filepath.Join(p.dir, id+".d")}
		lock, err := lockSet(up, id)
		if err != nil {
			logf("replica journal %s is in use, leaving it: %v", jp, err)
			continue
		}
		if err := rollbackJournal(j, up, logf); err != nil {
			errs = append(errs, err)
		}
		lock.Close()
	}
	return errors.Join(errs...)
}

// journalState is what the first pass over a journal learns.
type journalState struct {
	set       string
	files     []fileRec // by ordinal
	smalls    []smallRec
	blocks    int
	committed bool
}

// rollbackJournal undoes (or, if it committed, completes) the update a journal describes, then
// removes the journal. It is idempotent: a crash during a rollback is repaired by running it
// again, because every record holds contents from before the update.
func rollbackJournal(j *jail.Jail, p undoPaths, logf func(string, ...any)) error {
	st, err := scanJournal(p.journal)
	if errors.Is(err, errNoHeader) {
		logf("replica journal %s: %v; nothing was changed under it, removing it", p.journal, err)
		return removeUndo(p)
	}
	if err != nil {
		return fmt.Errorf("read undo journal: %w", err)
	}
	if st.committed {
		for _, fr := range st.files {
			path, err := j.Resolve(fr.name)
			if err != nil {
				return fmt.Errorf("roll forward %s: %w", fr.name, err)
			}
			sc := sidecarPath(path)
			if err := os.Rename(sc+".new", sc); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("roll forward: install sidecar %s: %w", sc, err)
			}
		}
		logf("replica %q: completed an update that had committed", st.set)
		return removeUndo(p)
	}
	files := make([]*os.File, len(st.files))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	seen := make(map[string]bool)
	for i, fr := range st.files {
		path, err := j.Resolve(fr.name)
		if err != nil {
			return fmt.Errorf("roll back %s: %w", fr.name, err)
		}
		os.Remove(sidecarPath(path) + ".new")
		if seen[fr.name] {
			continue // the first record holds the state from before the update
		}
		seen[fr.name] = true
		if !fr.existed {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("roll back: remove new file %s: %w", path, err)
			}
			continue
		}
		f, err := os.OpenFile(path, os.O_RDWR|noFollow, 0)
		if err != nil {
			return fmt.Errorf("roll back %s: %w", path, err)
		}
		files[i] = f
		if err := f.Truncate(fr.size); err != nil {
			return fmt.Errorf("roll back %s: truncate to %d: %w", path, fr.size, err)
		}
	}
	if err := restoreBlocks(p.journal, files); err != nil {
		return err
	}
	for i, fr := range st.files {
		f := files[i]
		if f == nil {
			continue
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("roll back %s: fsync: %w", f.Name(), err)
		}
		if err := f.Chmod(fs.FileMode(fr.mode)); err != nil {
			return fmt.Errorf("roll back %s: chmod: %w", f.Name(), err)
		}
		// The old mtime makes the untouched old sidecar fresh again, so the next run does not
		// have to re-read the whole replica.
		ts := []unix.Timespec{unix.NsecToTimespec(time.Now().UnixNano()), unix.NsecToTimespec(fr.mtimeNs)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, f.Name(), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			// Only an optimisation: without the old mtime the old sidecar is stale and the next
			// run rebuilds it. Never let it keep the rollback from finishing.
			logf("roll back %s: cannot restore its mtime (%v); its hashes will be rebuilt", f.Name(), err)
			os.Remove(sidecarPath(f.Name()))
		}
	}
	for _, sr := range st.smalls {
		path, err := j.Resolve(sr.name)
		if err != nil {
			return fmt.Errorf("roll back %s: %w", sr.name, err)
		}
		if !sr.existed {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("roll back: remove new file %s: %w", path, err)
			}
			continue
		}
		if err := copyFileAtomic(filepath.Join(p.copies, sr.copy), path, fs.FileMode(sr.mode)); err != nil {
			return fmt.Errorf("roll back %s: restore saved copy: %w", path, err)
		}
	}
	if setDir, err := j.Resolve(st.set); err == nil {
		temps, _ := filepath.Glob(filepath.Join(setDir, jail.PrivatePrefix+"tmp-*"))
		for _, t := range temps {
			os.Remove(t)
		}
	}
	logf("replica %q: rolled back an interrupted update (%d disk files, %d blocks, %d small files)", st.set, len(st.files), st.blocks, len(st.smalls))
	return removeUndo(p)
}

// scanJournal is the first pass: header, file and small-file records, commit mark.
func scanJournal(path string) (journalState, error) {
	f, err := os.Open(path)
	if err != nil {
		return journalState{}, err
	}
	defer f.Close()
	jr := newJournalReader(f)
	var st journalState
	if st.set, err = readJournalHeader(jr); err != nil {
		return st, err
	}
	for {
		typ, body, ok := jr.next()
		if !ok {
			return st, nil
		}
		switch typ {
		case jFile:
			fr, err := decodeFileRec(body)
			if err != nil {
				return st, nil // a damaged record ends the journal like a torn one
			}
			st.files = append(st.files, fr)
		case jSmall:
			sr, err := decodeSmallRec(body)
			if err != nil {
				return st, nil
			}
			st.smalls = append(st.smalls, sr)
		case jBlock:
			st.blocks++
		case jCommit:
			st.committed = true
		}
	}
}

// restoreBlocks is the second pass: write every saved block back. files holds the open files
// by ordinal (nil for files that did not exist before and were removed).
func restoreBlocks(path string, files []*os.File) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	jr := newJournalReader(f)
	if _, err := readJournalHeader(jr); err != nil {
		return err
	}
	var zeros []byte
	for {
		typ, body, ok := jr.next()
		if !ok {
			return nil
		}
		if typ != jBlock {
			continue
		}
		br, err := decodeBlockRec(body)
		if err != nil {
			return nil
		}
		if br.file >= int64(len(files)) {
			return fmt.Errorf("undo journal %s: block record for file %d of %d", path, br.file, len(files))
		}
		df := files[br.file]
		if df == nil {
			continue
		}
		if br.zero {
			if int64(len(zeros)) < br.n {
				zeros = make([]byte, br.n)
			}
			err = punchHole(df, br.off, int(br.n), zeros)
		} else {
			_, err = df.WriteAt(br.data, br.off)
		}
		if err != nil {
			return fmt.Errorf("roll back %s at %d: %w", df.Name(), br.off, err)
		}
	}
}

func removeUndo(p undoPaths) error {
	if err := os.Remove(p.journal); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove undo journal %s: %w", p.journal, err)
	}
	if err := os.RemoveAll(p.copies); err != nil {
		return fmt.Errorf("remove %s: %w", p.copies, err)
	}
	return syncDir(p.dir)
}

package pidmgr

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// File names inside the state folder.
const (
	FileName     = "snapferry-pid"      // the registry
	LockFileName = "snapferry-pid.lock" // sidecar that carries the flock; never deleted (see lock)
)

// lockRetry is how often a blocked writer retries flock; short because critical sections are a
// read and a rename of a tiny file.
const lockRetry = 10 * time.Millisecond

// decodeRegistry parses the registry text. Lines that do not parse are skipped and described in
// warnings; only a header naming a format version this code does not know is an error, because
// rewriting such a file would destroy what a newer snapferry wrote.
func decodeRegistry(path string, data []byte) (entries []Entry, warnings []string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if strings.HasPrefix(text, headerPrefix) {
			if v := strings.TrimSpace(strings.TrimPrefix(text, headerPrefix)); v != formatVersion {
				return nil, nil, fmt.Errorf("read PID registry %s: format %q is newer than this snapferry understands (%s): upgrade snapferry", path, v, formatVersion)
			}
			continue
		}
		if strings.HasPrefix(text, "#") {
			continue
		}
		e, perr := parseLine(text)
		if perr != nil {
			warnings = append(warnings, fmt.Sprintf("PID registry %s line %d skipped: %v", path, n, perr))
			continue
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		// A line longer than 1 MiB is garbage; what was read before it is still good.
		warnings = append(warnings, fmt.Sprintf("PID registry %s: stopped reading after line %d: %v", path, n, err))
	}
	return entries, warnings, nil
}

// encodeRegistry renders entries with the version header.
func encodeRegistry(entries []Entry) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header())
	b.WriteByte('\n')
	for _, e := range entries {
		l, err := e.line()
		if err != nil {
			return nil, fmt.Errorf("encode PID registry entry for pid %d: %w", e.PID, err)
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// readFile returns the entries of the registry at path; a missing file is an empty registry.
func readFile(path string) ([]Entry, []string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read PID registry %s: %w", path, err)
	}
	return decodeRegistry(path, data)
}

// writeFile replaces the registry atomically; an empty registry deletes the file so that a host
// with nothing running has no registry at all.
func writeFile(path string, entries []Entry) error {
	if len(entries) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete empty PID registry %s: %w", path, err)
		}
		return syncDir(filepath.Dir(path))
	}
	data, err := encodeRegistry(entries)
	if err != nil {
		return err
	}
	return writeAtomic(path, data)
}

// writeAtomic writes data to a temp file in the same folder, fsyncs it, renames it over path and
// fsyncs the folder, so a crash leaves either the old or the new file, never a mix.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	done = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder %s for fsync: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync folder %s: %w", dir, err)
	}
	return nil
}

// lockExclusive takes the registry's flock, waiting at most timeout (or until ctx ends). The lock
// file is never removed: deleting it while another process waits on the old inode would let two
// writers in at once.
func lockExclusive(ctx context.Context, path string, timeout time.Duration) (*flock.Flock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create state folder for %s: %w", path, err)
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fl := flock.New(path)
	ok, err := fl.TryLockContext(lctx, lockRetry)
	if ok {
		return fl, nil
	}
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("lock %s: still held by another snapferry after %s; if none runs, check the file's permissions", path, timeout)
	}
	return nil, fmt.Errorf("lock %s: %w", path, err)
}

package cron

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// JobLogPath is the log that `cron run NAME` appends to, in the cron folder's logs/ folder.
func JobLogPath(cronDir, name string) string {
	return filepath.Join(cronDir, "logs", name+".log")
}

// JobLog is an append-only per-job log rotated by size: NAME.log, then NAME.log.1 (newest) up
// to NAME.log.KEEP. Rotation happens before a write that would pass the limit, so one run's
// output may straddle two files but no file grows far beyond the limit. Safe for concurrent use
// by one process (the run and its hooks write from several goroutines).
type JobLog struct {
	mu      sync.Mutex
	path    string
	f       *os.File
	size    int64
	maxSize int64
	keep    int
}

// OpenJobLog opens (creating) the log of job name in cronDir. maxSize <= 0 means no rotation;
// keep is how many rotated files stay.
func OpenJobLog(cronDir, name string, maxSize int64, keep int) (*JobLog, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("open job log: %w", err)
	}
	l := &JobLog{path: JobLogPath(cronDir, name), maxSize: maxSize, keep: keep}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return nil, fmt.Errorf("open job log %s: %w", l.path, err)
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *JobLog) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open job log %s: %w", l.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open job log %s: %w", l.path, err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Path is the current log file.
func (l *JobLog) Path() string { return l.path }

// Write appends p, rotating first when p would take the file past the size limit.
func (l *JobLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, fmt.Errorf("write job log %s: closed", l.path)
	}
	if l.maxSize > 0 && l.size > 0 && l.size+int64(len(p)) > l.maxSize {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("write job log %s: %w", l.path, err)
	}
	return n, nil
}

func (l *JobLog) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("rotate job log %s: %w", l.path, err)
	}
	l.f = nil
	rotated := func(i int) string { return fmt.Sprintf("%s.%d", l.path, i) }
	if err := os.Remove(rotated(l.keep)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("rotate job log %s: %w", l.path, err)
	}
	for i := l.keep - 1; i >= 1; i-- {
		if err := os.Rename(rotated(i), rotated(i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotate job log %s: %w", l.path, err)
		}
	}
	if l.keep > 0 {
		if err := os.Rename(l.path, rotated(1)); err != nil {
			return fmt.Errorf("rotate job log %s: %w", l.path, err)
		}
	} else if err := os.Remove(l.path); err != nil {
		return fmt.Errorf("rotate job log %s: %w", l.path, err)
	}
	return l.open()
}

// Close closes the file.
func (l *JobLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("close job log %s: %w", l.path, err)
	}
	return nil
}

package cron

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gofrs/flock"
)

// JobsFileName is the jobs file inside the cron folder of the state folder.
const JobsFileName = "jobs.json"

// JobsFile is the whole content of the jobs file: an indented JSON document people may edit by
// hand (see docs/scheduling.md for the format).
type JobsFile struct {
	// Suspended pauses all scheduling: installed crontab lines are commented out and
	// `cron run` refuses, but every job definition is kept.
	Suspended bool  `json:"suspended"`
	Jobs      []Job `json:"jobs"`
}

// Job returns the job with the given name.
func (f *JobsFile) Job(name string) (Job, bool) {
	i := slices.IndexFunc(f.Jobs, func(j Job) bool { return j.Name == name })
	if i < 0 {
		return Job{}, false
	}
	return f.Jobs[i], true
}

// Validate checks every job and that names are unique.
func (f *JobsFile) Validate() error {
	seen := map[string]bool{}
	for _, j := range f.Jobs {
		if err := j.Validate(); err != nil {
			return err
		}
		if seen[j.Name] {
			return fmt.Errorf("job %s is defined twice", j.Name)
		}
		seen[j.Name] = true
	}
	return nil
}

// ErrJobNotFound is returned (wrapped) when a named job does not exist.
var ErrJobNotFound = errors.New("no such job")

// ErrJobExists is returned (wrapped) by Add when the name is taken and replace was not asked.
var ErrJobExists = errors.New("job already exists")

// Store is the jobs file of one state folder. All changes go through Update, which holds an
// exclusive flock on a side file for the whole read-modify-write, so two `cron add` runs at once
// do not lose one another's job.
type Store struct {
	path string
	// LockTimeout bounds the wait for another snapferry holding the jobs file.
	LockTimeout time.Duration
}

// NewStore returns the store for the state folder home (jobs file home/cron/jobs.json).
func NewStore(home string) *Store {
	return &Store{path: filepath.Join(home, "cron", JobsFileName), LockTimeout: 30 * time.Second}
}

// Path is the jobs file's path.
func (s *Store) Path() string { return s.path }

// Dir is the cron folder that holds the jobs file and the per-job logs.
func (s *Store) Dir() string { return filepath.Dir(s.path) }

func (s *Store) lock(ctx context.Context, exclusive bool) (*flock.Flock, error) {
	if err := os.MkdirAll(s.Dir(), 0o755); err != nil {
		return nil, fmt.Errorf("create cron folder %s: %w", s.Dir(), err)
	}
	fl := flock.New(s.path + ".lock")
	ctx, cancel := context.WithTimeout(ctx, s.LockTimeout)
	defer cancel()
	try := fl.TryRLockContext
	if exclusive {
		try = fl.TryLockContext
	}
	ok, err := try(ctx, 50*time.Millisecond)
	if err != nil || !ok {
		if err == nil {
			err = errors.New("not acquired")
		}
		return nil, fmt.Errorf("lock jobs file %s: %w (another snapferry is changing it; try again)", s.path, err)
	}
	return fl, nil
}

// Load reads the jobs file under a shared lock. A missing file is an empty, active schedule.
func (s *Store) Load(ctx context.Context) (JobsFile, error) {
	fl, err := s.lock(ctx, false)
	if err != nil {
		return JobsFile{}, err
	}
	defer fl.Unlock()
	return s.read()
}

func (s *Store) read() (JobsFile, error) {
	b, err := readFileOrEmpty(s.path)
	if err != nil {
		return JobsFile{}, err
	}
	f, err := ParseJobsFile(b)
	if err != nil {
		return JobsFile{}, fmt.Errorf("read jobs file %s: %w", s.path, err)
	}
	return f, nil
}

// ParseJobsFile decodes and validates the bytes of a jobs file (empty is an empty schedule), as
// Load reads it; restore-state uses it on a jobs file that comes from a repository.
func ParseJobsFile(b []byte) (JobsFile, error) {
	var f JobsFile
	if len(bytes.TrimSpace(b)) == 0 {
		return f, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt key in a hand edit must not be dropped silently
	if err := dec.Decode(&f); err != nil {
		return JobsFile{}, fmt.Errorf("%w (fix the file by hand or restore it)", err)
	}
	if err := f.Validate(); err != nil {
		return JobsFile{}, err
	}
	return f, nil
}

// Update runs fn on the current jobs file under an exclusive lock and writes the result
// atomically if fn returns nil. The result is validated before it is written.
func (s *Store) Update(ctx context.Context, fn func(*JobsFile) error) error {
	fl, err := s.lock(ctx, true)
	if err != nil {
		return err
	}
	defer fl.Unlock()
	f, err := s.read()
	if err != nil {
		return err
	}
	if err := fn(&f); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	if f.Jobs == nil {
		f.Jobs = []Job{} // "jobs": [] reads better than null for someone editing by hand
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode jobs file %s: %w", s.path, err)
	}
	return writeFileAtomic(s.path, append(b, '\n'), 0o600)
}

// Add stores job; with replace an existing job of that name is overwritten in place.
func (s *Store) Add(ctx context.Context, job Job, replace bool) error {
	if err := job.Validate(); err != nil {
		return err
	}
	if job.Added.IsZero() {
		job.Added = time.Now().UTC().Truncate(time.Second)
	}
	return s.Update(ctx, func(f *JobsFile) error {
		i := slices.IndexFunc(f.Jobs, func(j Job) bool { return j.Name == job.Name })
		switch {
		case i < 0:
			f.Jobs = append(f.Jobs, job)
		case replace:
			f.Jobs[i] = job
		default:
			return fmt.Errorf("add job %s: %w (remove it first or replace it)", job.Name, ErrJobExists)
		}
		return nil
	})
}

// Remove deletes the named job.
func (s *Store) Remove(ctx context.Context, name string) error {
	return s.Update(ctx, func(f *JobsFile) error {
		n := len(f.Jobs)
		f.Jobs = slices.DeleteFunc(f.Jobs, func(j Job) bool { return j.Name == name })
		if len(f.Jobs) == n {
			return fmt.Errorf("remove job %s: %w (see snapferry cron list)", name, ErrJobNotFound)
		}
		return nil
	})
}

// SetSuspended sets or clears the suspended flag.
func (s *Store) SetSuspended(ctx context.Context, suspended bool) error {
	return s.Update(ctx, func(f *JobsFile) error {
		f.Suspended = suspended
		return nil
	})
}

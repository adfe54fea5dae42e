package history

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Liveness tells whether the process that wrote an active record still runs. pidmgr's
// ProcessTable implements it; nil means "cannot tell" and leaves active jobs active.
type Liveness interface {
	Alive(ctx context.Context, pid int, token string) (bool, error)
}

// Job is the folded view of one job id: its latest attempt.
type Job struct {
	ID          string    `json:"job"`
	Name        string    `json:"name,omitempty"`
	Origin      string    `json:"origin,omitempty"`
	State       State     `json:"state"`
	Attempt     int       `json:"attempt"`          // latest attempt (1 = first try)
	Queued      time.Time `json:"queued,omitzero"`  // when the latest attempt was queued (zero if never)
	Started     time.Time `json:"started,omitzero"` // when it became active
	Ended       time.Time `json:"ended,omitzero"`   // when it ended or was found dead (zero while running)
	Updated     time.Time `json:"updated"`          // time of its newest record
	PID         int       `json:"pid,omitempty"`
	Token       string    `json:"token,omitempty"`
	VMs         []string  `json:"vms,omitempty"`
	Paths       []string  `json:"paths,omitempty"`
	BytesRead   int64     `json:"bytes_read"`
	BytesSent   int64     `json:"bytes_sent"`
	BytesStored int64     `json:"bytes_stored"`
	Exit        *int      `json:"exit,omitempty"`
	Error       string    `json:"error,omitempty"`
	MailError   string    `json:"mail_error,omitempty"` // its report mail could not be sent
}

// Result is a job's one-word outcome.
type Result string

const (
	ResultQueued      Result = "queued"
	ResultRunning     Result = "running"
	ResultOK          Result = "ok"          // exit 0
	ResultPartial     Result = "partial"     // exit 3: some VMs, disks or files were skipped
	ResultInterrupted Result = "interrupted" // exit 130: SIGINT/SIGTERM, cleanup ran
	ResultFailed      Result = "failed"      // any other exit status
	ResultDied        Result = "died"
)

// Result maps state and exit status to an outcome; exit statuses follow the CLI (cli.md).
func (j Job) Result() Result {
	switch j.State {
	case StateQueued:
		return ResultQueued
	case StateActive:
		return ResultRunning
	case StateDied:
		return ResultDied
	}
	switch {
	case j.Exit == nil:
		return ResultFailed // done without a status is a bug in the writer: do not call it ok
	case *j.Exit == 0:
		return ResultOK
	case *j.Exit == 3:
		return ResultPartial
	case *j.Exit == 130:
		return ResultInterrupted
	}
	return ResultFailed
}

// NoteMailFailure records that the report mail of the newest job named name could not be sent,
// so `jobs` and `status` show it beside the job's result.
func (l *Log) NoteMailFailure(ctx context.Context, name, reason string) error {
	jobs, err := l.Jobs(ctx, nil)
	if err != nil {
		return err
	}
	for i := len(jobs) - 1; i >= 0; i-- {
		if j := jobs[i]; j.Name == name {
			return l.Append(ctx, Record{Job: j.ID, Name: name, State: j.State, Attempt: j.Attempt, Exit: j.Exit,
				MailError: "report mail not sent: " + reason})
		}
	}
	return fmt.Errorf("note mail failure of %s: %w", name, ErrNoJob)
}

// ErrNoJob is returned by Job for an id the history does not hold.
var ErrNoJob = errors.New("no such job in the history")

// Jobs folds all records into jobs, ordered by first appearance (oldest first). With alive set,
// queued and active jobs whose process no longer runs become died.
func (l *Log) Jobs(ctx context.Context, alive Liveness) ([]Job, error) {
	recs, err := l.Records(ctx)
	if err != nil {
		return nil, err
	}
	jobs := Fold(recs)
	for i := range jobs {
		if err := markDied(ctx, &jobs[i], alive); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

// Job returns one job by id, or an error wrapping ErrNoJob.
func (l *Log) Job(ctx context.Context, id string, alive Liveness) (Job, error) {
	jobs, err := l.Jobs(ctx, alive)
	if err != nil {
		return Job{}, err
	}
	for _, j := range jobs {
		if j.ID == id {
			return j, nil
		}
	}
	return Job{}, fmt.Errorf("job %s: %w (see `snapferry jobs` for the ids)", id, ErrNoJob)
}

// Fold merges records into jobs, ordered by each job's first record. A record of a newer
// attempt starts the attempt afresh (times, counts, status); a record of an older attempt
// arriving late is ignored.
func Fold(recs []Record) []Job {
	byID := map[string]*Job{}
	var order []string
	for _, r := range recs {
		j := byID[r.Job]
		if j == nil {
			j = &Job{ID: r.Job, Attempt: r.attempt()}
			byID[r.Job] = j
			order = append(order, r.Job)
		}
		apply(j, r)
	}
	out := make([]Job, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

func apply(j *Job, r Record) {
	switch a := r.attempt(); {
	case a < j.Attempt:
		return
	case a > j.Attempt:
		*j = Job{ID: j.ID, Name: j.Name, Origin: j.Origin, VMs: j.VMs, Paths: j.Paths, Attempt: a}
	}
	if r.Name != "" {
		j.Name = r.Name
	}
	if r.Origin != "" {
		j.Origin = r.Origin
	}
	if r.VMs != nil {
		j.VMs = r.VMs
	}
	if r.Paths != nil {
		j.Paths = r.Paths
	}
	if r.PID != 0 {
		j.PID, j.Token = r.PID, r.Token
	}
	for _, c := range []struct {
		dst *int64
		v   int64
	}{{&j.BytesRead, r.BytesRead}, {&j.BytesSent, r.BytesSent}, {&j.BytesStored, r.BytesStored}} {
		if c.v != 0 {
			*c.dst = c.v
		}
	}
	if r.MailError != "" {
		// A note on an ended job: it changes nothing else.
		j.MailError = r.MailError
		return
	}
	j.State, j.Updated = r.State, r.Time
	switch r.State {
	case StateQueued:
		j.Queued = r.Time
	case StateActive:
		if j.Started.IsZero() {
			j.Started = r.Time
		}
	case StateDone, StateDied:
		j.Ended = r.Time
		j.Exit = r.Exit
		if r.Error != "" {
			j.Error = r.Error
		}
	}
}

// markDied turns a queued or active job whose process is gone (or whose pid now runs another
// process) into died. A job without a pid cannot be checked and stays as it is.
func markDied(ctx context.Context, j *Job, alive Liveness) error {
	if alive == nil || j.PID == 0 || (j.State != StateActive && j.State != StateQueued) {
		return nil
	}
	ok, err := alive.Alive(ctx, j.PID, j.Token)
	if err != nil {
		return fmt.Errorf("check process %d of job %s: %w", j.PID, j.ID, err)
	}
	if !ok {
		j.Error = fmt.Sprintf("process %d ended without recording an end (killed, crashed or host rebooted) while %s", j.PID, j.State)
		j.State = StateDied
	}
	return nil
}

// Summary is the record of one job name: how its runs went and the latest one.
type Summary struct {
	Name        string    `json:"name"`
	Runs        int       `json:"runs"`
	OK          int       `json:"ok"`
	Partial     int       `json:"partial"`
	Failed      int       `json:"failed"`
	Interrupted int       `json:"interrupted"`
	Died        int       `json:"died"`
	Running     int       `json:"running"`
	Queued      int       `json:"queued"`
	Last        Job       `json:"last"`             // the newest job (by first record)
	LastOK      time.Time `json:"last_ok,omitzero"` // end of the newest ok run (zero if none)
}

// Summaries groups the jobs by name (jobs without a name under their origin, else "-"), sorted
// by name, for `snapferry jobs --summary`.
func (l *Log) Summaries(ctx context.Context, alive Liveness) ([]Summary, error) {
	jobs, err := l.Jobs(ctx, alive)
	if err != nil {
		return nil, err
	}
	return Summarize(jobs), nil
}

// Summarize groups jobs (in the order Jobs returns them) by name.
func Summarize(jobs []Job) []Summary {
	by := map[string]*Summary{}
	for _, j := range jobs {
		name := j.Name
		if name == "" {
			name = j.Origin
		}
		if name == "" {
			name = "-"
		}
		s := by[name]
		if s == nil {
			s = &Summary{Name: name}
			by[name] = s
		}
		s.Runs++
		s.Last = j
		switch j.Result() {
		case ResultOK:
			s.OK++
			if j.Ended.After(s.LastOK) {
				s.LastOK = j.Ended
			}
		case ResultPartial:
			s.Partial++
		case ResultInterrupted:
			s.Interrupted++
		case ResultDied:
			s.Died++
		case ResultRunning:
			s.Running++
		case ResultQueued:
			s.Queued++
		default:
			s.Failed++
		}
	}
	out := make([]Summary, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out
}

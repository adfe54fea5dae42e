package history

import (
	"errors"
	"fmt"
	"time"
)

// State is a job's state in its life cycle.
type State string

const (
	StateQueued State = "queued" // waiting to start (a retry waits for its delay)
	StateActive State = "active" // running; the record names the process (pid and start token)
	StateDone   State = "done"   // ended; the record carries exit status and error text
	StateDied   State = "died"   // its process vanished without recording an end
)

// ParseState validates the text form of a State.
func ParseState(s string) (State, error) {
	switch State(s) {
	case StateQueued, StateActive, StateDone, StateDied:
		return State(s), nil
	}
	return "", fmt.Errorf("job state %q: want queued, active, done or died", s)
}

// formatVersion is the "v" of records this code writes and understands.
const formatVersion = 1

// Limits that keep a record a single modest line: a backup of a whole file tree must not turn one
// history line into megabytes. What is cut is said in the record itself.
const (
	maxListItems = 100
	maxErrorLen  = 4096
)

// Record is one line of the history: one transition of one job attempt. Zero fields are left
// out of the line; a later record of the same job overrides the fields it sets.
type Record struct {
	V       int       `json:"v"`
	Job     string    `json:"job"`              // job id, unique per run
	Name    string    `json:"name,omitempty"`   // what the summary groups by: the cron job name, else the command ("backup")
	Origin  string    `json:"origin,omitempty"` // user, cron, remote or sshpipe (pidmgr.Type)
	State   State     `json:"state"`
	Time    time.Time `json:"time"`              // when the transition happened (set by Append when zero)
	Attempt int       `json:"attempt,omitempty"` // 1 for the first try, 2 for the first retry...; 0 means 1
	PID     int       `json:"pid,omitempty"`     // process running the attempt (queued, active)
	Token   string    `json:"token,omitempty"`   // its start token (pidmgr)
	VMs     []string  `json:"vms,omitempty"`
	Paths   []string  `json:"paths,omitempty"`
	// Byte counts so far (active) or in total (done): read from the source, sent over the
	// network, and newly stored in the repository after deduplication and compression.
	BytesRead   int64  `json:"bytes_read,omitempty"`
	BytesSent   int64  `json:"bytes_sent,omitempty"`
	BytesStored int64  `json:"bytes_stored,omitempty"`
	Exit        *int   `json:"exit,omitempty"`  // exit status (done); see Job.Result
	Error       string `json:"error,omitempty"` // what went wrong (done with exit != 0, died)
	// MailError says the job's report mail could not be sent (written by `cron run` after the
	// job ended); it does not change the job's result.
	MailError string `json:"mail_error,omitempty"`
}

// ExitCode is a helper for Record.Exit.
func ExitCode(code int) *int { return &code }

// validate checks what a reader needs to fold the record.
func (r Record) validate() error {
	if r.Job == "" {
		return errors.New("history record has no job id")
	}
	if _, err := ParseState(string(r.State)); err != nil {
		return fmt.Errorf("history record of job %s: %w", r.Job, err)
	}
	if r.Attempt < 0 {
		return fmt.Errorf("history record of job %s: attempt %d is negative", r.Job, r.Attempt)
	}
	return nil
}

// capped returns r with long lists and error text shortened to the record limits.
func (r Record) capped() Record {
	r.VMs = capList(r.VMs)
	r.Paths = capList(r.Paths)
	if len(r.Error) > maxErrorLen {
		r.Error = r.Error[:maxErrorLen] + fmt.Sprintf("... (%d more bytes)", len(r.Error)-maxErrorLen)
	}
	return r
}

func capList(xs []string) []string {
	if len(xs) <= maxListItems {
		return xs
	}
	out := append([]string(nil), xs[:maxListItems-1]...)
	return append(out, fmt.Sprintf("... (%d more)", len(xs)-(maxListItems-1)))
}

// attempt is Attempt with 0 read as 1.
func (r Record) attempt() int {
	if r.Attempt <= 0 {
		return 1
	}
	return r.Attempt
}

package pidmgr

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Type says who started a registered process; it decides whether KillIdle may stop it.
type Type string

const (
	// TypeUser is a command typed by a person. A later user launch may stop it (KillIdle).
	TypeUser Type = "user"
	// TypeCron is a job started by crond (`snapferry cron run`). Never stopped by KillIdle.
	TypeCron Type = "cron"
	// TypeRemote is a process started from another host over SSH: the far side of a --host
	// launch, or `snapferry serve` behind an ssh:// store. Never stopped by KillIdle.
	TypeRemote Type = "remote"
	// TypeSSHPipe is the local end of a --host launch: it carries the remote job's output and
	// stops the remote job when it is stopped. Never stopped by KillIdle.
	TypeSSHPipe Type = "sshpipe"
)

// Types lists every valid Type in the order the documentation names them.
func Types() []Type { return []Type{TypeUser, TypeCron, TypeRemote, TypeSSHPipe} }

// ParseType turns the text form of a Type back into one, with an error naming the valid values.
func ParseType(s string) (Type, error) {
	for _, t := range Types() {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("process type %q: want one of user, cron, remote, sshpipe", s)
}

// noJob is written in the job field when a process runs no job (for example `snapferry serve`).
const noJob = "-"

// Entry is one line of the registry: one running (or formerly running) snapferry process.
type Entry struct {
	PID        int       `json:"pid"`              // process id (on ESXi the cartel id that `ps -c` prints as CID)
	Type       Type      `json:"type"`             // who started it
	Token      string    `json:"token"`            // start token of the process when it registered (see ProcessTable)
	JobID      string    `json:"job_id,omitempty"` // job id, "" when the process runs no job
	Registered time.Time `json:"registered"`       // when the line was written (UTC, second precision)
	Argv       []string  `json:"argv"`             // the command line, argv[0] first
}

// Registry file header and line layout. Changing anything here needs a new version number and
// an update of docs/pid-registry.md; readers refuse versions they do not know.
const (
	headerPrefix  = "# snapferry-pid "
	formatVersion = "v1"
	fieldCount    = 6
)

func header() string { return headerPrefix + formatVersion }

// line renders e as one registry line without the trailing newline. Fields are separated by a
// tab; only the last field (the argv as a JSON array) may contain spaces, and JSON escapes any
// tab or newline inside it, so a line is always exactly one line.
func (e Entry) line() (string, error) {
	if err := validToken("start token", e.Token); err != nil {
		return "", err
	}
	job := e.JobID
	if job == "" {
		job = noJob
	}
	if err := validToken("job id", job); err != nil {
		return "", err
	}
	argv := e.Argv
	if argv == nil {
		argv = []string{}
	}
	a, err := json.Marshal(argv)
	if err != nil {
		return "", fmt.Errorf("encode command line of pid %d: %w", e.PID, err)
	}
	return strings.Join([]string{
		strconv.Itoa(e.PID),
		string(e.Type),
		e.Token,
		job,
		e.Registered.UTC().Format(time.RFC3339),
		string(a),
	}, "\t"), nil
}

// parseLine is the strict inverse of line: anything that line could not have produced is an
// error, so a torn or overwritten line is never mistaken for a process to keep or to signal.
func parseLine(s string) (Entry, error) {
	f := strings.Split(s, "\t")
	if len(f) != fieldCount {
		return Entry{}, fmt.Errorf("want %d tab-separated fields, found %d", fieldCount, len(f))
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 || strconv.Itoa(pid) != f[0] {
		return Entry{}, fmt.Errorf("pid %q is not a positive decimal number", f[0])
	}
	typ, err := ParseType(f[1])
	if err != nil {
		return Entry{}, err
	}
	if err := validToken("start token", f[2]); err != nil {
		return Entry{}, err
	}
	if err := validToken("job id", f[3]); err != nil {
		return Entry{}, err
	}
	reg, err := time.Parse(time.RFC3339, f[4])
	if err != nil {
		return Entry{}, fmt.Errorf("registration time %q: %w", f[4], err)
	}
	if y := reg.UTC().Year(); y < 1 || y > 9999 {
		return Entry{}, fmt.Errorf("registration time %q is outside the years 1 to 9999", f[4])
	}
	var argv []string
	if err := json.Unmarshal([]byte(f[5]), &argv); err != nil || argv == nil {
		return Entry{}, fmt.Errorf("command line %q is not a JSON array of strings", f[5])
	}
	e := Entry{PID: pid, Type: typ, Token: f[2], JobID: f[3], Registered: reg.UTC(), Argv: argv}
	if e.JobID == noJob {
		e.JobID = ""
	}
	return e, nil
}

// validToken accepts a non-empty printable word: no spaces, tabs or control characters, so it
// can stand in a tab-separated field and in `ps`-like printouts.
func validToken(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%s %q contains a space or control character", what, s)
		}
	}
	return nil
}

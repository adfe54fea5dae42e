package cron

import (
	"fmt"
	"strings"
	"time"
)

// Job is one named scheduled job: the arguments of a snapferry command plus when to run it, how
// to retry it and whom to tell. It is stored in the jobs file exactly as shown by its JSON tags.
type Job struct {
	Name     string   `json:"name"`
	Schedule string   `json:"schedule"`
	Args     []string `json:"args"`
	Retry    Retry    `json:"retry,omitzero"`
	Mail     Mail     `json:"mail,omitzero"`
	// Hooks are --on-event values, "EVENT[,EVENT]:COMMAND", parsed by appliance/notify.
	Hooks []string `json:"hooks,omitempty"`
	// Added is when the job was defined (Store.Add sets it): until a run succeeds, `status`
	// measures the job's schedule from here. Zero in jobs files written before it existed.
	Added time.Time `json:"added,omitzero"`
}

// Retry is the per-job retry policy (--retries, --retry-delay, --retry-window).
type Retry struct {
	// Retries is how many times a failed run is tried again (0: never).
	Retries int `json:"retries,omitempty"`
	// Delay is the pause before each retry.
	Delay Duration `json:"delay,omitzero"`
	// Window bounds all retries: none starts later than Window after the first attempt
	// started. Zero means no bound other than the job's next scheduled run.
	Window Duration `json:"window,omitzero"`
}

// Mail holds the --mail-* and --smtp-* values of a job as the user typed them. This package only
// stores them; appliance/notify parses and validates them (notify.MailConfig has the same fields,
// so the CLI converts with notify.MailConfig(job.Mail)). The password is never stored here, only
// the file that holds it.
type Mail struct {
	To           []string `json:"to,omitempty"`
	From         string   `json:"from,omitempty"`
	Server       string   `json:"smtp,omitempty"`
	User         string   `json:"smtp_user,omitempty"`
	PasswordFile string   `json:"smtp_password_file,omitempty"`
	TLS          string   `json:"smtp_tls,omitempty"`
	CAFile       string   `json:"smtp_ca_file,omitempty"`
	On           string   `json:"mail_on,omitempty"`
}

// Duration is a time.Duration written as "5m" / "12h" in the jobs file so people can edit it.
type Duration time.Duration

// MarshalText writes the duration in Go syntax ("1h30m0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w (write it like 5m, 90s or 12h)", b, err)
	}
	*d = Duration(v)
	return nil
}

const maxNameLen = 64

// ValidateName checks a job name. Names end up in a crontab marker, a shell command line and a
// log file name, so only letters, digits, '.', '_' and '-' are allowed, and not a leading '.'
// or '-' (a log file named ".x" hides, a name "-x" reads as a flag).
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("job name is empty; use letters, digits, '.', '_' or '-'")
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("job name %q is longer than %d characters", name, maxNameLen)
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("job name %q must not start with '.' or '-'", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("job name %q contains %q; use only letters, digits, '.', '_' or '-'", name, r)
		}
	}
	return nil
}

// Validate checks the whole job and says what to fix.
func (j Job) Validate() error {
	if err := ValidateName(j.Name); err != nil {
		return err
	}
	if _, err := ParseSchedule(j.Schedule); err != nil {
		return fmt.Errorf("job %s: %w", j.Name, err)
	}
	if len(j.Args) == 0 {
		return fmt.Errorf("job %s: no command; give the snapferry arguments after --, e.g. -- backup --vm=all --to=REPO", j.Name)
	}
	if j.Args[0] == "cron" {
		return fmt.Errorf("job %s: a job must not run \"snapferry cron\" itself", j.Name)
	}
	for i, a := range j.Args {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("job %s: argument %d contains a NUL byte, which no command line can carry", j.Name, i+1)
		}
	}
	if j.Retry.Retries < 0 {
		return fmt.Errorf("job %s: retries %d is negative", j.Name, j.Retry.Retries)
	}
	if j.Retry.Delay < 0 || j.Retry.Window < 0 {
		return fmt.Errorf("job %s: retry delay and window must not be negative", j.Name)
	}
	return nil
}

// ParsedSchedule returns the job's parsed schedule.
func (j Job) ParsedSchedule() (Schedule, error) {
	s, err := ParseSchedule(j.Schedule)
	if err != nil {
		return Schedule{}, fmt.Errorf("job %s: %w", j.Name, err)
	}
	return s, nil
}

package cronrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gofrs/flock"

	"github.com/snapferry/snapferry/appliance/notify"
	"github.com/snapferry/snapferry/cron"
)

// Options configure one `cron run`.
type Options struct {
	Store *cron.Store
	Name  string
	// Binary is the snapferry binary that runs the job's arguments (os.Executable()).
	Binary string
	Clock  cron.Clock
	// Host names this host in reports and hooks.
	Host string
	// LogMaxSize and LogKeep rotate the job log (defaults 1 MiB and 5).
	LogMaxSize int64
	LogKeep    int
	// HookTimeout and MailTimeout bound hooks and the SMTP dialogue (defaults in notify).
	HookTimeout, MailTimeout time.Duration
	// IsPermanent adds error classes that must not be retried; exit statuses 2, 10 and 12 of
	// the child are permanent already (cron.ExitError).
	IsPermanent func(error) bool
	// OnAttempt receives every attempt, for the job history.
	OnAttempt func(cron.Attempt)
	// Exec runs one attempt; nil runs Binary with the job's arguments, env added to the
	// environment and the output into the log. An in-process CLI may replace it.
	Exec func(ctx context.Context, args, env []string, out io.Writer) error
}

// Environment variables `cron run` gives the command it starts, besides notify.ReportFileEnv:
// the command records them in the job history (name cron job, origin cron, attempt number).
const (
	EnvCronJob = "SNAPFERRY_CRON_JOB"
	EnvAttempt = "SNAPFERRY_ATTEMPT"
)

// Result is what a run did.
type Result struct {
	Job cron.Job
	// Skipped is true when nothing ran: scheduling is suspended, or the previous run of the
	// same job is still going (SkipReason says which).
	Skipped    bool
	SkipReason string
	Outcome    cron.Outcome
	Report     notify.Report
	// MailSent reports whether a report e-mail went out.
	MailSent bool
	// Warnings are problems that did not change the result: a failing hook, an unsendable mail,
	// a bad mail or hook setting.
	Warnings []error
	// LogPath is the job log written.
	LogPath string
}

// Err is the run's error: nil for success and for a suspended skip.
func (r Result) Err() error { return r.Outcome.Err }

// Run performs `cron run NAME`. It returns an error only when the job could not be run at all
// (unknown job, unreadable jobs file, log not writable); a job that ran and failed is reported
// in Result.Outcome.Err.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Clock == nil {
		o.Clock = cron.SystemClock{}
	}
	if o.LogMaxSize == 0 {
		o.LogMaxSize = 1 << 20
	}
	if o.LogKeep == 0 {
		o.LogKeep = 5
	}
	job, err := o.Store.RunnableJob(ctx, o.Name)
	suspended := errors.Is(err, cron.ErrSuspended)
	if err != nil && !suspended {
		return Result{}, err
	}
	log, err := cron.OpenJobLog(o.Store.Dir(), o.Name, o.LogMaxSize, o.LogKeep)
	if err != nil {
		return Result{}, err
	}
	defer log.Close()
	res := Result{Job: job, LogPath: log.Path()}
	logf := func(format string, args ...any) {
		fmt.Fprintf(log, "%s %s\n", o.Clock.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
	if suspended {
		res.Skipped, res.SkipReason = true, "scheduling is suspended (snapferry cron resume)"
		logf("cron run %s: skipped, %s", o.Name, res.SkipReason)
		return res, nil
	}
	// One run per job at a time: a backup that outlasts its interval must not be joined by the
	// next scheduled start writing the same VMs' snapshots. The lock goes with the process, so a
	// killed run never blocks the next one.
	runLock := flock.New(filepath.Join(filepath.Dir(log.Path()), job.Name+".run.lock"))
	locked, err := runLock.TryLock()
	if err != nil {
		return res, fmt.Errorf("cron run %s: lock %s: %w", job.Name, runLock.Path(), err)
	}
	if !locked {
		res.Skipped, res.SkipReason = true, "the previous run of this job is still going"
		logf("cron run %s: skipped, %s", o.Name, res.SkipReason)
		return res, nil
	}
	defer runLock.Unlock()
	warn := func(err error) {
		res.Warnings = append(res.Warnings, err)
		logf("warning: %v", err)
	}

	mail := notify.MailConfig(job.Mail)
	if err := mail.Validate(); err != nil {
		warn(fmt.Errorf("job %s: no report mail: %w", job.Name, err))
		mail = notify.MailConfig{}
	}
	hookList, err := notify.ParseHooks(job.Hooks)
	if err != nil {
		warn(fmt.Errorf("job %s: hooks disabled: %w", job.Name, err))
	}
	hooks := notify.HookRunner{Hooks: hookList, Timeout: o.HookTimeout, Log: log}
	fire := func(ev notify.EventData) {
		ev.JobName, ev.Host = job.Name, o.Host
		for _, w := range hooks.Fire(ctx, ev) {
			res.Warnings = append(res.Warnings, w) // Fire has logged it already
		}
	}

	reportFile := filepath.Join(filepath.Dir(log.Path()), job.Name+".report.json")
	exec := o.Exec
	if exec == nil {
		exec = func(ctx context.Context, args, env []string, out io.Writer) error {
			return cron.Subcommand(ctx, o.Binary, args, env, out)
		}
	}
	var last *notify.Report
	logf("cron run %s: start: snapferry %q", job.Name, job.Args)
	fire(notify.EventData{Event: notify.JobStart, Attempt: 1})
	runner := cron.Runner{
		Clock:       o.Clock,
		IsPermanent: o.IsPermanent,
		OnAttempt: func(a cron.Attempt) {
			switch {
			case a.Err == nil:
				logf("attempt %d: success after %s", a.Number, a.End.Sub(a.Start).Round(time.Second))
			case a.Next.Retry:
				logf("attempt %d: %v; retry at %s", a.Number, a.Err, a.Next.At.Format(time.RFC3339))
				fire(notify.EventData{Event: notify.JobRetry, Attempt: a.Number, Result: notify.Failure,
					Details: map[string]string{"error": a.Err.Error(), "retry_at": a.Next.At.Format(time.RFC3339)}})
			default:
				logf("attempt %d: %v; %s", a.Number, a.Err, a.Next.Reason)
			}
			if o.OnAttempt != nil {
				o.OnAttempt(a)
			}
		},
	}
	res.Outcome = runner.Run(ctx, job, func(ctx context.Context, attempt int) error {
		os.Remove(reportFile)
		env := []string{notify.ReportFileEnv + "=" + reportFile, EnvCronJob + "=" + job.Name, EnvAttempt + "=" + strconv.Itoa(attempt)}
		err := exec(ctx, job.Args, env, log)
		last = nil
		if r, rerr := notify.ReadReportFile(reportFile); rerr == nil {
			last = &r
		} else if !errors.Is(rerr, os.ErrNotExist) {
			warn(rerr)
		}
		return err
	})
	os.Remove(reportFile)

	res.Report = finalReport(job, o.Host, res.Outcome, last)
	details := map[string]string{}
	if res.Outcome.Err != nil {
		details["error"] = res.Outcome.Err.Error()
	}
	fire(notify.EventData{Event: notify.EventForResult(res.Report.Result), JobID: res.Report.JobID,
		Result: res.Report.Result, Attempt: len(res.Outcome.Attempts), Details: details})
	logf("cron run %s: %s after %d attempt(s)", job.Name, res.Report.Result, len(res.Outcome.Attempts))

	sent, err := notify.Mailer{Config: mail, Timeout: o.MailTimeout}.SendReport(ctx, res.Report)
	if err != nil {
		warn(err)
	}
	res.MailSent = sent
	if sent {
		logf("report mailed to %s", mail.Recipients())
	}
	return res, nil
}

// finalReport is the child's report of the last attempt when it left one, else a report made
// from the outcome alone.
func finalReport(job cron.Job, host string, out cron.Outcome, child *notify.Report) notify.Report {
	var r notify.Report
	if child != nil {
		r = *child
	}
	r.Job = job.Name
	if r.Host == "" {
		r.Host = host
	}
	if n := len(out.Attempts); n > 0 {
		r.Attempt = n
		if r.Start.IsZero() {
			r.Start = out.Attempts[0].Start
		}
		if r.End.IsZero() {
			r.End = out.Attempts[n-1].End
		}
	}
	var ee *cron.ExitError
	switch {
	case out.Err == nil:
		if r.Result == "" {
			r.Result = notify.Success
		}
	case errors.As(out.Err, &ee) && ee.Code == 3:
		r.Result = notify.Partial
	default:
		r.Result = notify.Failure
	}
	if out.Err != nil && child == nil {
		r.Errors = append(r.Errors, out.Err.Error())
	}
	return r
}

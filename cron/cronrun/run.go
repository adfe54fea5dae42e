package cronrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	// MailSent reports whether a report e-mail went out; MailErr why one that was due did not
	// (a bad mail setting, an unreachable server). `cron run` records it in the job history and
	// exits non-zero for it.
	MailSent bool
	MailErr  error
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
	r := &run{o: o, job: job, log: log, res: Result{Job: job, LogPath: log.Path()}}
	if suspended {
		return r.skip("scheduling is suspended (snapferry cron resume)"), nil
	}
	// One run per job at a time: a backup that outlasts its interval must not be joined by the
	// next scheduled start writing the same VMs' snapshots. The lock goes with the process, so a
	// killed run never blocks the next one.
	runLock := flock.New(filepath.Join(filepath.Dir(log.Path()), job.Name+".run.lock"))
	locked, err := runLock.TryLock()
	if err != nil {
		return r.res, fmt.Errorf("cron run %s: lock %s: %w", job.Name, runLock.Path(), err)
	}
	if !locked {
		return r.skip("the previous run of this job is still going"), nil
	}
	defer runLock.Unlock()

	r.configure()
	r.logf("cron run %s: start: snapferry %q", job.Name, job.Args)
	r.fire(ctx, notify.EventData{Event: notify.JobStart, Attempt: 1})
	last := r.attempts(ctx)
	// Hooks and the report still go out when the run was interrupted: they have their own
	// timeouts, and an interrupted backup is exactly what someone should hear about.
	r.finish(context.WithoutCancel(ctx), last)
	return r.res, nil
}

// run is the state of one Run.
type run struct {
	o     Options
	job   cron.Job
	log   *cron.JobLog
	res   Result
	mail  notify.MailConfig
	hooks notify.HookRunner
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s %s\n", r.o.Clock.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

func (r *run) warn(err error) {
	r.res.Warnings = append(r.res.Warnings, err)
	r.logf("warning: %v", err)
}

func (r *run) skip(reason string) Result {
	r.res.Skipped, r.res.SkipReason = true, reason
	r.logf("cron run %s: skipped, %s", r.o.Name, reason)
	return r.res
}

// configure reads the job's mail and hook settings; a bad one is a warning and is left out,
// since the backup itself must still run.
func (r *run) configure() {
	r.mail = notify.MailConfig(r.job.Mail)
	if err := r.mail.Validate(); err != nil {
		r.res.MailErr = fmt.Errorf("job %s: no report mail: %w", r.job.Name, err)
		r.warn(r.res.MailErr)
		r.mail = notify.MailConfig{}
	}
	hooks, err := notify.ParseHooks(r.job.Hooks)
	if err != nil {
		r.warn(fmt.Errorf("job %s: hooks disabled: %w", r.job.Name, err))
	}
	r.hooks = notify.HookRunner{Hooks: hooks, Timeout: r.o.HookTimeout, Log: r.log}
}

func (r *run) fire(ctx context.Context, ev notify.EventData) {
	ev.JobName, ev.Host = r.job.Name, r.o.Host
	// Fire has logged each warning already.
	r.res.Warnings = append(r.res.Warnings, r.hooks.Fire(ctx, ev)...)
}

// attempts runs the job with its retries and returns the report the last attempt's child left
// (nil if none).
func (r *run) attempts(ctx context.Context) *notify.Report {
	reportFile := filepath.Join(filepath.Dir(r.log.Path()), r.job.Name+".report.json")
	defer os.Remove(reportFile)
	exec := r.o.Exec
	if exec == nil {
		exec = func(ctx context.Context, args, env []string, out io.Writer) error {
			return cron.Subcommand(ctx, r.o.Binary, args, env, out)
		}
	}
	var last *notify.Report
	runner := cron.Runner{Clock: r.o.Clock, IsPermanent: r.o.IsPermanent, OnAttempt: func(a cron.Attempt) {
		switch {
		case a.Err == nil:
			r.logf("attempt %d: success after %s", a.Number, a.End.Sub(a.Start).Round(time.Second))
		case a.Next.Retry:
			r.logf("attempt %d: %v; retry at %s", a.Number, a.Err, a.Next.At.Format(time.RFC3339))
			r.fire(ctx, notify.EventData{Event: notify.JobRetry, Attempt: a.Number, Result: notify.Failure,
				Details: map[string]string{"error": a.Err.Error(), "retry_at": a.Next.At.Format(time.RFC3339)}})
		default:
			r.logf("attempt %d: %v; %s", a.Number, a.Err, a.Next.Reason)
		}
		if r.o.OnAttempt != nil {
			r.o.OnAttempt(a)
		}
	}}
	r.res.Outcome = runner.Run(ctx, r.job, func(ctx context.Context, attempt int) error {
		os.Remove(reportFile)
		env := []string{notify.ReportFileEnv + "=" + reportFile, EnvCronJob + "=" + r.job.Name, EnvAttempt + "=" + strconv.Itoa(attempt)}
		err := exec(ctx, r.job.Args, env, r.log)
		last = nil
		if rep, rerr := notify.ReadReportFile(reportFile); rerr == nil {
			last = &rep
		} else if !errors.Is(rerr, os.ErrNotExist) {
			r.warn(rerr)
		}
		return err
	})
	return last
}

// finish builds the final report, fires the job's end event and mails the report.
func (r *run) finish(ctx context.Context, child *notify.Report) {
	out := r.res.Outcome
	r.res.Report = finalReport(r.job, r.o.Host, out, child)
	for _, n := range r.res.Report.Events {
		r.fire(ctx, notify.EventData{Event: n.Event, JobID: r.res.Report.JobID, Result: r.res.Report.Result,
			Attempt: len(out.Attempts), Details: n.Details})
	}
	details := map[string]string{}
	if out.Err != nil {
		details["error"] = out.Err.Error()
	}
	r.fire(ctx, notify.EventData{Event: notify.EventForResult(r.res.Report.Result), JobID: r.res.Report.JobID,
		Result: r.res.Report.Result, Attempt: len(out.Attempts), Details: details})
	r.logf("cron run %s: %s after %d attempt(s)", r.job.Name, r.res.Report.Result, len(out.Attempts))
	sent, err := notify.Mailer{Config: r.mail, Timeout: r.o.MailTimeout}.SendReport(ctx, r.res.Report)
	if err != nil {
		r.res.MailErr = err
		r.warn(err)
	}
	r.res.MailSent = sent
	if sent {
		r.logf("report mailed to %s", strings.Join(r.mail.Recipients(), ", "))
	}
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

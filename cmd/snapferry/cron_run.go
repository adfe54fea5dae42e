package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/cronrun"
	"github.com/snapferry/snapferry/pidmgr"
)

// cronRunReport is what `cron run --json` prints.
type cronRunReport struct {
	Name       string           `json:"name"`
	Result     string           `json:"result"`
	Skipped    bool             `json:"skipped,omitempty"`
	SkipReason string           `json:"skip_reason,omitempty"`
	Attempts   []attemptSummary `json:"attempts"`
	Error      string           `json:"error,omitempty"`
	MailSent   bool             `json:"mail_sent"`
	Warnings   []string         `json:"warnings,omitempty"`
	Log        string           `json:"log"`
	ExitCode   int              `json:"exit_code"`
}

// attemptSummary is one attempt of a run as `cron run --json` shows it.
type attemptSummary struct {
	Number    int       `json:"number"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Error     string    `json:"error,omitempty"`
	Permanent bool      `json:"permanent,omitempty"`
	RetryAt   time.Time `json:"retry_at,omitzero"`
	Decision  string    `json:"decision,omitempty"`
}

// runCronRun is `snapferry cron run NAME`, what the crontab line starts: it registers as a cron
// process in the PID registry, runs the job's command as a child with the job's retries, and
// leaves the job log, the history of every attempt, the hooks and the report mail behind.
// Exit status: 0 for success and for a skipped run (suspended, or the previous run still
// going), else the status of the last attempt's command (3 partial, 1 failed...); 1 also when
// the job succeeded but its report mail could not be sent.
func runCronRun(a *app, args []string) int {
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return a.fail(usagef("cron run takes one job name (see snapferry cron list)"))
	}
	name := pos[0]
	store, home, err := a.cronStore()
	if err != nil {
		return a.fail(err)
	}
	bin, err := cron.BinaryPath(os.Args[0])
	if err != nil {
		return a.fail(err)
	}
	reg, err := a.registry()
	if err != nil {
		return a.fail(err)
	}
	// Type cron: a person's later backup must not stop this run, and this run stops nobody.
	begin, err := reg.Begin(a.ctx, pidmgr.BeginOptions{Type: pidmgr.TypeCron, Argv: os.Args})
	if err != nil {
		if begin.Entry.PID == 0 {
			return a.fail(err)
		}
		fmt.Fprintf(a.stderr, "warning: %v\n", err)
	}
	defer func() {
		// Its own context: an interrupted run still leaves the registry.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := reg.Shutdown(ctx); err != nil {
			fmt.Fprintf(a.stderr, "warning: %v\n", err)
		}
	}()
	hist := a.attemptHistory(home, name)
	host, _ := os.Hostname()
	res, err := cronrun.Run(a.ctx, cronrun.Options{Store: store, Name: name, Binary: bin, Host: host,
		OnAttempt: func(at cron.Attempt) { hist.record(a.ctx, at) }})
	if err != nil {
		if errors.Is(err, cron.ErrJobNotFound) {
			return a.fail(usageError{err.Error()})
		}
		return a.fail(err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(a.stderr, "warning: %v\n", w)
	}
	code = cronRunExit(a, res)
	if res.MailErr != nil {
		// The job's history and `status` show it; the exit status says it too (a job that
		// succeeded but whose report nobody got needs a human).
		hist.noteMail(a.ctx, res.MailErr)
		if code == exitOK {
			code = exitFailed
		}
	}
	if a.jsonOut {
		a.printJSON(cronRunSummary(res, code))
		return code
	}
	switch {
	case res.Skipped:
		fmt.Fprintf(a.stdout, "job %s skipped: %s\n", name, res.SkipReason)
	default:
		fmt.Fprintf(a.stdout, "job %s: %s after %d attempt(s); log %s\n", name, res.Report.Result, len(res.Outcome.Attempts), res.LogPath)
		if res.Err() != nil {
			fmt.Fprintf(a.stderr, "snapferry %s: %v\n", a.cmd, res.Err())
		}
	}
	return code
}

// cronRunExit is the exit status of a run: the last attempt's command status passes through,
// so crond, scripts and the history see partial (3) or wrong password (12) as such.
func cronRunExit(a *app, res cronrun.Result) int {
	err := res.Err()
	var ee *cron.ExitError
	switch {
	case res.Skipped || err == nil:
		return exitOK
	case a.interrupted() || errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ee):
		return ee.Code
	}
	return exitFailed
}

func cronRunSummary(res cronrun.Result, code int) cronRunReport {
	r := cronRunReport{Name: res.Job.Name, Result: string(res.Report.Result), Skipped: res.Skipped,
		SkipReason: res.SkipReason, MailSent: res.MailSent, Log: res.LogPath, ExitCode: code,
		Attempts: []attemptSummary{}}
	if res.Skipped {
		r.Result = "skipped"
	}
	if err := res.Err(); err != nil {
		r.Error = err.Error()
	}
	for _, w := range res.Warnings {
		r.Warnings = append(r.Warnings, w.Error())
	}
	for _, at := range res.Outcome.Attempts {
		s := attemptSummary{Number: at.Number, Start: at.Start, End: at.End, Permanent: at.Permanent, Decision: at.Next.Reason}
		if at.Err != nil {
			s.Error = at.Err.Error()
		}
		if at.Next.Retry {
			s.RetryAt, s.Decision = at.Next.At, "retry"
		}
		r.Attempts = append(r.Attempts, s)
	}
	return r
}

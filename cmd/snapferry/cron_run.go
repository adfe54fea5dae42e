package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/appliance/cronrun"
	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/executable"
	"github.com/snapferry/snapferry/cron/exitcode"
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
func newCronRunCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "run NAME",
		Short: "run a job now, with its retries, hooks and mail",
		Long: "Run runs job NAME as its crontab line does: the job's command in a child process, with the job's\n" +
			"retries, its log, the job history, hooks and the report mail. It exits 0 for success and for a\n" +
			"skipped run (suspended, or the previous run still going), else with the status of the last\n" +
			"attempt's command (3 partial, 1 failed, ...).",
		Example: "  snapferry cron run nightly\n  snapferry --home=/vmfs/volumes/ds1/snapferry cron run nightly",
		Args:    exactArgs(1),
		RunE:    func(_ *cobra.Command, args []string) error { return a.cronRun(args[0]) },
	}
}

func (a *app) cronRun(name string) error {
	store, home, err := a.cronStore()
	if err != nil {
		return err
	}
	bin, err := executable.Path()
	if err != nil {
		return err
	}
	reg, err := a.registry()
	if err != nil {
		return err
	}
	// Type cron: a person's later backup must not stop this run, and this run stops nobody.
	begin, err := reg.Begin(a.ctx, pidmgr.BeginOptions{Type: pidmgr.TypeCron, Argv: os.Args})
	if err != nil {
		if begin.Entry.PID == 0 {
			return err
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
	hist := jobrun.NewAttemptHistory(home, name, func(s string) { fmt.Fprintf(a.stderr, "warning: %s\n", s) })
	host, _ := os.Hostname()
	res, err := cronrun.Run(a.ctx, cronrun.Options{Store: store, Name: name, Binary: bin, Host: host,
		OnAttempt: func(at cron.Attempt) { hist.Record(a.ctx, at) }})
	if err != nil {
		if errors.Is(err, cron.ErrJobNotFound) {
			return asUsage(err)
		}
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(a.stderr, "warning: %v\n", w)
	}
	code := cronRunExit(a, res)
	if res.MailErr != nil {
		// The job's history and `status` show it; the exit status says it too (a job that
		// succeeded but whose report nobody got needs a human).
		hist.NoteMail(a.ctx, res.MailErr)
		if code == exitcode.OK {
			code = exitcode.Failed
		}
	}
	if a.jsonOut {
		a.printJSON(cronRunSummary(res, code))
		return exitcode.New(code, nil)
	}
	switch {
	case res.Skipped:
		fmt.Fprintf(a.stdout, "job %s skipped: %s\n", name, res.SkipReason)
	default:
		fmt.Fprintf(a.stdout, "job %s: %s after %d attempt(s); log %s\n", name, res.Report.Result, len(res.Outcome.Attempts), res.LogPath)
		if res.Err() != nil {
			fmt.Fprintf(a.stderr, "snapferry cron run: %v\n", res.Err())
		}
	}
	if code == exitcode.OK {
		return nil
	}
	// The last attempt's status passes through; its error is printed above.
	return exitcode.New(code, nil)
}

// cronRunExit is the exit status of a run: the last attempt's command status passes through,
// so crond, scripts and the history see partial (3) or wrong password (12) as such.
func cronRunExit(a *app, res cronrun.Result) int {
	err := res.Err()
	var ee *cron.ExitError
	switch {
	case res.Skipped || err == nil:
		return exitcode.OK
	case a.interrupted() || errors.Is(err, context.Canceled):
		return exitcode.Interrupted
	case errors.As(err, &ee):
		return ee.Code
	}
	return exitcode.Failed
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

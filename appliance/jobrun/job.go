package jobrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/snapferry/snapferry/appliance/notify"
	"github.com/snapferry/snapferry/cron/history"
	"github.com/snapferry/snapferry/pidmgr"
)

// Options describe the job being started.
type Options struct {
	StateDir string
	Command  string   // "backup", "replica", "restore", "check", "prune": decides the policy (policy.go) and what the history groups by without a cron name
	Argv     []string // this process's command line
	Origin   Origin
	VMs      []string
	Paths    []string
	Host     string // this host's name, for the report
	// Registry and History may be given (tests, status); nil opens them in StateDir.
	Registry *pidmgr.Registry
	History  *history.Log
	Getenv   func(string) string // nil: os.Getenv
	Warn     func(string)        // problems that do not stop the job; nil: dropped
	Now      func() time.Time    // nil: time.Now
}

// Job is a started job. Its methods are safe to call from the signal path and the main path;
// End runs once.
type Job struct {
	ID     string
	Origin Origin
	Start  time.Time
	Begin  pidmgr.BeginReport

	o     Options
	pol   policy
	reg   *pidmgr.Registry
	run   *history.Run
	work  atomic.Int64 // see Work
	pulse *pulse
	done  bool
}

// Begin runs cleanup (and kill-idle for a user launch), registers this process and records the
// job as active. Kill-idle problems are warnings; a registry that cannot be written is an error,
// since a job the registry does not know could be stopped by the next user launch.
func Begin(ctx context.Context, o Options) (*Job, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pol, err := policyFor(o.Command)
	if err != nil {
		return nil, err
	}
	j := &Job{ID: NewID(o.Now()), Origin: o.Origin, Start: o.Now(), o: o, pol: pol, reg: o.Registry}
	if j.reg == nil {
		reg, err := pidmgr.New(pidmgr.Options{Dir: o.StateDir, Warn: o.Warn})
		if err != nil {
			return nil, err
		}
		j.reg = reg
	}
	idle := IdleAfter(o.Getenv, o.Warn)
	rep, err := j.reg.Begin(ctx, pidmgr.BeginOptions{Type: o.Origin.Type, JobID: j.ID, Argv: o.Argv,
		KillIdle: o.Origin.Type == pidmgr.TypeUser && pol.killIdle, Kill: pidmgr.KillOptions{IdleAfter: idle},
		Command: o.Command, KeepWhileBusy: pol.keepWhileBusy})
	j.Begin = rep
	if err != nil {
		if rep.Entry.PID == 0 {
			return nil, err
		}
		o.Warn(err.Error())
	}
	if rep.Pulse != nil {
		j.pulse = startPulse(rep.Pulse, &j.work, idle, o.Warn)
	}
	for _, d := range rep.Kill.Decisions {
		if d.Action == pidmgr.ActionTerminated || d.Action == pidmgr.ActionKilled {
			o.Warn(fmt.Sprintf("stopped an earlier snapferry process %d: %s", d.Process.PID, d.Reason))
		}
	}
	if !pol.history {
		return j, nil
	}
	hist := o.History
	if hist == nil {
		if hist, err = history.Open(history.Options{Dir: o.StateDir, Warn: o.Warn}); err != nil {
			o.Warn(fmt.Sprintf("job history: %v", err))
		}
	}
	if hist != nil {
		name := o.Origin.CronJob
		if name == "" {
			name = o.Command
		}
		j.run, err = hist.Start(ctx, history.Record{Job: j.ID, Name: name, Origin: string(o.Origin.Type),
			Attempt: o.Origin.Attempt, PID: rep.Entry.PID, Token: rep.Entry.Token, VMs: o.VMs, Paths: o.Paths})
		if err != nil {
			o.Warn(fmt.Sprintf("job history: %v", err))
		}
	}
	return j, nil
}

// Progress records byte counts of a running job (for `jobs` and `status`).
func (j *Job) Progress(ctx context.Context, c history.Counts) {
	if j.run != nil {
		if err := j.run.Progress(ctx, c); err != nil {
			j.o.Warn(fmt.Sprintf("job history: %v", err))
		}
	}
}

// Outcome is how the job ended.
type Outcome struct {
	Exit   int
	Err    error
	Counts history.Counts
	Rows   []notify.VMRow
	Totals *notify.Totals
	Errors []string        // job-level problems for the report
	Events []notify.Notice // events for hooks (fired by `cron run`)
}

// End records the outcome, leaves the report for `cron run` when it asked for one, and runs the
// registry's shutdown phase. It uses a context of its own so an interrupted job still records
// its end.
func (j *Job) End(o Outcome) error {
	if j.done {
		return nil
	}
	j.done = true
	if j.pulse != nil {
		j.pulse.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	if j.run != nil {
		errs = append(errs, j.run.End(ctx, o.Exit, o.Err, o.Counts))
	}
	if path := j.o.Getenv(notify.ReportFileEnv); path != "" && j.pol.history {
		errs = append(errs, notify.WriteReportFile(path, j.report(o)))
	}
	errs = append(errs, j.reg.Shutdown(ctx))
	return errors.Join(errs...)
}

func (j *Job) report(o Outcome) notify.Report {
	res := notify.Success
	switch {
	case o.Exit == 3:
		res = notify.Partial
	case o.Exit != 0:
		res = notify.Failure
	}
	errs := o.Errors
	if o.Err != nil {
		errs = append(errs, o.Err.Error())
	}
	name := j.o.Origin.CronJob
	if name == "" {
		name = j.o.Command
	}
	return notify.Report{Job: name, JobID: j.ID, Host: j.o.Host, Start: j.Start, End: j.o.Now(), Result: res,
		Attempt: j.o.Origin.Attempt, Rows: o.Rows, Errors: errs, Totals: o.Totals, Events: o.Events}
}

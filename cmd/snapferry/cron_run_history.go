package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/history"
	"github.com/snapferry/snapferry/pidmgr"
)

// attemptHistory makes sure the job history shows every attempt of a cron run. A job command
// that runs inside jobrun (backup, restore) records its own attempt, named after the cron job;
// one that does not (check, prune...) or that stops before it starts its job (a usage error, a
// repository that is not there) leaves nothing, and then `cron run` writes the attempt itself.
type attemptHistory struct {
	log  *history.Log // nil when the history cannot be opened: warned once, runs go on
	name string
	warn func(string)
}

func (a *app) attemptHistory(home, name string) attemptHistory {
	warn := func(s string) { fmt.Fprintf(a.stderr, "warning: %s\n", s) }
	log, err := history.Open(history.Options{Dir: home, Warn: warn})
	if err != nil {
		warn(fmt.Sprintf("job history: %v", err))
	}
	return attemptHistory{log: log, name: name, warn: warn}
}

// noteMail records on the run's newest job that its report mail could not be sent.
func (h attemptHistory) noteMail(ctx context.Context, err error) {
	if h.log == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if e := h.log.NoteMailFailure(ctx, h.name, err.Error()); e != nil {
		h.warn(fmt.Sprintf("job history: %v", e))
	}
}

// clockSlack covers the child's clock reading before ours: a record written during the attempt
// may carry a time a little before the attempt's start as `cron run` measured it.
const clockSlack = time.Second

// record writes the attempt unless its child already did.
func (h attemptHistory) record(ctx context.Context, at cron.Attempt) {
	if h.log == nil {
		return
	}
	// The history outlives an interrupted run: write with a context of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	recorded, err := h.childRecorded(ctx, at)
	if err != nil {
		h.warn(fmt.Sprintf("job history: %v", err))
		return
	}
	if recorded {
		return
	}
	exit := exitOK
	var ee *cron.ExitError
	switch {
	case errors.As(at.Err, &ee):
		exit = ee.Code
	case errors.Is(at.Err, context.Canceled):
		exit = exitInterrupted
	case at.Err != nil:
		exit = exitFailed
	}
	base := history.Record{Job: jobrun.NewID(at.Start), Name: h.name, Origin: string(pidmgr.TypeCron), Attempt: at.Number}
	active, done := base, base
	active.State, active.Time = history.StateActive, at.Start
	done.State, done.Time, done.Exit = history.StateDone, at.End, history.ExitCode(exit)
	if at.Err != nil {
		done.Error = at.Err.Error()
	}
	for _, r := range []history.Record{active, done} {
		if err := h.log.Append(ctx, r); err != nil {
			h.warn(fmt.Sprintf("job history: attempt %d of %s: %v", at.Number, h.name, err))
			return
		}
	}
}

// childRecorded reports whether the history holds a record of this attempt written while it ran.
// Runs of one job never overlap (cronrun holds a lock), so name, attempt and time identify it.
func (h attemptHistory) childRecorded(ctx context.Context, at cron.Attempt) (bool, error) {
	recs, err := h.log.Records(ctx)
	if err != nil {
		return false, err
	}
	since := at.Start.Add(-clockSlack)
	for _, r := range recs {
		n := r.Attempt
		if n == 0 {
			n = 1
		}
		if r.Name == h.name && r.Origin == string(pidmgr.TypeCron) && n == at.Number && !r.Time.Before(since) {
			return true, nil
		}
	}
	return false, nil
}

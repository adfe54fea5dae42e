package main

import (
	"context"
	"fmt"
	"os"

	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/appliance/notify"
	"github.com/snapferry/snapferry/cron/history"
)

// addOriginFlag registers the hidden --origin flag that --host launches pass to the far side.
func (a *app) addOriginFlag(dst *string) {
	a.flags.StringVar(dst, "origin", "", "who started this job: user, cron, remote (set by snapferry itself)")
	a.flags.MarkHidden("origin")
}

// beginJob starts the job life cycle (registry phases, history). Call before any child process
// or VM snapshot; pair with endJob.
func (a *app) beginJob(command, origin string, vms, paths []string) (*jobrun.Job, error) {
	dir, err := a.stateDir()
	if err != nil {
		return nil, err
	}
	o, err := jobrun.DetectOrigin(origin, os.Getenv)
	if err != nil {
		return nil, usagef("--origin: %v", err)
	}
	host, _ := os.Hostname()
	j, err := jobrun.Begin(a.ctx, jobrun.Options{StateDir: dir, Command: command, Argv: os.Args, Origin: o,
		VMs: vms, Paths: paths, Host: host, Warn: func(s string) { fmt.Fprintf(a.stderr, "warning: %s\n", s) }})
	if err == nil {
		// Running jobs show their progress in `status` and `jobs` through the history.
		a.jobBytes = func(read int64) { j.Progress(context.Background(), history.Counts{Read: read}) }
		a.jobWork = j.Work
	}
	return j, err
}

// beginTask registers a check or prune (jobrun policy: no kill-idle, no history) and returns
// the function that ends it. A state folder that cannot be used only costs the protection of
// the heartbeat, so it is a warning: these commands never needed one before.
func (a *app) beginTask(command string) func() {
	j, err := a.beginJob(command, "", nil, nil)
	if err != nil {
		fmt.Fprintf(a.stderr, "warning: %s runs unregistered: %v\n", command, err)
		return func() {}
	}
	return func() {
		if err := j.End(jobrun.Outcome{}); err != nil {
			fmt.Fprintf(a.stderr, "warning: recording the end of %s: %v\n", command, err)
		}
	}
}

// renderer is the progress renderer of a job command: it also records the job's progress.
func (a *app) renderer() *renderer {
	r := newRenderer(a.stderr, a.jsonOut)
	r.onBytes = a.jobBytes
	r.onWork = a.jobWork
	return r
}

// endJob records the outcome of a job and returns the exit code to use.
func (a *app) endJob(j *jobrun.Job, err error, items []backupItem, events ...notify.Notice) int {
	code := codeFor(a, err)
	out := jobrun.Outcome{Exit: code, Err: err, Events: events}
	for _, it := range items {
		out.Counts.Read += it.Stats.BytesRead
		out.Counts.Stored += it.Stats.BytesStored
		out.Rows = append(out.Rows, it.row())
	}
	if e := j.End(out); e != nil {
		fmt.Fprintf(a.stderr, "warning: recording the end of job %s: %v\n", j.ID, e)
	}
	return code
}

// row turns a backup item into a report row.
func (it backupItem) row() notify.VMRow {
	res := notify.Success
	switch {
	case it.Error != "":
		res = notify.Failure
	case len(it.Warnings) > 0:
		res = notify.Partial
	}
	mode := it.Mode
	if mode == "" {
		mode = it.Kind
	}
	return notify.VMRow{Name: it.Source, Mode: mode, Size: it.Stats.BytesRead, Changed: it.Stats.BytesAdded,
		Stored: it.Stats.BytesStored, Duration: it.Duration, Result: res, Error: it.Error}
}

package health

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/vmjob"
	"github.com/snapferry/snapferry/cron"
	"github.com/snapferry/snapferry/cron/history"
	"github.com/snapferry/snapferry/pidmgr"
)

// Options say where to look. Host may be nil (a Linux edge host without ESXi tools).
type Options struct {
	Version  string
	HostName string
	StateDir string
	Registry *pidmgr.Registry
	History  *history.Log
	Cron     *cron.Store
	Crontab  cron.CrontabTarget
	Host     appliance.Host
	Now      time.Time
}

// Collect gathers the report. A part that cannot be read becomes an attention line naming it;
// it never hides the other parts.
func Collect(ctx context.Context, o Options) *Report {
	r := &Report{Version: o.Version, Host: o.HostName, StateDir: o.StateDir, Time: o.Now}
	procs, err := pidmgr.Snapshot(ctx, o.Registry.Table())
	if err != nil {
		r.Attention = append(r.Attention, fmt.Sprintf("cannot list processes: %v", err))
	}
	if r.Registry, err = o.Registry.List(ctx); err != nil {
		r.Attention = append(r.Attention, fmt.Sprintf("PID registry %s unreadable: %v", o.Registry.Path(), err))
	}
	running := map[string]bool{}
	var jobs []history.Job
	if procs != nil {
		jobs = r.collectJobs(ctx, o, procs, running)
	}
	r.collectCron(ctx, o, procs, jobs)
	if procs != nil && !backedUp(jobs) {
		r.Attention = append(r.Attention, "nothing has been backed up on this host yet: run `snapferry backup` "+
			"or schedule it with `snapferry cron add` (see `snapferry jobs` for what ran)")
	}
	if o.Host != nil {
		r.collectLeftovers(ctx, o, running)
	} else {
		r.Notes = append(r.Notes, "no ESXi host tools here: VM snapshots not checked")
	}
	return r
}

func (r *Report) collectJobs(ctx context.Context, o Options, alive history.Liveness, running map[string]bool) []history.Job {
	jobs, err := o.History.Jobs(ctx, alive)
	if err != nil {
		r.Attention = append(r.Attention, fmt.Sprintf("job history unreadable: %v", err))
		return nil
	}
	for _, j := range jobs {
		if j.State == history.StateActive {
			r.Running = append(r.Running, j)
			running[j.ID] = true
		}
	}
	r.LastRuns = history.Summarize(jobs)
	for _, s := range r.LastRuns {
		switch res := s.Last.Result(); res {
		case history.ResultFailed, history.ResultDied, history.ResultPartial, history.ResultInterrupted:
			msg := fmt.Sprintf("last %s run %s ended %s", s.Name, s.Last.ID, res)
			if s.Last.Error != "" {
				msg += ": " + oneLine(s.Last.Error)
			}
			r.Attention = append(r.Attention, msg+" (see snapferry jobs "+s.Last.ID+")")
		}
		if s.Last.MailError != "" {
			r.Attention = append(r.Attention, fmt.Sprintf("the %s report mail of run %s was not sent: %s", s.Name, s.Last.ID, oneLine(s.Last.MailError)))
		}
	}
	return jobs
}

// backedUp reports whether any job that is not a restore ever ended ok or partial: a host
// where none did has nothing to restore from.
func backedUp(jobs []history.Job) bool {
	for _, j := range jobs {
		if res := j.Result(); j.Name != "restore" && (res == history.ResultOK || res == history.ResultPartial) {
			return true
		}
	}
	return false
}

// overdue says why a scheduled job needs a human, or "": it has had no successful run since a
// scheduled run that a whole schedule period has passed after (so the run had its time). It
// counts from the last ok run, else from when the job was added, else from its first run; a job
// with none of these is not judged.
func overdue(j cron.Job, jobs []history.Job, now time.Time) string {
	var lastOK, first time.Time
	for _, h := range jobs {
		if h.Name != j.Name {
			continue
		}
		if start := firstTime(h); !start.IsZero() && (first.IsZero() || start.Before(first)) {
			first = start
		}
		if h.Result() == history.ResultOK && h.Ended.After(lastOK) {
			lastOK = h.Ended
		}
	}
	since := lastOK
	for _, t := range []time.Time{j.Added, first} {
		if since.IsZero() {
			since = t
		}
	}
	if since.IsZero() {
		return ""
	}
	due, err := cron.NextRun(j, since)
	if err != nil {
		return ""
	}
	if next, err := cron.NextRun(j, due); err != nil || next.After(now) {
		return ""
	}
	last := "never"
	if !lastOK.IsZero() {
		last = lastOK.Format(time.RFC3339)
	}
	return fmt.Sprintf("cron job %s has had no successful run since %s (schedule %q; last ok: %s): see `snapferry jobs`",
		j.Name, due.Format(time.RFC3339), j.Schedule, last)
}

func firstTime(j history.Job) time.Time {
	for _, t := range []time.Time{j.Queued, j.Started, j.Ended} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func (r *Report) collectCron(ctx context.Context, o Options, procs *pidmgr.ProcessSnapshot, jobs []history.Job) {
	f, err := o.Cron.Load(ctx)
	if err != nil {
		r.Attention = append(r.Attention, fmt.Sprintf("cron jobs file unreadable: %v", err))
		return
	}
	r.Cron.Suspended = f.Suspended
	if f.Suspended {
		r.Attention = append(r.Attention, "scheduling is suspended: no backup runs until `snapferry cron resume`")
	}
	owned := map[string]bool{}
	// Without job definitions there is no line to look for (and on a Linux box without cron
	// installed, reading the crontab would only fail).
	if o.Crontab != nil && len(f.Jobs) > 0 {
		r.Cron.Crontab = o.Crontab.String()
		text, err := o.Crontab.Read(ctx)
		if err != nil {
			r.Attention = append(r.Attention, fmt.Sprintf("crontab %s unreadable: %v", o.Crontab, err))
		}
		for _, l := range strings.Split(text, "\n") {
			if name, ok := cron.OwnedCrontabLine(l); ok && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				owned[name] = true
			}
		}
	}
	for _, j := range f.Jobs {
		cj := CronJob{Name: j.Name, Schedule: j.Schedule, Installed: owned[j.Name]}
		if next, err := cron.NextRun(j, o.Now); err == nil {
			cj.NextRun = next
		}
		if !cj.Installed && !f.Suspended {
			r.Attention = append(r.Attention, fmt.Sprintf("cron job %s is not in the crontab: run `snapferry cron install`", j.Name))
		}
		if msg := overdue(j, jobs, o.Now); msg != "" && !f.Suspended {
			r.Attention = append(r.Attention, msg)
		}
		r.Cron.Jobs = append(r.Cron.Jobs, cj)
	}
	if procs != nil {
		up := procs.Running(func(p pidmgr.Process) bool {
			return p.Name == "crond" || p.Name == "cron" || strings.Contains(p.Cmdline, "busybox crond")
		})
		r.Cron.CrondActive = &up
		if !up && len(f.Jobs) > 0 && !f.Suspended {
			r.Attention = append(r.Attention, "crond is not running: scheduled backups will not start")
		}
	}
}

func (r *Report) collectLeftovers(ctx context.Context, o Options, running map[string]bool) {
	vms, err := o.Host.VMs(ctx)
	if err != nil {
		r.Attention = append(r.Attention, fmt.Sprintf("cannot list VMs: %v", err))
		return
	}
	for _, vm := range vms {
		snaps, err := o.Host.Snapshots(ctx, vm.ID)
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("VM %s: snapshots unreadable: %v", vm.Name, err))
			continue
		}
		for _, s := range snaps {
			if !strings.HasPrefix(s.Name, vmjob.SnapshotPrefix) || running[strings.TrimPrefix(s.Name, vmjob.SnapshotPrefix)] {
				continue
			}
			r.Leftovers = append(r.Leftovers, Leftover{VMID: vm.ID, VM: vm.Name, Snapshot: s.Name})
			r.Attention = append(r.Attention, fmt.Sprintf("VM %s has a leftover snapshot %s from a crashed run (the next backup of that VM removes it)", vm.Name, s.Name))
		}
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:159] + "…"
	}
	return s
}

package pidmgr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"
)

// KillOptions tune phase 2.
type KillOptions struct {
	DryRun bool          // decide and report, signal nothing
	Grace  time.Duration // wait between SIGTERM and SIGKILL; 0: 10s
	// IdleAfter is how long a process that asked to be kept while busy (restore, check, prune)
	// may go without progress before it counts as an idle leftover; 0: DefaultIdleAfter.
	IdleAfter time.Duration
	// onlyStops (set by Begin) skips the process listing when the registry holds no user launch
	// but this one: nothing could be stopped, and a job start needs only the stops, not the
	// keep decisions that `pid kill-idle` shows.
	onlyStops bool
}

// DefaultIdleAfter is the default KillOptions.IdleAfter.
const DefaultIdleAfter = 2 * time.Minute

// Action is what KillIdle did, or would do, with one process.
type Action string

const (
	ActionKeep       Action = "keep"       // protected; never signalled
	ActionWouldStop  Action = "would-stop" // dry run: would get SIGTERM (then SIGKILL)
	ActionTerminated Action = "terminated" // exited after SIGTERM
	ActionKilled     Action = "killed"     // ignored SIGTERM for the grace period; got SIGKILL
	ActionVanished   Action = "vanished"   // exited (or its pid was reused) before we signalled
	ActionFailed     Action = "failed"     // signalling failed or it outlived SIGKILL; see Err
)

// Decision is KillIdle's verdict on one process and why.
type Decision struct {
	Process    Process `json:"process"`
	Registered *Entry  `json:"registered,omitempty"` // the live registry entry for this process, nil when not registered
	Action     Action  `json:"action"`
	Reason     string  `json:"reason"`
	Err        error   `json:"-"`               // set with ActionFailed
	ErrText    string  `json:"error,omitempty"` // Err as text, for --json

	child bool // stopped as a child of a target, not for being a snapferry binary
}

// KillReport lists a decision for every snapferry process found, every child of one being
// stopped, and every editor with a snapferry file open; ordered by pid.
type KillReport struct {
	Decisions []Decision `json:"decisions"`
}

// Stopped counts the processes that were terminated or killed.
func (k KillReport) Stopped() int {
	n := 0
	for _, d := range k.Decisions {
		if d.Action == ActionTerminated || d.Action == ActionKilled {
			n++
		}
	}
	return n
}

// killWaitAfterSIGKILL bounds the wait for the kernel to finish off SIGKILLed processes.
const killWaitAfterSIGKILL = 5 * time.Second

// pollEvery is how often KillIdle checks whether signalled processes have exited.
const pollEvery = 50 * time.Millisecond

// KillIdle is phase 2: it stops snapferry processes a user left running so that a new user
// launch does not fight them over the same VMs and repository. It stops the snapferry
// processes (same executable path or name) that are live user entries of THIS registry, except:
//   - processes that started after this one (of two launches only the newer stops the older),
//   - this process and its ancestors (the shell or `snapferry cron run` that started it),
//   - editors and viewers whose command line names a snapferry path,
//   - jobs that asked to be kept while busy (restore, check, prune) and whose heartbeat shows
//     progress within opts.IdleAfter; without progress for that long they are idle leftovers.
//
// Everything else is kept: processes registered with a type other than user (cron, remote,
// sshpipe), and every process without a live entry here, because only an entry in this
// registry proves that a process is ours to judge (another state folder's jobs, a `serve` for
// another client, another installation).
//
// The children of each stopped process (by ppid) are stopped too, unless protected by the same
// rules. Each gets SIGTERM, and SIGKILL if still running after opts.Grace. Before every signal
// the process is looked up again and must still carry the start token seen at decision time, so
// a pid reused meanwhile is never hit. The entries of stopped processes are removed from the
// registry. Run Cleanup first so that stale entries do not protect anything.
func (r *Registry) KillIdle(ctx context.Context, opts KillOptions) (KillReport, error) {
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Second
	}
	if opts.IdleAfter <= 0 {
		opts.IdleAfter = DefaultIdleAfter
	}
	entries, err := r.snapshotEntries(ctx)
	if err != nil {
		return KillReport{}, fmt.Errorf("kill idle: %w", err)
	}
	if opts.onlyStops && !r.anyOtherUser(ctx, entries) {
		return KillReport{}, nil
	}
	snap, err := takeSnapshot(ctx, r.table)
	if err != nil {
		return KillReport{}, fmt.Errorf("kill idle: %w", err)
	}
	plan := r.planKill(snap, entries, r.selfPID(ctx), opts.IdleAfter)
	if opts.DryRun {
		for i := range plan {
			if plan[i].Action == actionStop {
				plan[i].Action = ActionWouldStop
			}
		}
		return KillReport{Decisions: plan}, nil
	}
	r.execute(ctx, plan, opts.Grace)
	stopped := map[int]string{}
	for _, d := range plan {
		if d.Action == ActionTerminated || d.Action == ActionKilled {
			stopped[d.Process.PID] = d.Process.Token
		}
	}
	if len(stopped) > 0 {
		err = r.update(ctx, func(es []Entry) ([]Entry, bool, error) {
			out := removeWhere(es, func(e Entry) bool { tok, ok := stopped[e.PID]; return ok && tok == e.Token })
			r.pruneBeats(out)
			return out, len(out) != len(es), nil
		})
		if err != nil {
			return KillReport{Decisions: plan}, fmt.Errorf("kill idle: remove stopped processes: %w", err)
		}
	}
	return KillReport{Decisions: plan}, nil
}

// anyOtherUser says whether entries hold a user launch other than this process: only those can
// be stopped (planKill targets live user entries alone).
func (r *Registry) anyOtherUser(ctx context.Context, entries []Entry) bool {
	self := r.selfPID(ctx)
	for _, e := range entries {
		if e.Type == TypeUser && e.PID != self && e.PID != r.self {
			return true
		}
	}
	return false
}

// actionStop marks a planned stop until execute or the dry run turns it into a result.
const actionStop Action = "stop"

// planKill decides, from one snapshot, which processes to stop and why: our processes that are
// older than this one and registered as idle user launches, with their children, and never a
// protected one.
func (r *Registry) planKill(snap snapshot, entries []Entry, self int, idleAfter time.Duration) []Decision {
	k := &killPlan{r: r, snap: snap, self: self, idleAfter: idleAfter, live: map[int]*Entry{},
		ancestors: snap.ancestors(self), selfOrder: snap.byPID[self].StartOrder, decided: map[int]*Decision{}}
	for i, e := range entries {
		if snap.entryState(e) == StateLive {
			k.live[e.PID] = &entries[i]
		}
	}
	pids := make([]int, 0, len(snap.byPID))
	for pid := range snap.byPID {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	var targets []int
	for _, pid := range pids {
		if k.judge(snap.byPID[pid]) {
			targets = append(targets, pid)
		}
	}
	for _, t := range targets {
		k.stopChildren(t)
	}
	sort.Ints(k.order)
	out := make([]Decision, 0, len(k.order))
	for _, pid := range k.order {
		out = append(out, *k.decided[pid])
	}
	return out
}

// killPlan is planKill's state: what it knows of the processes and what it has decided.
type killPlan struct {
	r         *Registry
	snap      snapshot
	self      int
	idleAfter time.Duration
	live      map[int]*Entry // live registry entries by pid
	ancestors map[int]bool   // of this process
	selfOrder uint64         // this process's start order (0: unknown)
	decided   map[int]*Decision
	order     []int // pids in the order they were decided
}

// decide records the first verdict on p; later ones (a target that is also a child of another
// target) leave it as it is.
func (k *killPlan) decide(p Process, action Action, reason string, child bool) {
	if _, ok := k.decided[p.PID]; ok {
		return
	}
	k.decided[p.PID] = &Decision{Process: p, Registered: k.live[p.PID], Action: action, Reason: reason, child: child}
	k.order = append(k.order, p.PID)
}

// protection returns why p must not be signalled, or "".
func (k *killPlan) protection(p Process) string {
	switch {
	case p.PID == k.self || p.PID == k.r.self:
		return "this process"
	case k.ancestors[p.PID]:
		return "an ancestor of this process"
	case k.r.isEditorOnOurFiles(p):
		return "an editor or viewer with a snapferry file open"
	case k.live[p.PID] != nil && k.live[p.PID].Type != TypeUser:
		e := k.live[p.PID]
		return fmt.Sprintf("registered as %s%s: %s processes keep running", e.Type, jobSuffix(e.JobID), e.Type)
	}
	return ""
}

// judge decides about one process of the snapshot that is ours (or an editor on our files) and
// reports whether it is to be stopped.
func (k *killPlan) judge(p Process) bool {
	r := k.r
	ours := r.isOurs(p)
	if !ours && !r.isEditorOnOurFiles(p) {
		return false
	}
	if why := k.protection(p); why != "" {
		k.decide(p, ActionKeep, why, false)
		return false
	}
	if !ours {
		return false
	}
	if k.selfOrder != 0 && p.StartOrder >= k.selfOrder {
		// Two launches at once must not stop each other, and a job that started after us has
		// not registered yet (cron) or is a newer user launch that decides about us.
		k.decide(p, ActionKeep, "started after this process: the newer launch decides, not the older", false)
		return false
	}
	e := k.live[p.PID]
	if e == nil {
		// Whose it is can only be proven by a live entry here: a process of another state
		// folder (--home), of another installation, or one that never registers belongs to
		// someone else's launches, and an older user launch of ours is always registered.
		why := "not registered in " + r.path + ": it belongs to another state folder (--home) or registers nowhere"
		if p.Exe != "" && p.Exe != r.exe {
			why = "another snapferry installation (" + p.Exe + "), not registered here"
		}
		k.decide(p, ActionKeep, why, false)
		return false
	}
	if why, busy := r.busy(*e, k.idleAfter); busy {
		k.decide(p, ActionKeep, why, false)
		return false
	} else if why != "" {
		k.decide(p, actionStop, why, false)
		return true
	}
	k.decide(p, actionStop, "registered as user"+jobSuffix(e.JobID)+": a new user launch replaces it", false)
	return true
}

// stopChildren decides to stop the descendants of target along with it, unless they are
// protected.
func (k *killPlan) stopChildren(target int) {
	for _, c := range k.snap.descendants(target) {
		p := k.snap.byPID[c]
		if why := k.protection(p); why != "" {
			k.decide(p, ActionKeep, why, false)
			continue
		}
		k.decide(p, actionStop, fmt.Sprintf("child of pid %d, which is being stopped", p.PPID), true)
	}
}

// busy judges a live user entry by its heartbeat. A process that asked to be kept while busy
// and made progress within idleAfter is busy (why says so); one that asked but made none is an
// idle leftover (busy false, why says so); for every other process why is "".
func (r *Registry) busy(e Entry, idleAfter time.Duration) (why string, busy bool) {
	hb, ok := r.readBeat(e.PID)
	if !ok || hb.Token != e.Token || !hb.KeepWhileBusy {
		return "", false
	}
	what := hb.Command
	if what == "" {
		what = "process"
	}
	what += jobSuffix(e.JobID)
	quiet := r.clock.Now().Sub(hb.At)
	if quiet < idleAfter {
		return fmt.Sprintf("%s is making progress (last %s ago); kept until it makes none for %s",
			what, max(quiet, 0).Truncate(time.Second), idleAfter), true
	}
	return fmt.Sprintf("%s made no progress for %s: an idle leftover", what, quiet.Truncate(time.Second)), false
}

func jobSuffix(job string) string {
	if job == "" {
		return ""
	}
	return " (job " + job + ")"
}

// isEditorOnOurFiles reports whether p is an editor or viewer whose arguments name a snapferry
// path: inside the state folder, beside the executable, or containing "snapferry".
func (r *Registry) isEditorOnOurFiles(p Process) bool {
	if len(p.Argv) == 0 {
		return false
	}
	if !r.editors[baseName(p.Argv[0])] && !r.editors[p.Name] {
		return false
	}
	exeDir := r.exe[:max(strings.LastIndexByte(r.exe, '/'), 0)]
	for _, a := range p.Argv[1:] {
		if strings.Contains(strings.ToLower(a), "snapferry") || strings.HasPrefix(a, r.dir+"/") ||
			(exeDir != "" && strings.HasPrefix(a, exeDir+"/")) {
			return true
		}
	}
	return false
}

// execute signals the planned stops and records the outcome in each decision.
func (r *Registry) execute(ctx context.Context, plan []Decision, grace time.Duration) {
	var pending []*Decision
	for i := range plan {
		d := &plan[i]
		if d.Action != actionStop {
			continue
		}
		if r.signalIfSame(ctx, d, syscall.SIGTERM) {
			// A stopped process (Ctrl-Z, SIGSTOP) acts on SIGTERM only once it runs again: wake
			// it so that it cleans up instead of waiting for SIGKILL. Sent right after the
			// checked SIGTERM; SIGCONT does nothing to a running process.
			_ = syscall.Kill(d.Process.PID, syscall.SIGCONT)
			pending = append(pending, d)
		}
	}
	pending = r.waitGone(ctx, pending, grace, ActionTerminated)
	if ctx.Err() != nil {
		for _, d := range pending {
			d.Action, d.Err = ActionFailed, fmt.Errorf("pid %d got SIGTERM; interrupted before SIGKILL: %w", d.Process.PID, ctx.Err())
		}
		fillErrText(plan)
		return
	}
	var killed []*Decision
	for _, d := range pending {
		if r.signalIfSame(ctx, d, syscall.SIGKILL) {
			killed = append(killed, d)
		}
	}
	for _, d := range r.waitGone(ctx, killed, killWaitAfterSIGKILL, ActionKilled) {
		d.Action, d.Err = ActionFailed, fmt.Errorf("pid %d still runs after SIGKILL", d.Process.PID)
	}
	fillErrText(plan)
}

func fillErrText(plan []Decision) {
	for i := range plan {
		if plan[i].Err != nil {
			plan[i].ErrText = plan[i].Err.Error()
		}
	}
}

// signalIfSame sends sig to d's process if it still has the start token seen when planning and,
// unless it is a child being stopped with its parent, still runs a snapferry binary (a process
// may exec another program under the same pid). It returns true when the signal was sent;
// otherwise d records why not.
func (r *Registry) signalIfSame(ctx context.Context, d *Decision, sig syscall.Signal) bool {
	now, err := r.table.Lookup(ctx, d.Process.PID)
	if err != nil && !errors.Is(err, ErrNoProcess) {
		d.Action, d.Err = ActionFailed, fmt.Errorf("check pid %d before %s: %w", d.Process.PID, sigName(sig), err)
		return false
	}
	if err != nil || now.Token != d.Process.Token || (!d.child && !r.isOurs(now)) {
		if sig == syscall.SIGTERM {
			d.Action = ActionVanished
		} else {
			d.Action = ActionTerminated // exited between the last poll and now
		}
		return false
	}
	if err := syscall.Kill(d.Process.PID, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			d.Action = ActionVanished
			return false
		}
		d.Action, d.Err = ActionFailed, fmt.Errorf("send %s to pid %d: %w", sigName(sig), d.Process.PID, err)
		return false
	}
	return true
}

// waitGone polls until every process in ds has exited or wait has passed; exited ones get
// action done. It returns those still running.
func (r *Registry) waitGone(ctx context.Context, ds []*Decision, wait time.Duration, done Action) []*Decision {
	deadline := r.clock.Now().Add(wait)
	for {
		var still []*Decision
		for _, d := range ds {
			alive, err := r.table.Alive(ctx, d.Process.PID, d.Process.Token)
			if err == nil && !alive {
				d.Action = done
				continue
			}
			still = append(still, d)
		}
		ds = still
		if len(ds) == 0 || !r.clock.Now().Before(deadline) {
			return ds
		}
		if r.clock.Sleep(ctx, pollEvery) != nil {
			return ds
		}
	}
}

func sigName(s syscall.Signal) string {
	if s == syscall.SIGKILL {
		return "SIGKILL"
	}
	return "SIGTERM"
}

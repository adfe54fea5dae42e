package pidmgr

import (
	"context"
	"fmt"
)

// BeginOptions say how a job command enters the registry.
type BeginOptions struct {
	Type  Type
	JobID string
	Argv  []string
	// KillIdle runs phase 2 before registering. Meant for user launches of job commands
	// (backup, replica, restore), not for read-only commands such as status or pid list.
	KillIdle bool
	Kill     KillOptions
	// Command names the job command in the heartbeat (backup, restore, check, ...).
	Command string
	// KeepWhileBusy asks newer user launches to keep this process while it makes progress
	// (restore, check, prune); see Pulse. Without it a newer user launch replaces a user job.
	KeepWhileBusy bool
}

// BeginReport says what Begin did.
type BeginReport struct {
	Cleanup CleanupResult
	Kill    KillReport // empty unless KillIdle was asked for
	Entry   Entry      // this process's registry entry
	// Pulse writes this process's heartbeat; Begin wrote the first one. Nil only when Begin
	// failed to register.
	Pulse *Pulse
}

// Begin runs the phases every job command starts with: Cleanup, KillIdle when asked, Register.
// Pair it with Shutdown in a defer and in the SIGINT/SIGTERM handler. A failing KillIdle does
// not stop the job from registering; its error is returned alongside a valid report.
func (r *Registry) Begin(ctx context.Context, o BeginOptions) (BeginReport, error) {
	var rep BeginReport
	var err error
	if rep.Cleanup, err = r.Cleanup(ctx); err != nil {
		return rep, fmt.Errorf("begin %s job: %w", o.Type, err)
	}
	var killErr error
	if o.KillIdle {
		k := o.Kill
		k.onlyStops = true
		rep.Kill, killErr = r.KillIdle(ctx, k)
	}
	if rep.Entry, err = r.Register(ctx, o.Type, o.JobID, o.Argv); err != nil {
		return rep, fmt.Errorf("begin %s job: %w", o.Type, err)
	}
	// The first heartbeat goes after the entry exists: cleanups of other processes remove the
	// heartbeats of pids without an entry. A heartbeat that cannot be written only leaves
	// this process without the protection it asked for, so it is reported, not fatal.
	rep.Pulse = &Pulse{r: r, hb: Heartbeat{PID: rep.Entry.PID, Token: rep.Entry.Token, Command: o.Command, KeepWhileBusy: o.KeepWhileBusy}}
	beatErr := rep.Pulse.Beat(0)
	if killErr == nil && beatErr != nil {
		return rep, fmt.Errorf("begin %s job: registered, but %w", o.Type, beatErr)
	}
	if killErr != nil {
		return rep, fmt.Errorf("begin %s job: registered, but %w", o.Type, killErr)
	}
	return rep, nil
}

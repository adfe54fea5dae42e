package notify

import (
	"fmt"
	"slices"
	"strings"
)

// Event names a moment a hook can react to.
type Event string

// Events hooks can name in --on-event.
const (
	JobStart         Event = "job.start"
	JobSuccess       Event = "job.success"
	JobPartial       Event = "job.partial"
	JobFailure       Event = "job.failure"
	JobRetry         Event = "job.retry"         // a failed attempt will be retried
	VMFailure        Event = "vm.failure"        // one VM failed, the job goes on
	SnapshotLeftover Event = "snapshot.leftover" // a snapferry snapshot from a crashed run was found
	StoreLowSpace    Event = "store.low-space"   // the store's free space fell below its limit
)

// Events lists every event a hook may name.
func Events() []Event {
	return []Event{JobStart, JobSuccess, JobPartial, JobFailure, JobRetry, VMFailure, SnapshotLeftover, StoreLowSpace}
}

// EventForResult is the job.* event that ends a job with result r.
func EventForResult(r Result) Event {
	switch r {
	case Success:
		return JobSuccess
	case Partial:
		return JobPartial
	}
	return JobFailure
}

// Hook runs Command (through /bin/sh -c) on any of Events.
type Hook struct {
	Events  []Event
	Command string
}

// ParseHook reads an --on-event value "EVENT[,EVENT]:COMMAND". Event names hold no ':', so the
// first ':' ends the list and the command may contain any further ones.
func ParseHook(spec string) (Hook, error) {
	list, cmd, ok := strings.Cut(spec, ":")
	if !ok || strings.TrimSpace(cmd) == "" {
		return Hook{}, fmt.Errorf("--on-event=%q: want EVENT[,EVENT]:COMMAND, e.g. job.failure:/opt/bin/page-me", spec)
	}
	var h Hook
	for _, name := range strings.Split(list, ",") {
		ev := Event(strings.TrimSpace(name))
		if !slices.Contains(Events(), ev) {
			var known []string
			for _, e := range Events() {
				known = append(known, string(e))
			}
			return Hook{}, fmt.Errorf("--on-event=%q: unknown event %q; known: %s", spec, ev, strings.Join(known, ", "))
		}
		if !slices.Contains(h.Events, ev) {
			h.Events = append(h.Events, ev)
		}
	}
	h.Command = strings.TrimSpace(cmd)
	return h, nil
}

// ParseHooks parses several --on-event values.
func ParseHooks(specs []string) ([]Hook, error) {
	hooks := make([]Hook, 0, len(specs))
	for _, s := range specs {
		h, err := ParseHook(s)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, h)
	}
	return hooks, nil
}

// String gives the hook back in --on-event form.
func (h Hook) String() string {
	names := make([]string, len(h.Events))
	for i, e := range h.Events {
		names[i] = string(e)
	}
	return strings.Join(names, ",") + ":" + h.Command
}

package main

import (
	"strconv"
	"sync"

	"github.com/snapferry/snapferry/appliance"
	"github.com/snapferry/snapferry/appliance/notify"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/images/store"
)

// defaultLowSpace is the store free space under which a backup reports store.low-space: about
// what a night of incremental backups of a few VMs needs.
const defaultLowSpace = 5 << 30

// jobEvents collects the events of one run for the report `cron run` fires hooks from. VM jobs
// report from several goroutines (tape streams), so it locks.
type jobEvents struct {
	mu   sync.Mutex
	list []notify.Notice
}

func (e *jobEvents) add(ev notify.Event, details map[string]string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, notify.Notice{Event: ev, Details: details})
}

func (e *jobEvents) notices() []notify.Notice {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]notify.Notice(nil), e.list...)
}

// leftover is vmjob's OnLeftover: a snapshot a killed run left on a VM.
func (e *jobEvents) leftover(vm appliance.VM, snapshot string) {
	e.add(notify.SnapshotLeftover, map[string]string{"vm": vm.Name, "vm_id": vm.ID, "snapshot": snapshot})
}

// vmFailed records a VM that could not be backed up.
func (e *jobEvents) vmFailed(vm, err string) {
	e.add(notify.VMFailure, map[string]string{"vm": vm, "error": err})
}

// checkSpace reports store.low-space when the store can tell its free space and it is below
// limit (0 or less: never).
func (e *jobEvents) checkSpace(a *app, r *repo.Repository, limit int64) {
	sr, ok := r.Backend().(store.SpaceReporter)
	if !ok || limit <= 0 {
		return
	}
	free, err := sr.FreeSpace(a.ctx)
	if err != nil || free < 0 || free >= limit {
		return
	}
	e.add(notify.StoreLowSpace, map[string]string{"repository": r.Backend().Location(),
		"free_bytes": strconv.FormatInt(free, 10), "limit_bytes": strconv.FormatInt(limit, 10)})
	a.warnf("the store %s has %s free, under the %s limit (--low-space)", r.Backend().Location(), humanBytes(free), humanBytes(limit))
}

// lowSpaceLimit reads --low-space.
func lowSpaceLimit(v string) (int64, error) {
	n, err := parseSize(v)
	if err != nil {
		return 0, usagef("--low-space=%q: want a size like 5G, or 0 to never warn", v)
	}
	return n, nil
}

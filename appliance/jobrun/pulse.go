package jobrun

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/snapferry/snapferry/pidmgr"
)

// beatEvery is the longest wait between two heartbeats of a busy job; shorter when IdleAfter is
// short, so that a busy job is never judged on a heartbeat older than a quarter of it.
const beatEvery = 5 * time.Second

// cpuBusyShare is the share of the wait between heartbeats that the process must have spent on
// the CPU to count as busy without counted work: prune's planning walks every snapshot without
// reporting bytes. An idle Go process (this ticker, the runtime) uses far less.
const cpuBusyShare = 50 // 1/50 = 2%

// pulse writes the job's heartbeat while it makes progress: when its work count grew (bytes and
// files the progress renderer saw) or it used the CPU. A job that is blocked or stopped writes
// none, so the heartbeat's age is how long it has been idle.
type pulse struct {
	p     *pidmgr.Pulse
	work  *atomic.Int64
	every time.Duration
	warn  func(string)
	stop  chan struct{}
	done  chan struct{}
}

func startPulse(p *pidmgr.Pulse, work *atomic.Int64, idle time.Duration, warn func(string)) *pulse {
	ps := &pulse{p: p, work: work, every: min(beatEvery, max(idle/4, 10*time.Millisecond)), warn: warn,
		stop: make(chan struct{}), done: make(chan struct{})}
	go ps.loop()
	return ps
}

func (ps *pulse) loop() {
	defer close(ps.done)
	t := time.NewTicker(ps.every)
	defer t.Stop()
	lastWork, lastCPU := ps.work.Load(), cpuTime()
	failed := false
	for {
		select {
		case <-ps.stop:
			return
		case <-t.C:
		}
		w, c := ps.work.Load(), cpuTime()
		if w == lastWork && (c < 0 || c-lastCPU < ps.every/cpuBusyShare) {
			continue
		}
		lastWork, lastCPU = w, c
		if err := ps.p.Beat(w); err != nil && !failed {
			failed = true // once: a full disk would otherwise repeat it every few seconds
			ps.warn(fmt.Sprintf("heartbeat: %v (a new user launch may take this job for an idle leftover)", err))
		}
	}
}

func (ps *pulse) close() {
	close(ps.stop)
	<-ps.done
}

// cpuTime is the CPU time this process used so far, or -1 where getrusage fails.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Work counts work done (bytes read or written, files handled) for the heartbeat: a job whose
// count grows is making progress. Safe for concurrent use; cheap enough for every block.
func (j *Job) Work(n int64) {
	if n > 0 {
		j.work.Add(n)
	}
}

package jobrun

import (
	"fmt"
	"os"
	"strconv"
	"strings"
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

// ioBusyBytes is how many bytes the process must have read (Linux: rchar of /proc/self/io)
// between two heartbeats to count as busy without counted work: a check that reads one 16 MiB
// pack over a slow link counts its bytes only when the pack is complete. SSH keepalives of a
// hung session stay far below it.
const ioBusyBytes = 16 << 10

// pulse writes the job's heartbeat while it makes progress: when its work count grew (bytes and
// files the progress renderer saw), it read from files, pipes or sockets (Linux), or it used the
// CPU. A job that is blocked or stopped writes none, so the heartbeat's age is how long it has
// been idle.
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
	var io ioCounter
	io.busy()
	failed := false
	for {
		select {
		case <-ps.stop:
			return
		case <-t.C:
		}
		w, c, readMuch := ps.work.Load(), cpuTime(), io.busy()
		if w == lastWork && !readMuch && (c < 0 || c-lastCPU < ps.every/cpuBusyShare) {
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

// ioCounter follows the bytes this process reads (rchar: files, pipes and sockets alike). Each
// sample is itself a read of /proc/self/io, which the next sample's count includes, so its
// length is taken off.
type ioCounter struct {
	rchar, sampleLen int64
	ok               bool
}

// busy takes a sample and reports whether more than ioBusyBytes were read since the last one.
// Without /proc (ESXi) it is always false.
func (c *ioCounter) busy() bool {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		c.ok = false
		return false
	}
	var r int64
	ok := false
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "rchar:"); found {
			r, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			ok = err == nil
		}
	}
	busy := ok && c.ok && r-c.rchar-c.sampleLen >= ioBusyBytes
	c.rchar, c.sampleLen, c.ok = r, int64(len(b)), ok
	return busy
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

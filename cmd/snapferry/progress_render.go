package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// renderer turns progress counters into output: one updating line on a TTY, a plain line every
// few seconds otherwise (cron logs stay readable), JSON events with --json. Core code only adds
// to counters; all formatting and timing lives here.
type renderer struct {
	w        io.Writer
	tty      bool
	jsonOut  bool
	interval time.Duration

	mu    sync.Mutex
	name  string
	total atomic.Int64
	done  atomic.Int64
	files atomic.Int64
	// total bytes over every item of the run, and where they go for `status` (the job
	// history), at most every historyEvery.
	cum     atomic.Int64
	onBytes func(total int64)
	// onWork hears every byte and file counted: the job's heartbeat (jobrun.Job.Work).
	onWork    func(n int64)
	lastSaved time.Time
	// active counts items between Start and Done: items that overlap (tape --streams, several
	// disks at once) add their totals to one line instead of overwriting each other's.
	active int
	start  time.Time
	stop   chan struct{}
	wg     sync.WaitGroup
	last   int // width of the last TTY line, to blank it
}

func newRenderer(w io.Writer, jsonOut bool) *renderer {
	r := &renderer{w: w, jsonOut: jsonOut, interval: 5 * time.Second, lastSaved: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !jsonOut {
		r.tty = true
		r.interval = 250 * time.Millisecond
	}
	return r
}

// Start begins a named item (a disk, a folder) of total bytes (0 or less when unknown).
func (r *renderer) Start(name string, total int64) {
	r.mu.Lock()
	if r.active == 0 {
		r.total.Store(0)
		r.done.Store(0)
		r.files.Store(0)
		r.start = time.Now()
		r.name = name
	} else {
		r.name = fmt.Sprintf("%d items", r.active+1)
	}
	r.active++
	if r.stop == nil {
		r.stop = make(chan struct{})
		r.wg.Add(1)
		go r.loop()
	}
	r.mu.Unlock()
	if total > 0 {
		r.total.Add(total)
	}
}

// Add counts processed bytes. Safe for concurrent use.
func (r *renderer) Add(n int64) {
	r.done.Add(n)
	r.cum.Add(n)
	if r.onWork != nil {
		r.onWork(n)
	}
}

// historyEvery is how often a running job's byte count reaches the job history.
const historyEvery = 5 * time.Second

// File counts finished files or directory entries. Safe for concurrent use.
func (r *renderer) File(n int) {
	r.files.Add(int64(n))
	if r.onWork != nil {
		r.onWork(int64(n))
	}
}

// Done ends an item; the final line comes when the last overlapping item is done.
func (r *renderer) Done() {
	r.mu.Lock()
	if r.active > 0 {
		r.active--
	}
	last := r.active == 0
	r.mu.Unlock()
	if last {
		r.print(true)
	}
}

// Close stops the ticker; the renderer must not be used afterwards.
func (r *renderer) Close() {
	if r.stop != nil {
		close(r.stop)
		r.wg.Wait()
		r.stop = nil
	}
	if r.tty && r.last > 0 {
		fmt.Fprintf(r.w, "\r%*s\r", r.last, "")
		r.last = 0
	}
}

func (r *renderer) loop() {
	defer r.wg.Done()
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.print(false)
		}
	}
}

func (r *renderer) print(final bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.onBytes != nil && time.Since(r.lastSaved) >= historyEvery {
		r.lastSaved = time.Now()
		r.onBytes(r.cum.Load())
	}
	done, total := r.done.Load(), r.total.Load()
	el := time.Since(r.start)
	rate := float64(done) / el.Seconds()
	if el <= 0 {
		rate = 0
	}
	if r.jsonOut {
		ev := map[string]any{"event": "progress", "item": r.name, "bytes_done": done, "bytes_total": total, "files": r.files.Load(),
			"bytes_per_second": int64(rate), "elapsed_seconds": el.Seconds(), "final": final}
		b, _ := json.Marshal(ev)
		fmt.Fprintf(r.w, "%s\n", b)
		return
	}
	line := fmt.Sprintf("%s: %s", r.name, humanBytes(done))
	if total > 0 {
		pct := float64(done) * 100 / float64(total)
		line += fmt.Sprintf(" / %s (%.0f%%)", humanBytes(total), pct)
	}
	if n := r.files.Load(); n > 0 {
		line += fmt.Sprintf(", %d files", n)
	}
	line += fmt.Sprintf(", %s/s", humanBytes(int64(rate)))
	if total > done && rate > 0 && !final {
		eta := time.Duration(float64(total-done)/rate) * time.Second
		line += ", ETA " + eta.Truncate(time.Second).String()
	}
	if final {
		line += ", done in " + el.Truncate(10*time.Millisecond).String()
	}
	if r.tty {
		pad := r.last - len(line)
		if pad < 0 {
			pad = 0
		}
		fmt.Fprintf(r.w, "\r%s%*s", line, pad, "")
		r.last = len(line)
		if final {
			fmt.Fprintln(r.w)
			r.last = 0
		}
		return
	}
	fmt.Fprintln(r.w, line)
}

// humanBytes formats a byte count with binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

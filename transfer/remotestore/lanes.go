package remotestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/snapferry/snapferry/images/store"
)

// Read lanes. An SSH channel carries at most its receive window per round trip, and
// golang.org/x/crypto/ssh fixes that window at 2 MiB (OpenSSH's ssh uses the same): at a 50 ms
// round trip one session moves ~33 MB/s however many wire streams it multiplexes, measured
// through scripts/bench/latency-proxy.py (docs/benchmarks.md). A second session on the same
// SSH connection has a window of its own, so large reads spread over a few sessions, each
// running its own far `serve` with the very command line of the first (a forced-command or
// append-only key runs the same thing for every session), fill a long link. Lanes only Load;
// everything else, the lock included, stays on the primary session.
const (
	// DefaultLanes is how many lanes a store opens at most besides its primary session: with
	// a restore's four loads in flight, one each. Each costs a far serve process (~20-30 MiB
	// on the store host) for as long as the store is open.
	DefaultLanes = 3
	// DefaultLanesAfter is how many bytes of large loads a store serves before its first lane
	// opens: a command reading a few files never starts another far process.
	DefaultLanesAfter = 32 << 20
	// DefaultLaneMinRoundTrip is the shortest round trip (the primary session's quickest
	// answer, wire.Stats.MinRoundTrip) with which lanes open. Below it one session's 2 MiB
	// window per round trip (~150 MB/s at 10 ms, measured ~1.5 MiB per round trip) is about
	// what a restore can decompress and write on a small host, and lanes would only cost far
	// processes and CPU: on loopback they cost ~0.6 CPU s of far serves and ~38 MiB of far
	// memory in a 900 MB restore. (A loaded loopback answered in 3.5-5 ms at best.)
	DefaultLaneMinRoundTrip = 10 * time.Millisecond
	// LaneLoadMin is the shortest Load a lane may take: shorter ones are round trips, not
	// window, and stay on the primary.
	LaneLoadMin = 1 << 20
	// laneOpenWait bounds opening one lane (SSH session, far command, handshake).
	laneOpenWait = 30 * time.Second
)

// LaneOpener starts lane n (1, 2, ...): another far serve on the same link. It returns the
// lane's client and a function that ends its session once the client is closed.
type LaneOpener func(ctx context.Context, n int) (*Client, func() error, error)

// LaneOptions configure NewLaned.
type LaneOptions struct {
	Open  LaneOpener
	Max   int   // lanes besides the primary at most; 0: DefaultLanes; negative: none
	After int64 // large-load bytes before the first lane opens; 0: DefaultLanesAfter
	// MinRoundTrip: lanes open only on a link with a round trip at least this long; 0:
	// DefaultLaneMinRoundTrip; negative: whatever the round trip.
	MinRoundTrip time.Duration
	// Trace, if set, gets a line when a lane opens, fails to open, and at Close.
	Trace func(format string, args ...any)
}

// Laned is a Client (the primary session) whose large Loads are spread over up to Max extra
// sessions opened as the read volume calls for them. Like a Client it is safe for concurrent
// use. A lane that breaks fails the loads on it with an error naming the lane; the store's
// callers treat that as any failed load (a restore fails and publishes nothing).
type Laned struct {
	*Client
	opts   LaneOptions
	ctx    context.Context // lanes opening; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // lanes opening

	mu      sync.Mutex
	lanes   []*lane // [0] is the primary
	asked   int64   // bytes of large loads so far
	opening bool
	next    int   // the number of the next lane to open
	openErr error // a lane failed to open: no more are tried
	closed  bool
}

var (
	_ store.Backend         = (*Laned)(nil)
	_ store.LoadParallelism = (*Laned)(nil)
	_ store.SpaceReporter   = (*Laned)(nil)
	_ store.StreamSaver     = (*Laned)(nil)
	_ store.TempCleaner     = (*Laned)(nil)
)

// lane is one session's share of the large loads.
type lane struct {
	n     int // 0: the primary
	c     *Client
	end   func() error
	busy  int   // large loads open on it
	loads int64 // large loads it took
}

// NewLaned puts read lanes on c. Close closes the lanes and c.
func NewLaned(c *Client, opts LaneOptions) *Laned {
	if opts.Max == 0 {
		opts.Max = DefaultLanes
	}
	if opts.After <= 0 {
		opts.After = DefaultLanesAfter
	}
	if opts.MinRoundTrip == 0 {
		opts.MinRoundTrip = DefaultLaneMinRoundTrip
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Laned{Client: c, opts: opts, ctx: ctx, cancel: cancel, lanes: []*lane{{c: c}}, next: 1}
}

// Load sends a large range (or a whole file) to the least busy session, opening another lane
// first when more large loads are in flight than sessions are open.
func (l *Laned) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if length > 0 && length < LaneLoadMin {
		return l.Client.Load(ctx, h, offset, length)
	}
	ln := l.pick(length)
	rc, err := ln.c.Load(ctx, h, offset, length)
	if err != nil {
		l.release(ln)
		return nil, err
	}
	return &laneBody{ReadCloser: rc, release: func() { l.release(ln) }}, nil
}

// pick counts a large load, takes the session with the fewest large loads open (the primary on
// a tie: lanes are only there to add window) and starts opening lanes when they are due.
func (l *Laned) pick(length int64) *lane {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.asked += max(length, LaneLoadMin)
	best := l.lanes[0]
	for _, ln := range l.lanes[1:] {
		// A lane whose session ended still takes loads, which fail at once naming it: a lost
		// lane fails the command clearly rather than moving its share to the others unseen
		// (TestReadLaneKilledFailsTheRestore).
		if ln.busy < best.busy {
			best = ln
		}
	}
	best.busy++
	best.loads++
	if !l.opening && l.wanted() > 0 {
		l.opening = true
		l.wg.Add(1)
		go l.open()
	}
	return best
}

// wanted is how many more lanes should open now: none before enough was read or on a link whose
// round trip is short enough for one session's window, else one per large load in flight beyond
// the sessions open, up to Max. l.mu is held.
func (l *Laned) wanted() int {
	if l.closed || l.openErr != nil || len(l.lanes)-1 >= l.opts.Max || l.asked < l.opts.After {
		return 0
	}
	// A session that has had no answer yet says nothing about the link: lanes may open.
	if long, measured := l.longLink(); measured && !long {
		return 0
	}
	inFlight := 0
	for _, ln := range l.lanes {
		inFlight += ln.busy
	}
	return max(0, min(inFlight-len(l.lanes), l.opts.Max-(len(l.lanes)-1)))
}

// longLink reports whether the link is long enough for lanes (the primary session's quickest
// answer at least MinRoundTrip; a negative MinRoundTrip takes any link), and whether that was
// measured: before the first answer it was not.
func (l *Laned) longLink() (long, measured bool) {
	if l.opts.MinRoundTrip < 0 {
		return true, true
	}
	rtt := l.Client.Session().Stats().MinRoundTrip
	if rtt <= 0 {
		return false, false
	}
	return rtt >= l.opts.MinRoundTrip, true
}

func (l *Laned) release(ln *lane) {
	l.mu.Lock()
	ln.busy--
	l.mu.Unlock()
}

// open starts the lanes that are due side by side (each costs about three round trips and a
// far process start), and again while more are due: a restore's loads stay open long, so it does
// not wait for the next load to ask. Loads meanwhile go to the sessions already open; a lane
// that cannot open (a host allowing fewer sessions per connection) only means fewer lanes.
func (l *Laned) open() {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		k := l.wanted()
		first := l.next
		l.next += k
		l.opening = k > 0
		l.mu.Unlock()
		if k == 0 {
			return
		}
		var wg sync.WaitGroup
		for n := first; n < first+k; n++ {
			wg.Go(func() { l.openLane(n) })
		}
		wg.Wait()
	}
}

// openLane starts lane n and adds it to the sessions loads go to.
func (l *Laned) openLane(n int) {
	ctx, cancel := context.WithTimeout(l.ctx, laneOpenWait)
	defer cancel()
	start := time.Now()
	c, end, err := l.opts.Open(ctx, n)
	l.mu.Lock()
	if err != nil {
		if l.openErr == nil {
			l.openErr = err
		}
		open := len(l.lanes)
		l.mu.Unlock()
		l.trace("read lane %d not opened, reads stay on %d session(s): %v", n, open, err)
		return
	}
	if l.closed {
		l.mu.Unlock()
		closeLane(c, end)
		return
	}
	l.lanes = append(l.lanes, &lane{n: n, c: c, end: end})
	l.mu.Unlock()
	l.trace("read lane %d opened in %v", n, time.Since(start).Round(time.Millisecond))
}

func (l *Laned) trace(format string, args ...any) {
	if l.opts.Trace != nil {
		l.opts.Trace(format, args...)
	}
}

// LoadParallelism implements store.LoadParallelism: on a link long enough for lanes (by the
// round trip measured so far), two large loads per session the store may open, so that each
// session has its next load on the way while a reader works through the last one; else 0.
func (l *Laned) LoadParallelism() int {
	if l.opts.Max < 0 {
		return 0
	}
	if long, _ := l.longLink(); !long {
		return 0 // a short link, or one not measured yet: no advice
	}
	return 2 * (1 + l.opts.Max)
}

// LaneStat is one session's share of a Laned store's large loads.
type LaneStat struct {
	Lane  int // 0: the primary session
	Loads int64
}

// LaneStats reports the sessions open and the large loads each took.
func (l *Laned) LaneStats() []LaneStat {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LaneStat, len(l.lanes))
	for i, ln := range l.lanes {
		out[i] = LaneStat{Lane: ln.n, Loads: ln.loads}
	}
	return out
}

// FormatLaneStats writes stats as "primary 12 loads, lane 1 10, lane 2 9".
func FormatLaneStats(stats []LaneStat) string {
	var b strings.Builder
	for i, st := range stats {
		switch {
		case i == 0:
			fmt.Fprintf(&b, "primary %d loads", st.Loads)
		default:
			fmt.Fprintf(&b, ", lane %d %d", st.Lane, st.Loads)
		}
	}
	return b.String()
}

// Close ends the lanes (each far serve exits on its closed input), then the primary session.
func (l *Laned) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait() // a lane opening now sees closed and ends itself
	if stats := l.LaneStats(); len(stats) > 1 {
		l.trace("read lanes: %s", FormatLaneStats(stats))
	}
	errs := make([]error, len(l.lanes))
	var wg sync.WaitGroup
	for i, ln := range l.lanes[1:] {
		wg.Go(func() { errs[i] = closeLane(ln.c, ln.end) })
	}
	wg.Wait()
	errs[len(errs)-1] = l.Client.Close()
	return errors.Join(errs...)
}

func closeLane(c *Client, end func() error) error {
	err := c.Close()
	if eerr := end(); err == nil && eerr != nil {
		err = fmt.Errorf("end session of %s: %w", c.Location(), eerr)
	}
	return err
}

// laneBody gives its load's place on the lane back once closed.
type laneBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *laneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

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

// lane is one session's share of the loads.
type lane struct {
	n     int // 0: the primary
	c     *Client
	end   func() error
	large int   // large loads open on it
	owed  int64 // bytes of its open loads not read yet (see owedFor)
	loads int64 // large loads it took
	small int64 // small loads it took
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

// Load sends a load to the session with the fewest bytes still owed on its open loads (the
// primary on a tie), opening another lane first when more large loads are in flight than
// sessions are open. Only large loads count towards opening lanes; once lanes are open, small
// loads spread too: a restore's patches and their bases (a few hundred KiB each) all on the
// primary waited ~120 ms for their first byte behind its full window through 25 ms each way,
// while the lanes idled (docs/benchmarks.md, "Read lanes, filled").
func (l *Laned) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	ln, owed, large := l.pick(length)
	rc, err := ln.c.Load(ctx, h, offset, length)
	if err != nil {
		l.release(ln, owed, large)
		return nil, err
	}
	return &laneBody{ReadCloser: rc, l: l, ln: ln, owed: owed, large: large}, nil
}

// owedFor is what a load of length bytes counts towards its session's owed bytes: a load to the
// end of a file (length <= 0, large as a rule: a pack) counts as much as may be on its way.
func owedFor(length int64) int64 {
	if length <= 0 {
		return LoadWindow
	}
	return length
}

// pick returns the session a load of length bytes goes to and what it counts there: the one
// with the fewest bytes owed (the primary on a tie: lanes are only there to add window). A
// large load counts towards opening lanes and starts opening them when they are due.
func (l *Laned) pick(length int64) (ln *lane, owed int64, large bool) {
	owed = owedFor(length)
	large = length <= 0 || length >= LaneLoadMin
	l.mu.Lock()
	defer l.mu.Unlock()
	best := l.lanes[0]
	for _, ln := range l.lanes[1:] {
		// A lane whose session ended still takes loads, which fail at once naming it: a lost
		// lane fails the command clearly rather than moving its share to the others unseen
		// (TestReadLaneKilledFailsTheRestore).
		if ln.owed < best.owed {
			best = ln
		}
	}
	best.owed += owed
	if !large {
		best.small++
	} else {
		best.large++
		best.loads++
		l.asked += max(length, LaneLoadMin)
		if !l.opening && l.wanted() > 0 {
			l.opening = true
			l.wg.Add(1)
			go l.open()
		}
	}
	return best, owed, large
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
		inFlight += ln.large
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

// release gives back a load's place on ln: its count and the bytes it still owed.
func (l *Laned) release(ln *lane, owed int64, large bool) {
	l.mu.Lock()
	if large {
		ln.large--
	}
	ln.owed -= owed
	l.mu.Unlock()
}

// received counts n bytes of a load read from ln: they are no longer owed.
func (l *Laned) received(ln *lane, n int64) {
	l.mu.Lock()
	ln.owed -= n
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

// LaneStat is one session's share of a Laned store's loads.
type LaneStat struct {
	Lane  int   // 0: the primary session
	Loads int64 // large loads (LaneLoadMin or more, or to the end of a file)
	Small int64 // smaller loads
}

// LaneStats reports the sessions open and the loads each took.
func (l *Laned) LaneStats() []LaneStat {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LaneStat, len(l.lanes))
	for i, ln := range l.lanes {
		out[i] = LaneStat{Lane: ln.n, Loads: ln.loads, Small: ln.small}
	}
	return out
}

// FormatLaneStats writes stats as "primary 12+30 loads, lane 1 10+28, lane 2 9+31": large and
// small loads per session.
func FormatLaneStats(stats []LaneStat) string {
	var b strings.Builder
	for i, st := range stats {
		switch {
		case i == 0:
			fmt.Fprintf(&b, "primary %d+%d loads", st.Loads, st.Small)
		default:
			fmt.Fprintf(&b, ", lane %d %d+%d", st.Lane, st.Loads, st.Small)
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

// laneBody counts its load's bytes off its session's owed bytes as they are read, and gives
// the rest and its place back once closed.
type laneBody struct {
	io.ReadCloser
	l     *Laned
	ln    *lane
	owed  int64 // what is still counted on ln for this load
	large bool
	once  sync.Once
}

func (b *laneBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if k := min(int64(n), b.owed); k > 0 {
		b.owed -= k
		b.l.received(b.ln, k)
	}
	return n, err
}

func (b *laneBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.l.release(b.ln, b.owed, b.large) })
	return err
}

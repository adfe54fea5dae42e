package wire

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Stats count a client session's requests. Tests use them to keep the number of round trips a
// command waits for from creeping back up; the trace (SetTrace) prints them per request.
type Stats struct {
	// Requests is how many requests were opened.
	Requests int64
	// Serial counts the requests opened while no other request of the session was unfinished
	// (answered, and its download ended). Each of them made the caller wait at least one round
	// trip of its own, so on a link with a round-trip time of R a command needs at least
	// Serial x R however fast the link is; requests sent together count once. The client's
	// Hello counts too: a round trip of its own, or shared with the requests sent behind it
	// (DialEarly).
	Serial int64
	// MinRoundTrip is the shortest time from a request going out to its answer arriving (0:
	// none answered yet): about the link's round trip, taken from small requests sent before
	// bulk downloads queue up in front of the answers. remotestore's read lanes open only on a
	// link whose round trip makes one SSH channel's window the limit.
	MinRoundTrip time.Duration
}

// sessionStats is the live counter set behind Stats.
type sessionStats struct {
	requests   atomic.Int64
	serial     atomic.Int64
	unfinished atomic.Int64 // opened and not yet finished (or forgotten)
	minRTT     atomic.Int64 // nanoseconds; 0: no answer yet

	traceMu sync.Mutex
	tracing atomic.Bool // trace != nil: checked before any line is formatted
	trace   io.Writer
	start   time.Time
}

// Stats returns the session's counters so far (client sessions; a server's stay zero).
func (s *Session) Stats() Stats {
	return Stats{Requests: s.stats.requests.Load(), Serial: s.stats.serial.Load(),
		MinRoundTrip: time.Duration(s.stats.minRTT.Load())}
}

// noteAnswer keeps the shortest request-to-answer time of a client session.
func (s *Session) noteAnswer(took time.Duration) {
	ns := max(int64(took), 1)
	for {
		old := s.stats.minRTT.Load()
		if old != 0 && old <= ns || s.stats.minRTT.CompareAndSwap(old, ns) {
			return
		}
	}
}

// SetTrace makes a client session write one line per request event to w: when each request went
// out (marked * when it had to wait alone), when its answer came and when its download ended, in
// milliseconds since since. For finding where a command waits on the link; nil stops it.
func (s *Session) SetTrace(w io.Writer, since time.Time) {
	s.stats.traceMu.Lock()
	s.stats.trace, s.stats.start = w, since
	s.stats.tracing.Store(w != nil)
	s.stats.traceMu.Unlock()
}

// noteOpen counts a request about to go out and traces it.
func (s *Session) noteOpen(st *Stream, op Op, args []byte) {
	s.stats.requests.Add(1)
	alone := s.stats.unfinished.Add(1) == 1
	if alone {
		s.stats.serial.Add(1)
	}
	st.opened = time.Now()
	if !s.stats.tracing.Load() {
		return // no formatting, no lock on the path of every request
	}
	mark := " "
	if alone {
		mark = "*" // a round trip of its own
	}
	s.tracef("%s open  #%-5d %-13s %s", mark, st.id, op, describeArgs(op, args))
}

// noteFinishedLocked counts a client stream as finished once (answer and download complete, or
// given up). st.mu must be held.
func (st *Stream) noteFinishedLocked(why string) {
	if st.s.server || st.finishNoted {
		return
	}
	st.finishNoted = true
	st.s.stats.unfinished.Add(-1)
	st.s.tracef("  %-5s #%-5d after %.3f ms, %d bytes in", why, st.id, float64(time.Since(st.opened).Microseconds())/1000, st.received)
}

func (s *Session) tracef(format string, args ...any) {
	if !s.stats.tracing.Load() {
		return
	}
	s.stats.traceMu.Lock()
	defer s.stats.traceMu.Unlock()
	if s.stats.trace == nil {
		return
	}
	ms := float64(time.Since(s.stats.start).Microseconds()) / 1000
	fmt.Fprintf(s.stats.trace, "%10.3f ms %s\n", ms, fmt.Sprintf(format, args...))
}

// describeArgs names what a store request is about, for the trace.
func describeArgs(op Op, args []byte) string {
	switch op {
	case OpSave, OpStat, OpRemove:
		if h, err := DecodeHandle(args); err == nil {
			return h.String()
		}
	case OpLoad:
		if a, err := DecodeLoadArgs(args); err == nil {
			return fmt.Sprintf("%s @%d+%d", a.Handle, a.Offset, a.Length)
		}
	case OpList, OpSaveStream:
		if k, err := DecodeKind(args); err == nil {
			return string(k)
		}
	case OpCommitStream:
		if a, err := DecodeCommitStreamArgs(args); err == nil {
			return a.Handle.String()
		}
	}
	return fmt.Sprintf("%d bytes of arguments", len(args))
}

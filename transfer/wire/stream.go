package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// errPeerCanceled is what a server handler's reads and writes return after the client
// canceled the request.
var errPeerCanceled = errors.New("request canceled by the client")

// Stream is one request and its answer. On a client it carries the upload (Write, CloseWrite,
// CloseWithError), the response (Response) and the download (Read). On a server the roles turn
// around: Read is the upload, Respond sends the answer, Write and CloseWrite the download.
//
// One goroutine may read while another writes; concurrent Reads (or Writes) are not allowed.
type Stream struct {
	s      *Session
	id     uint32
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change

	// Inbound body.
	inExpected bool     // server: the request has an upload; client: the response is streamed
	inBuf      [][]byte // whole payloads as read, so each goes back to the chunk pool
	inOff      int      // bytes of inBuf[0] already read
	inEnded    bool
	inErr      error // set with inEnded when the peer ended the body with an error
	inAllowed  int   // bytes the peer may still send before our next window grant
	consumed   int   // bytes read since the last grant

	// Outbound body.
	upload    bool // client: Open was asked for an upload
	outCredit int
	outEnded  bool

	resp       *Response // client: the answer, once it came
	responded  bool      // server: Respond was called
	streamed   bool      // server: the answer announced a body
	canceled   bool      // server: the client canceled
	closed     bool      // client: Close was called
	released   bool      // client: the stream slot was given back
	cancelSent bool

	// For Stats and the trace (client): when the request went out, body bytes received, and
	// whether the stream was counted as finished.
	opened      time.Time
	received    int64
	finishNoted bool
}

func newStream(s *Session, id uint32, parent context.Context) *Stream {
	ctx, cancel := context.WithCancel(parent)
	return &Stream{s: s, id: id, ctx: ctx, cancel: cancel, changed: make(chan struct{}),
		inAllowed: s.window, outCredit: s.window}
}

// wakeLocked tells every waiter the state changed. st.mu must be held.
func (st *Stream) wakeLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// wait unlocks st.mu, waits for a change, the end of the stream's context or of the session,
// and locks st.mu again.
func (st *Stream) wait() error {
	ch := st.changed
	st.mu.Unlock()
	var err error
	select {
	case <-ch:
	case <-st.ctx.Done():
		err = st.ctxErr()
	case <-st.s.done:
		err = st.s.err
	}
	st.mu.Lock()
	return err
}

func (st *Stream) ctxErr() error {
	st.mu.Lock()
	canceled := st.canceled
	st.mu.Unlock()
	if canceled {
		return errPeerCanceled
	}
	if err := st.s.Err(); err != nil {
		return err
	}
	return st.ctx.Err()
}

// --- inbound (called by the session's reader) ---

func (st *Stream) deliverData(p []byte) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed || st.canceled {
		putChunk(p)
		return nil // nobody will read it; the stream is winding down
	}
	if !st.inExpected || st.inEnded {
		return fmt.Errorf("%w: data on stream %d which has no open body", ErrMalformed, st.id)
	}
	if len(p) > st.inAllowed {
		return fmt.Errorf("%w: stream %d sent %d bytes with a window of %d", ErrMalformed, st.id, len(p), st.inAllowed)
	}
	st.inAllowed -= len(p)
	st.received += int64(len(p))
	if len(p) > 0 {
		st.inBuf = append(st.inBuf, p)
	} else {
		putChunk(p)
	}
	st.wakeLocked()
	return nil
}

func (st *Stream) deliverEnd(re *RemoteError) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.inEnded {
		return fmt.Errorf("%w: second end on stream %d", ErrMalformed, st.id)
	}
	if !st.inExpected && !st.closed {
		return fmt.Errorf("%w: end on stream %d which has no open body", ErrMalformed, st.id)
	}
	st.inEnded = true
	if re != nil {
		st.inErr = re
	}
	if st.finishedLocked() {
		st.noteFinishedLocked("end")
	}
	st.wakeLocked()
	st.maybeReleaseLocked()
	return nil
}

func (st *Stream) deliverResponse(r Response) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.resp != nil {
		return fmt.Errorf("%w: second response on stream %d", ErrMalformed, st.id)
	}
	st.resp = &r
	st.inExpected = r.Err == nil && r.Streamed
	if !st.s.server && !st.opened.IsZero() {
		st.s.noteAnswer(time.Since(st.opened))
	}
	if st.finishedLocked() {
		st.noteFinishedLocked("done")
	} else {
		st.s.tracef("  resp  #%-5d after %.3f ms", st.id, float64(time.Since(st.opened).Microseconds())/1000)
	}
	st.wakeLocked()
	st.maybeReleaseLocked()
	return nil
}

func (st *Stream) addCredit(n int) {
	st.mu.Lock()
	st.outCredit += n
	st.wakeLocked()
	st.mu.Unlock()
}

func (st *Stream) peerCancel() {
	st.mu.Lock()
	st.canceled = true
	st.wakeLocked()
	st.mu.Unlock()
	st.cancel()
}

// --- reading ---

// Read reads the inbound body: the download on a client (after waiting for the response; a
// failed response is returned as the error), the upload on a server. It returns io.EOF at a
// clean end and the peer's error when the peer ended the body with one.
func (st *Stream) Read(p []byte) (int, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for {
		if !st.s.server {
			if st.resp == nil {
				if err := st.wait(); err != nil {
					return 0, err
				}
				continue
			}
			if st.resp.Err != nil {
				return 0, st.resp.Err
			}
		}
		if len(st.inBuf) > 0 {
			n := copy(p, st.inBuf[0][st.inOff:])
			st.inOff += n
			if st.inOff == len(st.inBuf[0]) {
				putChunk(st.inBuf[0])
				st.inBuf[0] = nil
				st.inBuf = st.inBuf[1:]
				st.inOff = 0
			}
			st.grantLocked(n)
			return n, nil
		}
		if !st.inExpected || st.inEnded {
			if st.inErr != nil {
				return 0, st.inErr
			}
			return 0, io.EOF
		}
		if st.canceled {
			return 0, errPeerCanceled
		}
		if err := st.wait(); err != nil {
			return 0, err
		}
	}
}

// grantLocked widens the peer's window once a quarter of it was consumed: often enough that a
// sender never stalls on a healthy link, rarely enough that grants cost little.
func (st *Stream) grantLocked(n int) {
	st.consumed += n
	if st.consumed < st.s.window/4 || st.inEnded {
		return
	}
	inc := st.consumed
	st.consumed = 0
	st.inAllowed += inc
	// Queue without blocking the reader of this stream on a full queue for long: the writer
	// drains it continuously, and a dead session makes send return at once.
	go st.s.send(context.Background(), Frame{Type: FrameWindow, Stream: st.id, Payload: EncodeWindow(uint32(inc))}) //nolint:errcheck // a lost grant only matters on a dead link
}

// GrantAhead lets the peer send up to n more body bytes on this client stream than the session's
// window, before any of them is read: a large download over a link with latency is then not held
// to one window per round trip. It is a plain Window frame, which every server takes (the
// protocol lets a receiver widen a window whenever it likes), so it needs no capability. It costs
// at most n more bytes buffered for the stream when the reader is slower than the link.
func (st *Stream) GrantAhead(n int) error {
	if n <= 0 || st.s.server {
		return nil
	}
	n = min(n, maxWindow)
	st.mu.Lock()
	if st.closed || st.inEnded {
		st.mu.Unlock()
		return nil
	}
	st.inAllowed += n
	st.mu.Unlock()
	return st.sendErr(st.s.send(st.ctx, Frame{Type: FrameWindow, Stream: st.id, Payload: EncodeWindow(uint32(n))}))
}

// --- writing ---

// Write sends p as body chunks, waiting for window credit. On a client it fails once the server
// answered (the server stopped reading the upload); on a server it needs a streamed Respond first.
func (st *Stream) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n, err := st.takeCredit(len(p))
		if err != nil {
			return written, err
		}
		chunk := getChunk(n)
		copy(chunk, p[:n])
		if err := st.s.send(st.ctx, Frame{Type: FrameData, Stream: st.id, Payload: chunk, pooled: true}); err != nil {
			putChunk(chunk) // not queued
			return written, st.sendErr(err)
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// takeCredit waits until the stream may send body bytes and takes up to want of its credit (at
// most a chunk): the size of the data frame Write or SendFile sends next.
func (st *Stream) takeCredit(want int) (int, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for {
		if err := st.writableLocked(); err != nil {
			return 0, err
		}
		if st.outCredit > 0 {
			n := min(want, st.outCredit, ChunkSize)
			st.outCredit -= n
			return n, nil
		}
		if err := st.wait(); err != nil {
			return 0, err
		}
	}
}

func (st *Stream) writableLocked() error {
	if st.outEnded {
		return fmt.Errorf("write stream %d: body already ended", st.id)
	}
	if st.s.server {
		if !st.responded || !st.streamed {
			return fmt.Errorf("write stream %d: no streamed response was sent", st.id)
		}
		if st.canceled {
			return errPeerCanceled
		}
		return nil
	}
	if !st.upload {
		return fmt.Errorf("write stream %d: request was opened without an upload", st.id)
	}
	if st.resp != nil {
		if st.resp.Err != nil {
			return st.resp.Err
		}
		return fmt.Errorf("write stream %d: server answered before the upload ended", st.id)
	}
	return nil
}

// sendErr explains a failed send by the stream's context when that ended; a frame that went out
// is no failure, even if the context ended meanwhile.
func (st *Stream) sendErr(err error) error {
	if err != nil && st.ctx.Err() != nil {
		return st.ctxErr()
	}
	return err
}

// CloseWrite ends the outbound body cleanly.
func (st *Stream) CloseWrite() error { return st.endOutbound(nil) }

// CloseWithError ends the outbound body with an error the peer's Read returns.
func (st *Stream) CloseWithError(err error) error { return st.endOutbound(NewRemoteError(err)) }

func (st *Stream) endOutbound(re *RemoteError) error {
	st.mu.Lock()
	if st.outEnded {
		st.mu.Unlock()
		return nil
	}
	if err := st.writableLocked(); err != nil {
		st.mu.Unlock()
		return err
	}
	st.outEnded = true
	st.mu.Unlock()
	ctx := st.ctx
	if st.s.server {
		st.leaveTable()
		// Past this point only the session's end may stop the End: the client gives its stream
		// slot back when the End arrives, and finishServer sends no substitute once outEnded is
		// set. A client that read the whole body closes the stream before the End comes, so its
		// cancel often lands just after writableLocked looked; under st.ctx, send would then
		// drop the End whenever it picked the canceled context (at random with room in the
		// queue, always with the queue full), and every drop cost the client a slot for good.
		ctx = st.s.ctx
	}
	return st.sendErr(st.s.send(ctx, Frame{Type: FrameEnd, Stream: st.id, Payload: EncodeEnd(re)}))
}

// --- client side ---

// Response waits for the server's answer. A failed request returns the RemoteError.
func (st *Stream) Response() (Response, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for st.resp == nil {
		if err := st.wait(); err != nil {
			return Response{}, err
		}
	}
	if st.resp.Err != nil {
		return *st.resp, st.resp.Err
	}
	return *st.resp, nil
}

// Close releases a client stream. A request still running on the server is canceled; the
// stream slot is given back once the server confirms the end, so the server's limit holds.
func (st *Stream) Close() error {
	if st.s.server {
		return nil
	}
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	st.inBuf, st.inOff = nil, 0
	finished := st.finishedLocked()
	if !finished {
		st.cancelSent = true
	}
	st.maybeReleaseLocked()
	st.mu.Unlock()
	if !finished {
		st.s.send(context.Background(), Frame{Type: FrameCancel, Stream: st.id}) //nolint:errcheck // a dead link needs no cancel
	}
	st.cancel()
	return nil
}

// forget drops a client stream whose request never went out. Close would wait for the server
// to end it, but the server never heard of it: the slot would stay taken for good.
func (st *Stream) forget() {
	st.mu.Lock()
	st.closed, st.released = true, true
	st.noteFinishedLocked("unsent")
	st.mu.Unlock()
	st.s.remove(st)
	<-st.s.sem
	st.cancel()
}

func (st *Stream) finishedLocked() bool {
	return st.resp != nil && (st.resp.Err != nil || !st.resp.Streamed || st.inEnded)
}

func (st *Stream) maybeReleaseLocked() {
	if st.s.server || !st.closed || st.released || !st.finishedLocked() {
		return
	}
	st.released = true
	st.s.remove(st)
	<-st.s.sem
}

// --- server side ---

// Respond sends the answer. With r.Streamed the handler then writes the body and CloseWrites it.
func (st *Stream) Respond(r Response) error {
	st.mu.Lock()
	if st.responded {
		st.mu.Unlock()
		return fmt.Errorf("respond on stream %d: already answered", st.id)
	}
	st.responded = true
	st.streamed = r.Err == nil && r.Streamed
	final := !st.streamed
	st.mu.Unlock()
	if final {
		st.leaveTable()
	}
	return st.s.send(st.s.ctx, Frame{Type: FrameResponse, Stream: st.id, Payload: EncodeResponse(r)})
}

// leaveTable takes a server stream out of the session's table before the frame that ends the
// request for the client (a final Response, or the End of a streamed one) is sent: the client
// gives the slot back when that frame arrives and may open a new stream at once, while this
// handler may still be returning. Counted until then, the stream would push the new request over
// the limit. Frames the client still sends for it are dropped, as after the handler returned.
func (st *Stream) leaveTable() { st.s.remove(st) }

// RespondError answers with err, classed for the client.
func (st *Stream) RespondError(err error) error {
	return st.Respond(Response{Err: NewRemoteError(err)})
}

// finishServer runs after the handler returned: the stream leaves the table first (so a client
// that reuses the slot at once is not counted twice), then any missing answer or end is sent.
func (st *Stream) finishServer() {
	st.s.remove(st)
	st.mu.Lock()
	responded, streamed, ended := st.responded, st.streamed, st.outEnded
	st.outEnded = true
	st.mu.Unlock()
	switch {
	case !responded:
		st.s.send(st.s.ctx, Frame{Type: FrameResponse, Stream: st.id, Payload: EncodeResponse(Response{ //nolint:errcheck
			Err: &RemoteError{Class: ClassOther, Message: "request ended without an answer"}})})
	case streamed && !ended:
		st.s.send(st.s.ctx, Frame{Type: FrameEnd, Stream: st.id, Payload: EncodeEnd( //nolint:errcheck
			&RemoteError{Class: ClassOther, Message: "request ended before its body was complete"})})
	}
	st.cancel()
}

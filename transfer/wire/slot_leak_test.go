package wire

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// gate passes writes through while open; shut, it holds them like a peer that stopped reading.
type gate struct {
	mu   sync.Mutex // held while shut
	w    io.Writer
	held atomic.Bool // a write waited at the shut gate
}

func (g *gate) Write(p []byte) (int, error) {
	if !g.mu.TryLock() {
		g.held.Store(true)
		g.mu.Lock()
	}
	g.mu.Unlock()
	return g.w.Write(p)
}

// startGatedPair is startPair with the server's writes going through g and the server's limit
// of open streams set to maxStreams.
func startGatedPair(t *testing.T, g *gate, maxStreams uint32, h Handler) (*Session, *Session) {
	t.Helper()
	l := wiretest.Pipes(t)
	g.w = l.ServerW
	type acc struct {
		s   *Session
		err error
	}
	ch := make(chan acc, 1)
	go func() {
		s, _, err := Accept(l.ServerR, g, func(Hello) HelloReply { return HelloReply{MaxStreams: maxStreams} }, h)
		ch <- acc{s, err}
	}()
	c, _, err := Dial(context.Background(), l.ClientR, l.ClientW, Hello{Program: "test-client"})
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { c.Close(); a.s.Close() })
	return c, a.s
}

// TestEndSentDespiteLateCancel: a client that read a whole body closes the stream before the
// End comes, and its cancel may reach the handler just after CloseWrite checked for one. The
// End must go out anyway: it is what gives the client its stream slot back. The server's queue
// is kept full so the End's send is still waiting when the cancel lands (with room in the
// queue, losing the End was a coin toss).
func TestEndSentDespiteLateCancel(t *testing.T) {
	g := &gate{}
	handler := make(chan *Stream, 1)
	proceed := make(chan struct{})
	closeWrite := make(chan error, 1)
	c, srv := startGatedPair(t, g, 1, func(ctx context.Context, st *Stream, req Request) {
		st.Respond(Response{Streamed: true})
		st.Write([]byte("body"))
		handler <- st
		<-proceed
		closeWrite <- st.CloseWrite()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cst, err := c.Open(ctx, OpLoad, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cst, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	sst := <-handler

	g.mu.Lock() // the link stalls: the writer blocks, then the queue fills up
	shut := true
	defer func() {
		if shut {
			g.mu.Unlock()
		}
	}()
	fill, stopFill := context.WithCancel(ctx)
	go func() { // window grants for no stream: the client drops them
		for srv.send(fill, Frame{Type: FrameWindow, Stream: 1 << 30, Payload: EncodeWindow(1)}) == nil {
		}
	}()
	testkit.Eventually(t, 10*time.Second, "the server's writer is held and its queue full", func() bool { return g.held.Load() && len(srv.out) == cap(srv.out) })
	stopFill() // the queue stays full while the gate is shut

	close(proceed)
	testkit.Eventually(t, 10*time.Second, "CloseWrite took the stream out of the table", func() bool { return srv.lookup(sst.id) == nil })
	// What the session's reader does with a cancel frame that found the stream still in the
	// table, when the handler gets past CloseWrite's check first.
	sst.peerCancel()
	cst.Close()
	g.mu.Unlock()
	shut = false

	if err := <-closeWrite; err != nil {
		t.Errorf("CloseWrite after a late cancel: %v", err)
	}
	octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
	defer ocancel()
	st, err := c.Open(octx, OpLoad, nil, false)
	if err != nil {
		t.Fatalf("the only stream slot did not come back: %v", err)
	}
	st.Close()
}

// TestManyReadToLengthLoadsGiveSlotsBack is the restore pattern that leaked slots until the
// session hung: many concurrent small downloads, each read to its known length and closed
// before its End arrives. Afterwards every slot must be free again.
func TestManyReadToLengthLoadsGiveSlotsBack(t *testing.T) {
	const maxStreams, workers, loads, size = 16, 8, 20000, 300
	c, _ := startGatedPair(t, &gate{}, maxStreams, func(ctx context.Context, st *Stream, req Request) {
		st.Respond(Response{Streamed: true})
		if _, err := st.Write(make([]byte, size)); err != nil {
			return
		}
		st.CloseWrite()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, size)
			for next.Add(1) <= loads {
				st, err := c.Open(ctx, OpLoad, nil, false)
				if err != nil {
					t.Errorf("open: %v", err)
					return
				}
				_, err = io.ReadFull(st, buf)
				st.Close()
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Ends still in flight give their slots back within moments.
	var open []*Stream
	defer func() {
		for _, st := range open {
			st.Close()
		}
	}()
	for i := range maxStreams {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.Open(octx, OpLoad, nil, false)
		ocancel()
		if err != nil {
			t.Fatalf("after %d loads only %d of %d stream slots are free: %v", loads, i, maxStreams, err)
		}
		open = append(open, st)
	}
}

// TestOpenWithEndedContextKeepsNoSlot: an Open whose context ends before the request is queued
// (send picks the ended context at random) must give its slot back, since no answer will come
// for a request the server never saw.
func TestOpenWithEndedContextKeepsNoSlot(t *testing.T) {
	c, _ := startGatedPair(t, &gate{}, 1, testHandler)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if st, err := c.Open(ended, OpStat, []byte{byte(ClassOther)}, false); err == nil {
			st.Close() // the request went out after all: its answer frees the slot
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.Open(ctx, OpStat, []byte{byte(ClassOther)}, false)
	if err != nil {
		t.Fatalf("the only stream slot did not come back: %v", err)
	}
	st.Close()
}

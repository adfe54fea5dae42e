package wire

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// TestGrantAheadLetsTheServerSendPastTheWindow: a client that grants a download more than the
// session's window before reading lets the server write all of it at once. The grant is a plain
// Window frame and the server side is the code every released server runs, so this is also the
// new-client/old-server case: no capability is needed.
func TestGrantAheadLetsTheServerSendPastTheWindow(t *testing.T) {
	const size = 1 << 20 // 8 windows of the test server (128 KiB)
	wrote := make(chan error, 1)
	handler := func(ctx context.Context, st *Stream, req Request) {
		st.Respond(Response{Streamed: true})
		_, err := st.Write(pattern(size))
		wrote <- err
		st.CloseWrite()
	}
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, handler)
	ctx := context.Background()
	st, err := c.Open(ctx, OpLoad, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.GrantAhead(size - 128<<10); err != nil {
		t.Fatal(err)
	}
	// Nothing is read until the server says it wrote everything: only the grant lets it.
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("server write: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the server could not send the granted bytes without the client reading")
	}
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pattern(size)) {
		t.Fatalf("got %d bytes, want the %d the server sent", len(got), size)
	}
	// The stream still flows by the usual grants after the extra: a second, larger load works.
	st2, err := c.Open(ctx, OpLoad, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	got, err = io.ReadAll(st2)
	if err != nil || len(got) != size {
		t.Fatalf("second load: %d bytes, %v", len(got), err)
	}
	<-wrote
}

// TestStatsCountSerialRoundTrips: requests sent one after the other each count as a round trip
// of their own; requests in flight together count once.
func TestStatsCountSerialRoundTrips(t *testing.T) {
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, testHandler)
	ctx := context.Background()
	load := func(c *Session, n int) {
		var e Encoder
		e.Uvarint(uint64(n))
		st, err := c.Open(ctx, OpLoad, e.B, false)
		if err != nil {
			t.Error(err)
			return
		}
		defer st.Close()
		if got, err := io.ReadAll(st); err != nil || len(got) != n {
			t.Errorf("load: %d bytes, %v", len(got), err)
		}
	}
	for range 3 {
		load(c, 1000)
	}
	// The Hello, answered before the first load went out, is a round trip of its own.
	if s := c.Stats(); s.Requests != 3 || s.Serial != 4 {
		t.Fatalf("after the handshake and 3 loads one after the other: %+v, want 3 requests, 4 serial", s)
	}
	// Four at once: the first goes out alone, the others while it is unfinished. The server
	// holds every answer until all four arrived, so they overlap for sure.
	var all sync.WaitGroup
	all.Add(4)
	gate := func(ctx context.Context, st *Stream, req Request) {
		all.Done()
		all.Wait()
		testHandler(ctx, st, req)
	}
	l2 := wiretest.Pipes(t)
	c2, _ := startPair(t, l2, gate)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { load(c2, 100<<10) })
	}
	wg.Wait()
	if s := c2.Stats(); s.Requests != 4 || s.Serial != 2 {
		t.Fatalf("after the handshake and 4 loads at once: %+v, want 4 requests, 2 serial", s)
	}
}

// TestStatsMinRoundTrip: a client session keeps the shortest request-to-answer time, which can
// be no shorter than the server took to answer and no longer than the caller waited.
func TestStatsMinRoundTrip(t *testing.T) {
	const serverTakes = 20 * time.Millisecond
	slow := func(ctx context.Context, st *Stream, req Request) {
		time.Sleep(serverTakes) // the answer's delay under test, not synchronisation
		testHandler(ctx, st, req)
	}
	c, _ := startPair(t, wiretest.Pipes(t), slow)
	if s := c.Stats(); s.MinRoundTrip != 0 {
		t.Fatalf("min round trip %v before any request", s.MinRoundTrip)
	}
	var e Encoder
	e.Uvarint(10)
	waited := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		st, err := c.Open(context.Background(), OpLoad, e.B, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Response(); err != nil {
			t.Fatal(err)
		}
		waited = min(waited, time.Since(start))
		st.Close()
	}
	if got := c.Stats().MinRoundTrip; got < serverTakes || got > waited {
		t.Fatalf("min round trip %v; the server took %v per answer and the caller waited at least %v", got, serverTakes, waited)
	}
}

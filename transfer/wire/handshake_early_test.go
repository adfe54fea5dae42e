package wire

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// TestRequestsSentWithTheHelloAreAnswered: requests opened on a DialEarly session before the
// server has even read the Hello go out behind it and are answered once the server (whose
// Accept is the one every released serve runs) shook hands, with the window it announced.
func TestRequestsSentWithTheHelloAreAnswered(t *testing.T) {
	l := wiretest.Pipes(t)
	var trace bytes.Buffer
	c := DialEarly(l.ClientR, l.ClientW, Hello{Program: "test-client"}, &trace, time.Now())
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	var streams []*Stream
	for i := range EarlyStreams {
		var e Encoder
		e.Uvarint(uint64(300<<10 + i)) // more than the server's window: grants must work
		st, err := c.Open(ctx, OpLoad, e.B, false)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	accepted := make(chan *Session, 1)
	go func() {
		s, _, err := Accept(l.ServerR, l.ServerW, func(Hello) HelloReply {
			return HelloReply{Program: "test-server", Caps: []string{CapStore}, Window: 64 << 10, MaxStreams: 8}
		}, testHandler)
		if err != nil {
			t.Error(err)
		}
		accepted <- s
	}()
	reply, err := c.Handshake(ctx)
	if err != nil || reply.Program != "test-server" || reply.MaxStreams != 8 {
		t.Fatalf("handshake: %+v, %v", reply, err)
	}
	if s := <-accepted; s != nil {
		t.Cleanup(func() { s.Close() })
	}
	for i, st := range streams {
		got, err := io.ReadAll(st)
		if err != nil || !bytes.Equal(got, pattern(300<<10+i)) {
			t.Fatalf("early load %d: %d bytes, %v", i, len(got), err)
		}
		st.Close()
	}
	if st := c.Stats(); st.Serial != 1 || st.Requests != int64(EarlyStreams) {
		t.Errorf("stats %+v: the Hello and the requests sent with it are one round trip", st)
	}
	if !strings.Contains(trace.String(), "* hello") {
		t.Errorf("trace without the hello:\n%s", trace.String())
	}
}

// TestEarlyRequestsFailWithARefusedHandshake: a server that refuses the Hello never runs the
// requests sent behind it; they fail with the refusal.
func TestEarlyRequestsFailWithARefusedHandshake(t *testing.T) {
	l := wiretest.Pipes(t)
	c := DialEarly(l.ClientR, l.ClientW, Hello{MinVersion: MaxVersion + 1, MaxVersion: MaxVersion + 2}, nil, time.Time{})
	t.Cleanup(func() { c.Close() })
	st, err := c.Open(context.Background(), OpLoad, []byte{1}, false)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, _, _ = Accept(l.ServerR, l.ServerW, func(Hello) HelloReply { return HelloReply{} }, func(context.Context, *Stream, Request) {
			t.Error("the server ran a request after refusing the handshake")
		})
		l.ServerW.Close()
	}()
	if _, err := c.Handshake(context.Background()); err == nil || !strings.Contains(err.Error(), "no common protocol version") {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := st.Response(); err == nil {
		t.Fatal("the early request got an answer from a server that refused the handshake")
	}
}

// TestServerWithFewerStreamsThanEarlyOnes: a server allowing fewer streams than EarlyStreams
// (none does; the limit is 1..1024) gets no more open streams than it allows once its answer is
// in: the early slots it does not allow are taken back.
func TestServerWithFewerStreamsThanEarlyOnes(t *testing.T) {
	c, _ := startGatedPair(t, &gate{}, 1, testHandler)
	ctx := context.Background()
	for range 20 {
		var e Encoder
		e.Uvarint(10)
		st, err := c.Open(ctx, OpLoad, e.B, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(st); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	if len(c.sem) != maxStreamsLimit-1 && len(c.sem) != maxStreamsLimit {
		t.Errorf("%d of %d slots taken or reserved, want all but at most 1", len(c.sem), maxStreamsLimit)
	}
}

package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/testkit"
	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// testHandler implements a few ops for the session tests: OpSave echoes the upload back as a
// streamed body, OpLoad streams n bytes of a pattern, OpStat fails with the class named in args.
func testHandler(ctx context.Context, st *Stream, req Request) {
	switch req.Op {
	case OpSave:
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, st); err != nil {
			st.RespondError(fmt.Errorf("read upload: %w", err))
			return
		}
		st.Respond(Response{Streamed: true})
		st.Write(buf.Bytes())
		st.CloseWrite()
	case OpLoad:
		d := NewDecoder(req.Args)
		n := int(d.Uvarint())
		st.Respond(Response{Streamed: true, Body: []byte("ok")})
		if _, err := st.Write(pattern(n)); err != nil {
			return
		}
		st.CloseWrite()
	case OpStat:
		st.RespondError(&RemoteError{Class: Class(req.Args[0]), Message: "test failure"})
	case OpRemove: // blocks until canceled
		<-ctx.Done()
	default:
		st.RespondError(fmt.Errorf("unknown op %s: %w", req.Op, ErrRefused))
	}
}

func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>11)
	}
	return p
}

func startPair(t *testing.T, l *wiretest.Link, h Handler) (*Session, *Session) {
	t.Helper()
	type acc struct {
		s   *Session
		err error
	}
	ch := make(chan acc, 1)
	go func() {
		s, _, err := Accept(l.ServerR, l.ServerW, func(Hello) HelloReply {
			return HelloReply{Program: "test-server", Root: "/srv", Caps: []string{CapStore}, Window: 128 << 10, MaxStreams: 4}
		}, h)
		ch <- acc{s, err}
	}()
	c, reply, err := Dial(context.Background(), l.ClientR, l.ClientW, Hello{Program: "test-client"})
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	if reply.Root != "/srv" || reply.Program != "test-server" || !reply.HasCap(CapStore) || reply.Window != 128<<10 {
		t.Fatalf("reply = %+v", reply)
	}
	t.Cleanup(func() { c.Close(); a.s.Close() })
	return c, a.s
}

func TestEchoLargeUploadAndDownload(t *testing.T) {
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, testHandler)
	ctx := context.Background()
	want := pattern(3<<20 + 17) // many windows' worth
	st, err := c.Open(ctx, OpSave, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The server reads the whole upload before answering, so the upload must get through on
	// window grants alone.
	if _, err := st.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo returned %d bytes, want %d (equal=%v)", len(got), len(want), bytes.Equal(got, want))
	}
}

// Data frames share pooled chunk buffers on both ends: streams running at once must still get
// back exactly their own bytes, read in sizes that do not line up with the chunks.
func TestConcurrentUploadsKeepTheirBytes(t *testing.T) {
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, testHandler)
	ctx := context.Background()
	testkit.Concurrently(t, 8, func(i int) error {
		want := pattern(1<<20 + 4099*i)
		for j := range want {
			want[j] ^= byte(i * 31)
		}
		st, err := c.Open(ctx, OpSave, nil, true)
		if err != nil {
			return err
		}
		defer st.Close()
		if _, err := st.Write(want); err != nil {
			return err
		}
		if err := st.CloseWrite(); err != nil {
			return err
		}
		var got []byte
		buf := make([]byte, 1000+i*333)
		for {
			n, err := st.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("stream %d: echo of %d bytes differs (got %d bytes)", i, len(want), len(got))
		}
		return nil
	})
}

func TestPipelinedRequests(t *testing.T) {
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, testHandler)
	ctx := context.Background()
	// More than MaxStreams: Open must queue, not break the server's limit.
	testkit.Concurrently(t, 64, func(n int) error {
		var e Encoder
		e.Uvarint(uint64(n * 1000))
		st, err := c.Open(ctx, OpLoad, e.B, false)
		if err != nil {
			return err
		}
		defer st.Close()
		resp, err := st.Response()
		if err != nil || string(resp.Body) != "ok" || !resp.Streamed {
			return fmt.Errorf("response %+v, %v", resp, err)
		}
		got, err := io.ReadAll(st)
		if err != nil || !bytes.Equal(got, pattern(n*1000)) {
			return fmt.Errorf("load %d: %d bytes, %v", n*1000, len(got), err)
		}
		return nil
	})
}

func TestErrorClassesMapToStoreErrors(t *testing.T) {
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, testHandler)
	for class, want := range map[Class]error{ClassNotExist: store.ErrNotExist, ClassExist: store.ErrExist, ClassNoSpace: store.ErrNoSpace, ClassRefused: ErrRefused} {
		st, err := c.Open(context.Background(), OpStat, []byte{byte(class)}, false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Response()
		st.Close()
		if !errors.Is(err, want) {
			t.Errorf("class %s: got %v, want errors.Is %v", class, err, want)
		}
	}
}

func TestAbandonedReadCancelsServerWork(t *testing.T) {
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, testHandler)
	ctx := context.Background()
	// Closing a stream mid-download must cancel the server's write and free the slot; do it
	// more times than there are slots to prove the slots come back.
	for i := 0; i < 10; i++ {
		var e Encoder
		e.Uvarint(8 << 20)
		st, err := c.Open(ctx, OpLoad, e.B, false)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(st, buf); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	// A request blocked on the server ends when the client cancels it.
	for i := 0; i < 10; i++ {
		st, err := c.Open(ctx, OpRemove, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	st, err := c.Open(ctx, OpStat, []byte{byte(ClassOther)}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Response(); err == nil {
		t.Fatal("want the test failure")
	}
}

func TestCutLinkFailsPendingCallsFast(t *testing.T) {
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, testHandler)
	ctx := context.Background()
	st, err := c.Open(ctx, OpRemove, nil, false) // never answers
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.Open(ctx, OpSave, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { _, err := st.Response(); done <- err }()
	go func() {
		for {
			if _, err := up.Write(make([]byte, 64<<10)); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	l.ServerW.Close() // the server's output dies: the client's reader sees EOF
	l.ServerR.Close()
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if !errors.Is(err, ErrLinkLost) {
				t.Errorf("pending call failed with %v, want ErrLinkLost", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("pending call still blocked 5s after the link was cut")
		}
	}
	if _, err := c.Open(ctx, OpStat, []byte{1}, false); !errors.Is(err, ErrLinkLost) {
		t.Errorf("open after cut: %v", err)
	}
}

func TestDialReportsNonServerPeer(t *testing.T) {
	l := wiretest.Pipes(t)
	go func() {
		io.Copy(io.Discard, io.LimitReader(l.ServerR, 100))
	}()
	go func() {
		l.ServerW.Write([]byte("sh: snapferry: not found\n"))
		l.ServerW.Close()
	}()
	_, _, err := Dial(context.Background(), l.ClientR, l.ClientW, Hello{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("snapferry: not found")) {
		t.Fatalf("err = %v, want it to quote the peer", err)
	}
}

func TestVersionMismatchRefused(t *testing.T) {
	l := wiretest.Pipes(t)
	ch := make(chan error, 1)
	go func() {
		_, _, err := Accept(l.ServerR, l.ServerW, func(Hello) HelloReply { return HelloReply{} }, testHandler)
		ch <- err
	}()
	_, _, err := Dial(context.Background(), l.ClientR, l.ClientW, Hello{MinVersion: MaxVersion + 1, MaxVersion: MaxVersion + 5})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("no common protocol version")) {
		t.Fatalf("dial: %v", err)
	}
	if err := <-ch; err == nil {
		t.Fatal("accept succeeded")
	}
}

// TestSlowReaderKeepsBufferWithinWindow: a fast sender and a slow reader. The receiver's buffer
// for the stream must never hold more than the window, whatever the sender would like to push.
func TestSlowReaderKeepsBufferWithinWindow(t *testing.T) {
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, testHandler)
	var e Encoder
	e.Uvarint(6 << 20)
	st, err := c.Open(context.Background(), OpLoad, e.B, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	buf := make([]byte, 32<<10)
	total, peak := 0, 0
	for {
		n, err := st.Read(buf)
		total += n
		st.mu.Lock()
		buffered := -st.inOff // the part of the first payload already read
		for _, p := range st.inBuf {
			buffered += len(p)
		}
		st.mu.Unlock()
		peak = max(peak, buffered)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if total%(1<<20) < len(buf) {
			time.Sleep(20 * time.Millisecond) // let the sender run ahead if it could
		}
	}
	if total != 6<<20 {
		t.Fatalf("read %d bytes", total)
	}
	if window := 128 << 10; peak > window || peak == 0 {
		t.Fatalf("peak buffered %d bytes, window %d", peak, window)
	}
}

// TestSlotReusedBeforeHandlerReturns: the client may reuse a stream slot as soon as the
// request's last frame arrived, while the server's handler may still be returning. The server
// must not count that stream against the limit any more (it used to kill the session with
// "more than N streams open").
func TestSlotReusedBeforeHandlerReturns(t *testing.T) {
	l := wiretest.Pipes(t)
	c, _ := startPair(t, l, func(ctx context.Context, st *Stream, req Request) {
		if req.Op == OpLoad {
			st.Respond(Response{Streamed: true})
			st.Write([]byte("body"))
			st.CloseWrite()
		} else {
			st.Respond(Response{})
		}
		time.Sleep(200 * time.Millisecond) // still running when the client reuses the slot
	})
	// A server that kills the session leaves the test's pipes open: the deadline ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for round := range 3 {
		for _, op := range []Op{OpStat, OpLoad} {
			var sts []*Stream
			for range 4 { // the server's MaxStreams
				st, err := c.Open(ctx, op, nil, false)
				if err != nil {
					t.Fatalf("round %d, %s: open: %v", round, op, err)
				}
				sts = append(sts, st)
			}
			for _, st := range sts {
				if _, err := st.Response(); err != nil {
					t.Fatalf("round %d, %s: %v", round, op, err)
				}
				if op == OpLoad {
					if _, err := io.ReadAll(st); err != nil {
						t.Fatalf("round %d, %s: read: %v", round, op, err)
					}
				}
				st.Close()
			}
		}
	}
}

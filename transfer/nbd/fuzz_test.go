package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzReplyParsers feeds every parser of server data the same bytes: none may panic, and what
// they accept must be consistent with the bytes (lengths within the input).
func FuzzReplyParsers(f *testing.F) {
	f.Add(binary.BigEndian.AppendUint32(nil, 1), uint16(5), uint64(0))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 16, 0, 0, 0, 0, 1}, chunkBlockStatus, uint64(4096))
	f.Add([]byte{0, 0, 0, 5, 0, 3, 'b', 'a', 'd'}, chunkError, uint64(0))
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}, chunkErrorOffset, uint64(0))
	f.Add(append(binary.BigEndian.AppendUint64(nil, magicOptReply), 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 12), uint16(0), uint64(0))
	f.Add([]byte{0x66, 0x8e, 0x33, 0xef, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9}, uint16(0), uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, typ uint16, off uint64) {
		if h, err := parseOptReply(b); err == nil && h.length > maxOptReplyLen {
			t.Fatal("accepted an oversized option reply")
		}
		var info exportInfo
		_ = parseInfo(b, &info)
		_, _, _ = parseMetaContext(b)
		if h, err := parseReplyHeader(b); err == nil && h.length > maxChunkLen {
			t.Fatal("accepted an oversized chunk")
		}
		if o, d, err := parseOffsetData(b); err == nil && (len(d) == 0 || o != binary.BigEndian.Uint64(b)) {
			t.Fatal("offset data inconsistent")
		}
		_, _, _ = parseOffsetHole(b)
		if _, ext, err := parseBlockStatus(b, off); err == nil {
			if len(ext) != (len(b)-4)/8 {
				t.Fatal("extent count")
			}
			for _, e := range ext {
				if e.Length == 0 {
					t.Fatal("zero-length extent accepted")
				}
			}
		}
		if err := parseErrorChunk(typ, b); err != nil {
			_ = err.Error()
		}
	})
}

// FuzzClient runs the client's handshake, a read and a block status against a server that
// answers with the fuzzer's bytes after a valid greeting: the client must return (an error or
// a result) without panicking or hanging. The replies may come before the requests are sent
// (an unknown handle then): FuzzPipelinedReplies fuzzes replies to requests in flight.
func FuzzClient(f *testing.F) {
	f.Add(validSession())
	f.Add(validSession()[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, server []byte) {
		cl, sv := net.Pipe()
		defer cl.Close()
		go func() {
			defer sv.Close()
			_ = sv.SetDeadline(time.Now().Add(2 * time.Second))
			go func() { _, _ = io.Copy(io.Discard, sv) }()
			_, _ = sv.Write(server)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := NewClient(ctx, cl, Options{Export: "disk", MetaContexts: []string{ContextAllocation}})
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		_, _ = c.ReadAtContext(ctx, buf, 0)
		_, _ = c.BlockStatus(ctx, ContextAllocation, 0, 8192)
	})
}

// FuzzPipelinedReplies sends three reads and a block status at once (handles 1-3 and 4) and
// answers them with the fuzzer's bytes once all four are sent: every request must end (an
// error or a result) without a panic or a hang, and nothing may be written outside the
// buffers the reads were given.
func FuzzPipelinedReplies(f *testing.F) {
	f.Add(pipelinedReplies())
	f.Add(pipelinedReplies()[:100])
	f.Add(dataChunk(nil, replyFlagDone, 9, 0, make([]byte, 16)))
	f.Add(holeChunk(nil, replyFlagDone, 1, 0, 1<<31))
	f.Fuzz(func(t *testing.T, replies []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c := scriptedClient(t, ctx, 4, replies)
		if c == nil {
			return
		}
		defer c.Close()
		// Each buffer sits between guard bytes that must stay untouched.
		mem := make([]byte, 3*4096+4*16)
		bufs := [][]byte{mem[16 : 16+4096], mem[4096+32 : 4096+32+2048], mem[6144+48 : 6144+48+2048]}
		var reads []*Read
		for i, off := range []int64{0, 4096, 6144} {
			if r, err := c.StartRead(ctx, bufs[i], off); err == nil {
				reads = append(reads, r)
			}
		}
		_, _ = c.BlockStatus(ctx, ContextAllocation, 0, 8192)
		for _, r := range reads {
			_ = r.Wait(ctx)
		}
		_ = c.Close()
		for _, g := range [][]byte{mem[:16], mem[4096+16 : 4096+32], mem[6144+32 : 6144+48], mem[len(mem)-16:]} {
			if !bytes.Equal(g, make([]byte, 16)) {
				t.Fatal("the client wrote outside a read's buffer")
			}
		}
	})
}

// scriptedClient connects a client to a server that sends handshakeSession, waits until the
// client has sent nreq requests, then sends replies and hangs up. It returns nil when the handshake fails.
func scriptedClient(t testing.TB, ctx context.Context, nreq int, replies []byte) *Client {
	cl, sv := net.Pipe()
	t.Cleanup(func() { cl.Close() })
	go func() {
		defer sv.Close()
		_ = sv.SetDeadline(time.Now().Add(5 * time.Second))
		sent := make(chan struct{})
		go readClient(sv, nreq, sent)
		if _, err := sv.Write(handshakeSession()); err != nil {
			return
		}
		select {
		case <-sent:
		case <-ctx.Done():
			return
		}
		_, _ = sv.Write(replies) // returns when the client has read them all; then hang up
	}()
	c, err := NewClient(ctx, cl, Options{Export: "disk", MetaContexts: []string{ContextAllocation}})
	if err != nil {
		return nil
	}
	return c
}

// readClient reads what a client sends (its flags, options up to NBD_OPT_GO, then requests),
// closes sent after nreq requests, and goes on reading until the connection ends.
func readClient(conn net.Conn, nreq int, sent chan struct{}) {
	defer io.Copy(io.Discard, conn)
	var b [28]byte
	if _, err := io.ReadFull(conn, b[:4]); err != nil {
		return
	}
	for {
		if _, err := io.ReadFull(conn, b[:16]); err != nil {
			return
		}
		opt, n, err := parseOption(b[:16])
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, conn, int64(n)); err != nil {
			return
		}
		if opt == optGo {
			break
		}
	}
	for range nreq {
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			return
		}
	}
	close(sent)
}

// handshakeSession is what a server sends for a successful handshake: structured replies, one
// meta context (base:allocation, id 1), GO with an 8 KiB export.
func handshakeSession() []byte {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, magicNBD)
	b = binary.BigEndian.AppendUint64(b, magicOpt)
	b = binary.BigEndian.AppendUint16(b, flagFixedNewstyle|flagNoZeroes)
	optRep := func(opt, typ uint32, p []byte) {
		b = binary.BigEndian.AppendUint64(b, magicOptReply)
		b = binary.BigEndian.AppendUint32(b, opt)
		b = binary.BigEndian.AppendUint32(b, typ)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	optRep(optStructured, repAck, nil)
	optRep(optSetMetaContext, repMetaContext, append([]byte{0, 0, 0, 1}, ContextAllocation...))
	optRep(optSetMetaContext, repAck, nil)
	optRep(optGo, repInfo, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 3})
	optRep(optGo, repAck, nil)
	return b
}

// validReplies answer a read (handle 1) with one data chunk and a block status (2) with one
// extent.
func validReplies() []byte {
	b := dataChunk(nil, replyFlagDone, 1, 0, make([]byte, 4096))
	return statusChunk(b, replyFlagDone, 2, 1, 0x2000, 0)
}

// validSession is the handshake and validReplies.
func validSession() []byte { return append(handshakeSession(), validReplies()...) }

// pipelinedReplies answer FuzzPipelinedReplies's three reads (handles 1-3) and block status
// (4) out of order, their chunks interleaved.
func pipelinedReplies() []byte {
	b := dataChunk(nil, 0, 1, 0, bytes.Repeat([]byte{1}, 2048))
	b = statusChunk(b, replyFlagDone, 4, 1, 0x1000, 0, 0x1000, StateHole|StateZero)
	b = dataChunk(b, replyFlagDone, 3, 6144, bytes.Repeat([]byte{3}, 2048))
	b = holeChunk(b, replyFlagDone, 1, 2048, 2048)
	return dataChunk(b, replyFlagDone, 2, 4096, bytes.Repeat([]byte{2}, 2048))
}

// The valid replies the fuzzers start from really work end to end.
func TestScriptedSession(t *testing.T) {
	ctx := testCtx(t)
	c := scriptedClient(t, ctx, 2, validReplies())
	if c == nil {
		t.Fatal("handshake failed")
	}
	defer c.Close()
	if c.Size() != 8192 {
		t.Fatalf("size %d", c.Size())
	}
	r, err := c.StartRead(ctx, make([]byte, 4096), 0)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := c.BlockStatus(ctx, ContextAllocation, 0, 8192)
	if err != nil || len(ext) != 1 || ext[0].Length != 8192 {
		t.Fatalf("%v %v", ext, err)
	}
	if err := r.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// The pipelined replies the fuzzer starts from give each request its own bytes.
func TestScriptedPipelinedSession(t *testing.T) {
	ctx := testCtx(t)
	c := scriptedClient(t, ctx, 4, pipelinedReplies())
	if c == nil {
		t.Fatal("handshake failed")
	}
	defer c.Close()
	bufs := [][]byte{make([]byte, 4096), make([]byte, 2048), make([]byte, 2048)}
	var reads []*Read
	for i, off := range []int64{0, 4096, 6144} {
		r, err := c.StartRead(ctx, bufs[i], off)
		if err != nil {
			t.Fatal(err)
		}
		reads = append(reads, r)
	}
	ext, err := c.BlockStatus(ctx, ContextAllocation, 0, 8192)
	if err != nil || len(ext) != 2 || ext[1] != (Extent{0x1000, 0x1000, StateHole | StateZero}) {
		t.Fatalf("%v %v", ext, err)
	}
	for _, r := range reads {
		if err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := append(bytes.Repeat([]byte{1}, 2048), make([]byte, 2048)...)
	if !bytes.Equal(bufs[0], want) || !bytes.Equal(bufs[1], bytes.Repeat([]byte{2}, 2048)) || !bytes.Equal(bufs[2], bytes.Repeat([]byte{3}, 2048)) {
		t.Fatal("a read got another request's bytes")
	}
}

package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer negotiates as a server with structured replies, the contexts base:allocation
// (id 1) and qemu:dirty-bitmap:b (id 2) and an export of size bytes; then it reads n requests
// and hands them to script, which answers as it likes. What the client sends later is read and
// dropped. It returns the connected client.
func fakeServer(t *testing.T, size uint64, n int, script func(w net.Conn, reqs []request)) *Client {
	t.Helper()
	cl, sv := net.Pipe()
	t.Cleanup(func() { cl.Close(); sv.Close() })
	go func() {
		defer sv.Close()
		if err := fakeHandshake(sv, size); err != nil {
			return
		}
		var reqs []request
		var hb [28]byte
		for range n {
			if _, err := io.ReadFull(sv, hb[:]); err != nil {
				return
			}
			r, err := parseRequest(hb[:])
			if err != nil {
				return
			}
			reqs = append(reqs, r)
		}
		drained := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, sv); close(drained) }()
		script(sv, reqs)
		<-drained // the connection stays open until the client closes it
	}()
	c, err := NewClient(testCtx(t), cl, Options{Export: "disk", MetaContexts: []string{ContextAllocation, DirtyBitmapContext("b")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func fakeHandshake(conn net.Conn, size uint64) error {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, magicNBD)
	b = binary.BigEndian.AppendUint64(b, magicOpt)
	b = binary.BigEndian.AppendUint16(b, flagFixedNewstyle|flagNoZeroes)
	if _, err := conn.Write(b); err != nil {
		return err
	}
	var cf [4]byte
	if _, err := io.ReadFull(conn, cf[:]); err != nil {
		return err
	}
	var hb [16]byte
	for {
		if _, err := io.ReadFull(conn, hb[:]); err != nil {
			return err
		}
		opt, n, err := parseOption(hb[:])
		if err != nil {
			return err
		}
		if _, err := io.CopyN(io.Discard, conn, int64(n)); err != nil {
			return err
		}
		switch opt {
		case optSetMetaContext:
			_ = optReplyTo(conn, opt, repMetaContext, append([]byte{0, 0, 0, 1}, ContextAllocation...))
			_ = optReplyTo(conn, opt, repMetaContext, append([]byte{0, 0, 0, 2}, DirtyBitmapContext("b")...))
		case optGo:
			info := binary.BigEndian.AppendUint16(nil, infoExport)
			info = binary.BigEndian.AppendUint64(info, size)
			info = binary.BigEndian.AppendUint16(info, TransHasFlags|TransReadOnly)
			_ = optReplyTo(conn, opt, repInfo, info)
			return optReplyTo(conn, opt, repAck, nil)
		}
		if err := optReplyTo(conn, opt, repAck, nil); err != nil {
			return err
		}
	}
}

// chunk appends one structured reply chunk.
func chunk(b []byte, flags, typ uint16, cookie uint64, p []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, magicStructured)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, cookie)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}

func dataChunk(b []byte, flags uint16, cookie, off uint64, data []byte) []byte {
	return chunk(b, flags, chunkOffsetData, cookie, append(binary.BigEndian.AppendUint64(nil, off), data...))
}

func holeChunk(b []byte, flags uint16, cookie, off uint64, n uint32) []byte {
	return chunk(b, flags, chunkOffsetHole, cookie, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, off), n))
}

func statusChunk(b []byte, flags uint16, cookie uint64, id uint32, ext ...uint32) []byte {
	p := binary.BigEndian.AppendUint32(nil, id)
	for _, e := range ext {
		p = binary.BigEndian.AppendUint32(p, e)
	}
	return chunk(b, flags, chunkBlockStatus, cookie, p)
}

// A server that reads eight requests before answering any, then answers them last first with
// the chunks of different requests interleaved (data, holes, block status for both contexts in
// the middle): every request gets its own bytes. One request at a time would wait forever here.
func TestPipelinedRepliesOutOfOrder(t *testing.T) {
	const k, n = 7, 8192
	img := testData(k * n)
	c := fakeServer(t, uint64(len(img)), k+1, func(w net.Conn, reqs []request) {
		var b []byte
		// First halves, last request first; a block status in the middle; then second halves.
		for i := len(reqs) - 1; i >= 0; i-- {
			r := reqs[i]
			if r.typ == cmdBlockStatus {
				b = statusChunk(b, 0, r.cookie, 2, 4096, 1, 4096, 0)
				b = statusChunk(b, replyFlagDone, r.cookie, 1, 8192, 0)
				continue
			}
			b = dataChunk(b, 0, r.cookie, r.offset, img[r.offset:r.offset+n/2])
		}
		for _, r := range reqs {
			if r.typ == cmdRead {
				off := r.offset + n/2
				if r.offset == 2*n { // a hole: the image has zeros there
					b = holeChunk(b, replyFlagDone, r.cookie, off, n/2)
					clear(img[off : off+n/2])
					continue
				}
				b = dataChunk(b, replyFlagDone, r.cookie, off, img[off:off+n/2])
			}
		}
		_, _ = w.Write(b)
	})
	ctx := testCtx(t)
	bufs := make([][]byte, k)
	reads := make([]*Read, k)
	for i := range k {
		bufs[i] = bytes.Repeat([]byte{0xee}, n)
		r, err := c.StartRead(ctx, bufs[i], int64(i*n))
		if err != nil {
			t.Fatal(err)
		}
		reads[i] = r
	}
	ext, err := c.BlockStatus(ctx, DirtyBitmapContext("b"), 0, 8192)
	if err != nil {
		t.Fatal(err)
	}
	if len(ext) != 2 || ext[0] != (Extent{0, 4096, 1}) || ext[1] != (Extent{4096, 4096, 0}) {
		t.Fatalf("extents %v", ext)
	}
	for i, r := range reads {
		if err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bufs[i], img[i*n:(i+1)*n]) {
			t.Fatalf("read %d got another request's bytes", i)
		}
	}
}

// A hostile or broken server: every way a reply can break the protocol ends the request with
// an error naming it, fails the later requests ("connection unusable"), and never panics or
// hangs.
func TestMisbehavingServer(t *testing.T) {
	img := testData(16384)
	cases := []struct {
		name   string
		status bool // the request is a block status (else a 4096-byte read at 4096)
		reply  func(r request) []byte
		want   string
		hangUp bool // the server closes the connection after its reply
	}{
		{"unknown handle", false, func(r request) []byte {
			return dataChunk(nil, replyFlagDone, r.cookie+7, r.offset, img[:4096])
		}, "no request in flight", false},
		{"oversize chunk", false, func(r request) []byte {
			b := chunk(nil, replyFlagDone, chunkOffsetData, r.cookie, nil)
			binary.BigEndian.PutUint32(b[16:], maxChunkLen+1)
			return b
		}, "at most", false},
		{"chunk before the request", false, func(r request) []byte {
			return dataChunk(nil, replyFlagDone, r.cookie, r.offset-512, img[:4096])
		}, "outside the request", false},
		{"chunk past the request", false, func(r request) []byte {
			return dataChunk(nil, replyFlagDone, r.cookie, r.offset+512, img[:4096])
		}, "outside the request", false},
		{"chunks covering bytes twice", false, func(r request) []byte {
			b := dataChunk(nil, 0, r.cookie, r.offset, img[:4096])
			return dataChunk(b, replyFlagDone, r.cookie, r.offset, img[:4096])
		}, "cover", false},
		{"hole chunk outside", false, func(r request) []byte {
			return holeChunk(nil, replyFlagDone, r.cookie, r.offset+4000, 4096)
		}, "outside the request", false},
		{"flood of error chunks", false, func(r request) []byte {
			var b []byte
			for range 100 {
				b = chunk(b, 0, chunkError, r.cookie, []byte{0, 0, 0, 5, 0, 0})
			}
			return b
		}, "error chunks", false},
		{"flood of replies after the last", false, func(r request) []byte { // the read succeeds, the next request fails
			b := dataChunk(nil, replyFlagDone, r.cookie, r.offset, img[:4096])
			for range 100 {
				b = dataChunk(b, replyFlagDone, r.cookie, r.offset, img[:4096])
			}
			return b
		}, "no request in flight", false},
		{"block status chunk to a read", false, func(r request) []byte {
			return statusChunk(nil, replyFlagDone, r.cookie, 1, 4096, 0)
		}, "no block status", false},
		{"non-final empty chunk", false, func(r request) []byte {
			return chunk(nil, 0, chunkNone, r.cookie, nil)
		}, "NBD_REPLY_TYPE_NONE", false},
		{"unknown chunk type", false, func(r request) []byte {
			return chunk(nil, replyFlagDone, 77, r.cookie, []byte{1, 2, 3})
		}, "unknown reply chunk type 77", false},
		{"malformed error chunk", false, func(r request) []byte {
			return chunk(nil, replyFlagDone, chunkError, r.cookie, []byte{0, 0, 0, 5, 0, 9, 'x'})
		}, "error chunk message", false},
		{"cut in the middle of the data", false, func(r request) []byte {
			return dataChunk(nil, replyFlagDone, r.cookie, r.offset, img[:4096])[:2000]
		}, "EOF", true},
		{"bad magic", false, func(r request) []byte {
			return []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
		}, "neither simple nor structured", false},
		{"data chunk to a block status", true, func(r request) []byte {
			return dataChunk(nil, replyFlagDone, r.cookie, r.offset, img[:4096])
		}, "no read", false},
		{"second chunk for one context", true, func(r request) []byte {
			b := statusChunk(nil, 0, r.cookie, 1, 4096, 0)
			return statusChunk(b, replyFlagDone, r.cookie, 1, 4096, 0)
		}, "second block status chunk", false},
		{"unselected context", true, func(r request) []byte {
			return statusChunk(nil, replyFlagDone, r.cookie, 9, 4096, 0)
		}, "not selected", false},
		{"zero-length extent", true, func(r request) []byte {
			return statusChunk(nil, replyFlagDone, r.cookie, 1, 0, 0)
		}, "length 0", false},
		{"oversize block status", true, func(r request) []byte {
			return statusChunk(nil, replyFlagDone, r.cookie, 1, make([]uint32, 2*(maxStatusChunk/8+1))...)
		}, "at most", false},
		{"simple reply to block status", true, func(r request) []byte {
			b := binary.BigEndian.AppendUint32(nil, magicSimple)
			b = binary.BigEndian.AppendUint32(b, 0)
			return binary.BigEndian.AppendUint64(b, r.cookie)
		}, "simple reply", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeServer(t, uint64(len(img)), 1, func(w net.Conn, reqs []request) {
				_, _ = w.Write(tc.reply(reqs[0]))
				if tc.hangUp {
					w.Close()
				}
			})
			ctx := testCtx(t)
			var err error
			if tc.status {
				_, err = c.BlockStatus(ctx, ContextAllocation, 0, 8192)
			} else {
				_, err = c.ReadAtContext(ctx, make([]byte, 4096), 4096)
			}
			flood := strings.HasPrefix(tc.name, "flood of replies")
			if flood && err != nil || !flood && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			_, err = c.ReadAtContext(ctx, make([]byte, 10), 0)
			if err == nil || !strings.Contains(err.Error(), "unusable") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("request after the broken reply: %v", err)
			}
		})
	}
}

// A server error for one request leaves the others and the connection working.
func TestServerErrorKeepsConnection(t *testing.T) {
	img := testData(8192)
	c := fakeServer(t, uint64(len(img)), 3, func(w net.Conn, reqs []request) {
		var b []byte
		msg := []byte("bad sector")
		errp := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint32(nil, errIO), uint16(len(msg)))
		errp = binary.BigEndian.AppendUint64(append(errp, msg...), reqs[0].offset)
		b = chunk(b, replyFlagDone, chunkErrorOffset, reqs[0].cookie, errp)
		b = dataChunk(b, replyFlagDone, reqs[1].cookie, reqs[1].offset, img[reqs[1].offset:reqs[1].offset+uint64(reqs[1].length)])
		b = dataChunk(b, replyFlagDone, reqs[2].cookie, reqs[2].offset, img[reqs[2].offset:reqs[2].offset+uint64(reqs[2].length)])
		_, _ = w.Write(b)
	})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	bufs := make([][]byte, 3)
	for i := range 3 {
		bufs[i] = make([]byte, 1000)
		r, err := c.StartRead(ctx, bufs[i], int64(i*2000))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.Wait(ctx) }()
	}
	wg.Wait()
	var se *ServerError
	if !errors.As(errs[0], &se) || se.Errno != errIO || se.Message != "bad sector" || !se.HasOffset {
		t.Fatalf("first read: %v", errs[0])
	}
	for i := 1; i < 3; i++ {
		if errs[i] != nil || !bytes.Equal(bufs[i], img[i*2000:i*2000+1000]) {
			t.Fatalf("read %d: %v", i, errs[i])
		}
	}
}

// A server that never answers: the request ends with its context, and the connection is closed
// so no reply can write into the buffer afterwards.
func TestSilentServerEndsWithContext(t *testing.T) {
	c := fakeServer(t, 8192, 1, func(net.Conn, []request) {})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.ReadAtContext(ctx, make([]byte, 4096), 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
	if _, err := c.ReadAtContext(testCtx(t), make([]byte, 10), 0); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("request after the cancelled one: %v", err)
	}
}

package nbd

import (
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
// a result) without panicking or hanging.
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
		buf := make([]byte, 4096)
		_, _ = c.ReadAtContext(ctx, buf, 0)
		_, _ = c.BlockStatus(ctx, ContextAllocation, 0, 8192)
	})
}

// validSession is what a server sends for a successful handshake (structured replies, one meta
// context, GO with an 8 KiB export), a read answered by one data chunk and a block status
// answered by one extent.
func validSession() []byte {
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
	chunk := func(flags, typ uint16, cookie uint64, p []byte) {
		b = binary.BigEndian.AppendUint32(b, magicStructured)
		b = binary.BigEndian.AppendUint16(b, flags)
		b = binary.BigEndian.AppendUint16(b, typ)
		b = binary.BigEndian.AppendUint64(b, cookie)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	chunk(replyFlagDone, chunkOffsetData, 1, append(make([]byte, 8), make([]byte, 4096)...))
	chunk(replyFlagDone, chunkBlockStatus, 2, []byte{0, 0, 0, 1, 0, 0, 0x20, 0, 0, 0, 0, 0})
	return b
}

// The valid session the fuzzer starts from really works end to end.
func TestScriptedSession(t *testing.T) {
	cl, sv := net.Pipe()
	defer cl.Close()
	go func() {
		go func() { _, _ = io.Copy(io.Discard, sv) }()
		_, _ = sv.Write(validSession())
	}()
	ctx := testCtx(t)
	c, err := NewClient(ctx, cl, Options{Export: "disk", MetaContexts: []string{ContextAllocation}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Size() != 8192 {
		t.Fatalf("size %d", c.Size())
	}
	if _, err := c.ReadAtContext(ctx, make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	ext, err := c.BlockStatus(ctx, ContextAllocation, 0, 8192)
	if err != nil || len(ext) != 1 || ext[0].Length != 8192 {
		t.Fatalf("%v %v", ext, err)
	}
}

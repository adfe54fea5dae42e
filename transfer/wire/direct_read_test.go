package wire

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// stagingCounter is a client's end of the link that returns at most 32 KiB per read, as an SSH
// channel does (one packet), and counts the bytes it hands to reads into a buffer larger than a
// chunk: the session's 256 KiB read buffer, from which they are copied again into the chunk a
// data frame is delivered in. Reads into a chunk land where they stay.
type stagingCounter struct {
	r      io.Reader
	staged atomic.Int64
	total  atomic.Int64
}

func (c *stagingCounter) Read(p []byte) (int, error) {
	big := cap(p) > ChunkSize
	n, err := c.r.Read(p[:min(len(p), 32<<10)])
	c.total.Add(int64(n))
	if big {
		c.staged.Add(int64(n))
	}
	return n, err
}

// TestDownloadReadsPayloadsStraightIntoChunks: most of a download's bytes are read from the
// link straight into the chunks the stream hands out, not through the session's read buffer
// first (every byte was, an extra copy of everything an ssh:// restore receives). What is still
// staged is what arrived in the same read as a frame's header.
func TestDownloadReadsPayloadsStraightIntoChunks(t *testing.T) {
	l := wiretest.Pipes(t)
	link := &stagingCounter{r: l.ClientR}
	done := make(chan error, 1)
	go func() {
		s, _, err := Accept(l.ServerR, l.ServerW, func(Hello) HelloReply {
			return HelloReply{Program: "test-server", Root: "/srv", Caps: []string{CapStore}}
		}, testHandler)
		if err == nil {
			defer s.Close()
			err = s.Wait()
		}
		done <- err
	}()
	c, _, err := Dial(context.Background(), link, l.ClientW, Hello{Program: "test-client"})
	if err != nil {
		t.Fatal(err)
	}
	const size = 16 << 20
	var e Encoder
	e.Uvarint(size)
	st, err := c.Open(context.Background(), OpLoad, e.B, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if !bytes.Equal(got, pattern(size)) {
		t.Fatalf("download of %d bytes came back as %d different ones", size, len(got))
	}
	c.Close()
	l.ClientW.Close()
	<-done // the server ends with the link; how is not what this test is about
	staged, total := link.staged.Load(), link.total.Load()
	t.Logf("%d of %d bytes read through the session's read buffer", staged, total)
	if staged > total/3 {
		t.Fatalf("%d of %d bytes of a download went through the read buffer, want at most a third", staged, total)
	}
}

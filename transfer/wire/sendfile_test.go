package wire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// hiddenFile hides that a link end is an *os.File: the session must copy instead of splice.
type hiddenFile struct{ io.Writer }

// sendFileHandler answers OpLoad with bytes [off, off+n) of file, both given as uvarints.
func sendFileHandler(t *testing.T, file string) Handler {
	return func(ctx context.Context, st *Stream, req Request) {
		d := NewDecoder(req.Args)
		off, n := int64(d.Uvarint()), int64(d.Uvarint())
		f, err := os.Open(file)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		st.Respond(Response{Streamed: true})
		if err := st.SendFile(f, off, n); err != nil {
			st.CloseWithError(err)
			return
		}
		st.CloseWrite()
	}
}

func loadRange(t *testing.T, c *Session, off, n int) ([]byte, error) {
	t.Helper()
	var e Encoder
	e.Uvarint(uint64(off))
	e.Uvarint(uint64(n))
	st, err := c.Open(context.Background(), OpLoad, e.B, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return io.ReadAll(st)
}

// TestSendFileSplicesOnAPipe: on a pipe link the body of a file range never enters the process
// (every byte spliced, counted by SplicedBytes), on any other link it is copied; the client
// gets the same bytes either way, in frames no larger than a chunk, over a window smaller than
// the body. A range past the end of the file is refused before anything is sent.
func TestSendFileSplicesOnAPipe(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pack")
	data := pattern(3*ChunkSize + 12345)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		hide   bool
		splice bool
	}{{"pipe", false, true}, {"not a file", true, false}} {
		t.Run(c.name, func(t *testing.T) {
			l := wiretest.Pipes(t)
			var w io.Writer = l.ServerW
			if c.hide {
				w = hiddenFile{l.ServerW}
			}
			server := make(chan *Session, 1)
			go func() {
				s, _, err := Accept(l.ServerR, w, func(Hello) HelloReply {
					return HelloReply{Program: "test-server", Caps: []string{CapStore}, Window: 128 << 10, MaxStreams: 4}
				}, sendFileHandler(t, file))
				if err != nil {
					t.Error(err)
				}
				server <- s
			}()
			cl, _, err := Dial(context.Background(), l.ClientR, l.ClientW, Hello{Program: "test-client"})
			if err != nil {
				t.Fatal(err)
			}
			s := <-server
			if s == nil {
				t.FailNow()
			}
			t.Cleanup(func() { cl.Close(); s.Close() })
			want := int64(0)
			for _, r := range [][2]int{{0, len(data)}, {7, ChunkSize}, {len(data) - 5, 5}, {ChunkSize + 1, 2*ChunkSize + 3}} {
				got, err := loadRange(t, cl, r[0], r[1])
				if err != nil {
					t.Fatalf("range %v: %v", r, err)
				}
				if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
					t.Fatalf("range %v: got %d bytes that differ from the file's", r, len(got))
				}
				want += int64(r[1])
			}
			if !c.splice {
				want = 0
			}
			if got := s.SplicedBytes(); got != want {
				t.Fatalf("%d body bytes spliced, want %d", got, want)
			}
			_, err = loadRange(t, cl, len(data)-5, 6)
			if re := (*RemoteError)(nil); !errors.As(err, &re) {
				t.Fatalf("a range past the end: err %v, want the server's error", err)
			}
			// The session still works after the refusal.
			if got, err := loadRange(t, cl, 1, 10); err != nil || !bytes.Equal(got, data[1:11]) {
				t.Fatalf("after the refusal: %q, %v", got, err)
			}
		})
	}
}

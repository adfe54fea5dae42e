package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// Under --bwlimit a streamed save still streams, at the limiter's pace: 3 MiB at 1 MiB/s take
// about three seconds of (fake) clock, and the committed file holds every byte.
func TestBackendPacesStreamedSaves(t *testing.T) {
	ctx := context.Background()
	inner := local.New(t.TempDir())
	if err := inner.Create(ctx); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	start := clk.Now()
	be := Backend(inner, NewLimiter(1<<20, clk))
	ss, ok := be.(store.StreamSaver)
	if !ok {
		t.Fatal("the limited store is no store.StreamSaver")
	}
	p, err := ss.SaveStream(ctx, store.KindData)
	if err != nil {
		t.Fatalf("streamed save under a rate limit: %v", err)
	}
	want := bytes.Repeat([]byte("paced "), 3<<20/6)
	if _, err := io.Copy(p, bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	h := store.Handle{Kind: store.KindData, Name: "00aa11bb22cc33dd44ee55ff66aa77bb88cc99dd00ee11ff22aa33bb44cc55dd"}
	if err := p.Commit(ctx, h); err != nil {
		t.Fatal(err)
	}
	if took := clk.Now().Sub(start); took < 2500*time.Millisecond {
		t.Errorf("3 MiB at 1 MiB/s took %v of clock: not paced", took)
	}
	rc, err := inner.Load(ctx, h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, want) {
		t.Errorf("committed file: %d bytes, want %d", len(got), len(want))
	}
}

// saveOnly hides the local store's StreamSaver, as the sftp:// store lacks one.
type saveOnly struct{ store.Backend }

// A limited store over one that cannot stream says so, and the repository uses the paced Save.
func TestBackendWithoutStreamingInner(t *testing.T) {
	be := Backend(saveOnly{local.New(t.TempDir())}, NewLimiter(1<<20, nil))
	if p, err := be.(store.StreamSaver).SaveStream(context.Background(), store.KindData); !errors.Is(err, errors.ErrUnsupported) {
		if p != nil {
			p.Abort()
		}
		t.Fatalf("streamed save over a store that cannot stream: %v, want unsupported", err)
	}
}

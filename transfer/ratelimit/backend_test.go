package ratelimit

import (
	"context"
	"errors"
	"testing"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// TestBackendRefusesStreamedSaves: under --bwlimit even a store that streams (the local one)
// answers ErrUnsupported, so the repository falls back to the paced Save.
func TestBackendRefusesStreamedSaves(t *testing.T) {
	inner := local.New(t.TempDir())
	if _, ok := any(inner).(store.StreamSaver); !ok {
		t.Fatal("the local store no longer streams: this test needs another one that does")
	}
	be := Backend(inner, NewLimiter(1<<20, nil))
	ss, ok := be.(store.StreamSaver)
	if !ok {
		t.Fatal("the limited store is no store.StreamSaver: callers cannot tell it must not stream")
	}
	if p, err := ss.SaveStream(context.Background(), store.KindData); !errors.Is(err, errors.ErrUnsupported) {
		if p != nil {
			p.Abort()
		}
		t.Fatalf("streamed save under a rate limit: %v, want unsupported", err)
	}
}

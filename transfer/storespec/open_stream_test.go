package storespec_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/storetest"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// TestStreamSaveBySpec: an ssh:// store streams (so the conformance stream-* subtests run
// against it), an sftp:// one asks for the fallback to Save.
func TestStreamSaveBySpec(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	opts := options(t, s)
	opts.Create = true
	for scheme, streams := range map[string]bool{"ssh": true, "sftp": false} {
		t.Run(scheme, func(t *testing.T) {
			be := open(t, spec(scheme, s, filepath.Join(t.TempDir(), "repo")), opts)
			defer be.Close()
			ss, ok := be.(store.StreamSaver)
			if !ok {
				t.Fatalf("%s store is no store.StreamSaver", scheme)
			}
			p, err := ss.SaveStream(context.Background(), store.KindData)
			if streams && err != nil {
				t.Fatalf("streamed save over %s: %v", scheme, err)
			}
			if !streams && !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("streamed save over %s: %v, want unsupported", scheme, err)
			}
			if p != nil {
				p.Abort()
			}
		})
	}
}

// TestDeadLinkFailsStreamedSave: a streamed save over a link that went silent fails within
// seconds, and its error says the link died (the pending file's errors are explained too).
func TestDeadLinkFailsStreamedSave(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	be, p := createBehindProxy(t, s, "ssh")
	ctx := context.Background()
	pending, err := be.(store.StreamSaver).SaveStream(ctx, store.KindData)
	if err != nil {
		t.Fatal(err)
	}
	p.Freeze()
	start := time.Now()
	chunk := storetest.Data(1, 1<<20)
	for err == nil && time.Since(start) < 30*time.Second {
		_, err = pending.Write(chunk)
	}
	if err == nil || !strings.Contains(err.Error(), "the link is dead") {
		t.Errorf("write over a dead link: %v, want an error saying the link died", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("dead link noticed after %s: %v", d, err)
	}
	err = pending.Commit(ctx, store.Handle{Kind: store.KindData, Name: storetest.Name(1)})
	if err == nil || !strings.Contains(err.Error(), "the link is dead") {
		t.Errorf("commit over a dead link: %v, want an error saying the link died", err)
	}
	if _, err := be.(store.StreamSaver).SaveStream(ctx, store.KindData); err == nil || !strings.Contains(err.Error(), "the link is dead") {
		t.Errorf("streamed save started after the link died: %v, want an error saying so", err)
	}
}

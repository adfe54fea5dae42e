package storespec

import (
	"context"
	"errors"
	"sync"

	"github.com/snapferry/snapferry/images/store"
)

// Early is a store being opened in the background (StartOpen): for ssh:// the SSH dial, key
// exchange and authentication, the far login shell, serve's start-up and the wire handshake,
// 0.1-0.4 s on a loopback link before a command can send its first request, overlap with the
// local work a command does before it needs the repository (registering the job, writing the
// history, classifying its paths). Opening touches nothing in the repository: serve only checks
// that its root is a folder, and the first request (the config read, then the lock) is sent by
// the caller after Take, in the same order as without Early.
type Early struct {
	spec   string
	done   chan struct{}
	cancel context.CancelFunc // stops an open nobody will take (Discard)

	mu    sync.Mutex
	be    store.Backend
	err   error
	taken bool
}

// StartOpen starts opening spec with opts in a goroutine. The caller must Take or Discard it.
func StartOpen(ctx context.Context, spec string, opts Options) *Early {
	// The context lives as long as ctx once the store is taken: the link's keepalive and
	// session run under it. Only Discard cancels it, for a store nobody took.
	ctx, cancel := context.WithCancel(ctx)
	e := &Early{spec: spec, done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(e.done)
		be, err := Open(ctx, spec, opts)
		e.mu.Lock()
		e.be, e.err = be, err
		e.mu.Unlock()
	}()
	return e
}

// Spec is the spec being opened, as passed to StartOpen.
func (e *Early) Spec() string { return e.spec }

// errTaken is what a second Take gets: the Backend has one owner.
var errTaken = errors.New("storespec: early store already taken")

// Take waits for the open to finish and hands over its Backend (the caller closes it) or its
// error. Only the first Take gets the Backend.
func (e *Early) Take() (store.Backend, error) {
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.taken {
		return nil, errTaken
	}
	e.taken = true
	return e.be, e.err
}

// Discard closes the store unless it was taken: a command that stopped before it needed the
// store (a usage error, a job that could not register) leaves no link and no far serve behind,
// and does not wait for a dial to an unreachable host either (the open is cancelled).
func (e *Early) Discard() {
	e.mu.Lock()
	taken := e.taken
	e.taken = true
	e.mu.Unlock()
	if taken {
		return
	}
	e.cancel()
	<-e.done
	if e.err == nil {
		_ = e.be.Close()
	}
}

package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/transfer/serve/jail"
	"github.com/snapferry/snapferry/transfer/wire"
)

// The streamed saves write into the served root through the local backend's StreamSaver.
var _ store.StreamSaver = (*local.Backend)(nil)

// maxPending bounds the streamed files a session holds between the end of their upload and
// their commit. Each is a temp file on the store's disk; a client that never commits must not
// be able to pile them up. Uploads still running are bounded by the session's max streams.
const maxPending = 16

// checkStreamKind is checkHandle for a file that has no name yet.
func (s *server) checkStreamKind(k store.Kind) error {
	if !slices.Contains(store.Kinds, k) {
		return fmt.Errorf("%w: unknown file kind %q", jail.ErrOutside, k)
	}
	// Both are small and written whole. Locks also must go through save: an append-only session
	// records the locks it saved, the only files it may remove again.
	if k == store.KindConfig || k == store.KindLocks {
		return fmt.Errorf("%w: %s files are saved whole, not streamed", wire.ErrRefused, k)
	}
	// The temp file is made in the kind's folder, before any name is checked: that folder must
	// not lead out of the root.
	return s.jail.Within(filepath.Join(s.jail.Root(), string(k)))
}

// saveStream takes the upload of a file whose name the client does not know yet into a temp
// file and answers with the token OpCommitStream names it by.
func (s *server) saveStream(ctx context.Context, st *wire.Stream, args []byte) error {
	op := wire.OpSaveStream
	k, err := wire.DecodeKind(args)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkStreamKind(k); err != nil {
		s.logf("refused %s %q: %v", op, k, err)
		return fmt.Errorf("%s %s: %w", op, k, err)
	}
	// Refuse before the body is stored when the answer would be no anyway; add checks again.
	if err := s.pending.room(); err != nil {
		s.logf("refused %s %s: %v", op, k, err)
		return fmt.Errorf("%s %s: %w", op, k, err)
	}
	p, err := s.be.SaveStream(ctx, k)
	if err != nil {
		return err
	}
	// A body the client ended with an error, a canceled request or a lost link fail the read:
	// the temp file goes, nothing is kept under a token.
	if _, err := io.CopyBuffer(p, st, make([]byte, wire.ChunkSize)); err != nil {
		p.Abort()
		return fmt.Errorf("%s %s: %w", op, k, err)
	}
	tok, err := s.pending.add(p)
	if err != nil {
		p.Abort()
		s.logf("refused %s %s: %v", op, k, err)
		return fmt.Errorf("%s %s: %w", op, k, err)
	}
	// A failed answer means the link is gone: the session's end drops the file.
	_ = st.Respond(wire.Response{Body: wire.EncodeStreamToken(tok)})
	return nil
}

// commitStream names a file saveStream took, with Save's rules: the same name checks, never
// over an existing file (refused and logged as Save's overwrite is in append-only mode).
func (s *server) commitStream(ctx context.Context, st *wire.Stream, args []byte) error {
	op := wire.OpCommitStream
	a, err := wire.DecodeCommitStreamArgs(args)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p, ok := s.pending.take(a.Token)
	if !ok {
		return fmt.Errorf("%s %s: unknown stream token %q (not given out in this session, or already used)", op, a.Handle, a.Token)
	}
	// Whatever happens below, the token is used up and the upload dropped unless published: a
	// client whose commit failed streams the file again.
	defer p.Abort()
	if err := s.checkHandle(a.Handle); err != nil {
		s.logf("refused %s %q: %v", op, a.Handle.String(), err)
		return fmt.Errorf("%s %s: %w", op, a.Handle, err)
	}
	if err := s.checkNewName(op, a.Handle); err != nil {
		return err
	}
	if err := p.Commit(ctx, a.Handle); err != nil {
		if s.opts.AppendOnly && errors.Is(err, store.ErrExist) {
			s.logf("refused overwrite of %s (append-only)", a.Handle)
		}
		return err
	}
	return st.Respond(wire.Response{})
}

// dropPending aborts the uploads no commit came for. It runs when the session is over, after
// every handler returned: nobody can name those files any more.
func (s *server) dropPending() {
	if n := s.pending.close(); n > 0 {
		s.logf("dropped %d streamed file(s) the client never committed", n)
	}
}

// pendingFiles are the uploads of one session that ended and wait for OpCommitStream, by token.
type pendingFiles struct {
	mu     sync.Mutex
	m      map[string]store.Pending
	closed bool
}

func (pf *pendingFiles) room() error {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	return pf.roomLocked()
}

func (pf *pendingFiles) roomLocked() error {
	if pf.closed {
		return errors.New("the session is over")
	}
	if len(pf.m) >= maxPending {
		return fmt.Errorf("%w: %d streamed files already wait for their commit in this session; commit them first",
			wire.ErrRefused, len(pf.m))
	}
	return nil
}

// add keeps p under a fresh random token: a client can only commit what it was told about.
func (pf *pendingFiles) add(p store.Pending) (string, error) {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics instead)
	tok := hex.EncodeToString(b[:])
	pf.mu.Lock()
	defer pf.mu.Unlock()
	if err := pf.roomLocked(); err != nil {
		return "", err
	}
	if pf.m == nil {
		pf.m = make(map[string]store.Pending)
	}
	pf.m[tok] = p
	return tok, nil
}

// take removes the file of tok from the set; a token works once.
func (pf *pendingFiles) take(tok string) (store.Pending, bool) {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	p, ok := pf.m[tok]
	delete(pf.m, tok)
	return p, ok
}

// close aborts every file still waiting, refuses later adds and returns how many it dropped.
func (pf *pendingFiles) close() int {
	pf.mu.Lock()
	m := pf.m
	pf.m, pf.closed = nil, true
	pf.mu.Unlock()
	for _, p := range m {
		p.Abort()
	}
	return len(m)
}

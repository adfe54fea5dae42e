package serve

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/transfer/serve/jail"
	"github.com/snapferry/snapferry/transfer/wire"
)

// checkHandle refuses handles a repository never uses and paths that leave the root. The local
// backend validates again; this check is the one that knows about symlinks and the root.
func (s *server) checkHandle(h store.Handle) error {
	if !slices.Contains(store.Kinds, h.Kind) {
		return fmt.Errorf("%w: unknown file kind %q", jail.ErrOutside, h.Kind)
	}
	if h.Kind != store.KindConfig {
		if err := jail.CheckName(h.Name); err != nil {
			return fmt.Errorf("%s: %w", h.Kind, err)
		}
		if h.Name[0] == '.' {
			return fmt.Errorf("%w: hidden name %q", jail.ErrOutside, h.Name)
		}
	}
	return s.jail.Within(s.be.Path(h))
}

func (s *server) handleArg(op wire.Op, args []byte) (store.Handle, error) {
	h, err := wire.DecodeHandle(args)
	if err != nil {
		return h, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.checkHandle(h); err != nil {
		s.logf("refused %s %q: %v", op, h.String(), err)
		return h, fmt.Errorf("%s %s: %w", op, h, err)
	}
	return h, nil
}

// checkNewName is what an append-only server also demands of a file it is to create: every
// file but config is named by the hash of its bytes (64 lowercase hex digits). A client that may
// only add files must not add one under another name, which readers would have to skip.
func (s *server) checkNewName(op wire.Op, h store.Handle) error {
	if !s.opts.AppendOnly || h.Kind == store.KindConfig || isID(h.Name) {
		return nil
	}
	s.logf("refused %s of %s (append-only: the name is not an id)", op, h)
	return fmt.Errorf("%s %s: %w: the server is append-only and takes only files named by an id (64 lowercase hex digits)",
		op, h, wire.ErrRefused)
}

// isID reports whether name is 64 lowercase hex digits, as snapferry names every file but config.
func isID(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, c := range []byte(name) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *server) save(ctx context.Context, st *wire.Stream, args []byte) error {
	h, err := s.handleArg(wire.OpSave, args)
	if err != nil {
		return err
	}
	if err := s.checkNewName(wire.OpSave, h); err != nil {
		return err
	}
	if err := s.be.Save(ctx, h, st); err != nil {
		if s.opts.AppendOnly && errors.Is(err, store.ErrExist) {
			s.logf("refused overwrite of %s (append-only)", h)
		}
		return err
	}
	if h.Kind == store.KindLocks {
		s.mu.Lock()
		s.sessionLocks[h.Name] = true
		s.mu.Unlock()
	}
	return st.Respond(wire.Response{})
}

func (s *server) load(ctx context.Context, st *wire.Stream, args []byte) error {
	a, err := wire.DecodeLoadArgs(args)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if err := s.checkHandle(a.Handle); err != nil {
		s.logf("refused load %q: %v", a.Handle.String(), err)
		return fmt.Errorf("load %s: %w", a.Handle, err)
	}
	rc, err := s.be.Load(ctx, a.Handle, a.Offset, a.Length)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := st.Respond(wire.Response{Streamed: true}); err != nil {
		return nil // the link is gone; nothing to answer
	}
	// A pack range goes from the page cache to sshd's pipe without passing through this process.
	if f, off, n, ok := local.FileRange(rc); ok {
		if err := st.SendFile(f, off, n); err != nil {
			st.CloseWithError(fmt.Errorf("load %s: %w", a.Handle, err))
			return nil
		}
		st.CloseWrite()
		return nil
	}
	buf := make([]byte, wire.ChunkSize)
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if _, err := st.Write(buf[:n]); err != nil {
				return nil // canceled or link lost: the session cleans up
			}
		}
		if rerr == io.EOF {
			st.CloseWrite()
			return nil
		}
		if rerr != nil {
			st.CloseWithError(fmt.Errorf("load %s: read: %w", a.Handle, rerr))
			return nil
		}
	}
}

func (s *server) stat(ctx context.Context, st *wire.Stream, args []byte) error {
	h, err := s.handleArg(wire.OpStat, args)
	if err != nil {
		return err
	}
	fi, err := s.be.Stat(ctx, h)
	if err != nil {
		return err
	}
	return st.Respond(wire.Response{Body: wire.AppendFileInfo(nil, fi)})
}

func (s *server) list(ctx context.Context, st *wire.Stream, args []byte) error {
	k, err := wire.DecodeKind(args)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	if !slices.Contains(store.Kinds, k) {
		return fmt.Errorf("list: %w: unknown file kind %q", jail.ErrOutside, k)
	}
	if err := s.jail.Within(s.be.Path(store.Handle{Kind: k, Name: "x"})); err != nil {
		return fmt.Errorf("list %s: %w", k, err)
	}
	if err := st.Respond(wire.Response{Streamed: true}); err != nil {
		return nil
	}
	bw := bufio.NewWriterSize(st, 64<<10)
	var entry []byte
	err = s.be.List(ctx, k, func(fi store.FileInfo) error {
		entry = wire.AppendFileInfo(entry[:0], fi)
		_, err := bw.Write(entry)
		return err
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		st.CloseWithError(fmt.Errorf("list %s: %w", k, err))
		return nil
	}
	st.CloseWrite()
	return nil
}

func (s *server) remove(ctx context.Context, st *wire.Stream, args []byte) error {
	h, err := s.handleArg(wire.OpRemove, args)
	if err != nil {
		return err
	}
	if s.opts.AppendOnly && h.Kind != store.KindLocks {
		s.logf("refused remove of %s (append-only)", h)
		return fmt.Errorf("remove %s: %w: the server is append-only (only lock files may be removed); "+
			"run forget and prune on the store host, or with a key whose forced command lacks --append-only", h, wire.ErrRefused)
	}
	if s.opts.AppendOnly {
		s.mu.Lock()
		own := s.sessionLocks[h.Name]
		s.mu.Unlock()
		if !own {
			s.logf("refused remove of %s (append-only: not written in this session)", h)
			return fmt.Errorf("remove %s: %w: the server is append-only and this lock was not written in this session; "+
				"stale locks are removed on the store host (`snapferry unlock`)", h, wire.ErrRefused)
		}
	}
	if err := s.be.Remove(ctx, h); err != nil {
		return err
	}
	if h.Kind == store.KindLocks {
		s.mu.Lock()
		delete(s.sessionLocks, h.Name)
		s.mu.Unlock()
	}
	return st.Respond(wire.Response{})
}

func (s *server) create(ctx context.Context, st *wire.Stream) error {
	if err := s.be.Create(ctx); err != nil {
		return err
	}
	return st.Respond(wire.Response{})
}

// cleanTemp lists the temp files of killed uploads below the root and removes those last written
// before the time the client names (prune passes one before which no live writer wrote; this
// session's own uploads in progress are younger). An append-only server only counts them.
func (s *server) cleanTemp(ctx context.Context, st *wire.Stream, args []byte) error {
	ns, err := wire.DecodeUint(args)
	if err != nil {
		return fmt.Errorf("%s: %w", wire.OpCleanTemp, err)
	}
	var before time.Time
	if ns > 0 {
		before = time.Unix(0, int64(min(ns, 1<<62)))
	}
	if s.opts.AppendOnly && !before.IsZero() {
		s.logf("refused removal of temp files (append-only); counting them")
		before = time.Time{}
	}
	rep, err := s.be.CleanTemp(ctx, before)
	if err != nil {
		return err
	}
	if rep.Removed > 0 {
		s.logf("removed %d temp files of interrupted uploads (%d bytes)", rep.Removed, rep.BytesRemoved)
	}
	return st.Respond(wire.Response{Body: wire.EncodeTempReport(rep)})
}

func (s *server) freeSpace(ctx context.Context, st *wire.Stream) error {
	n, err := s.be.FreeSpace(ctx)
	if err != nil {
		return err
	}
	return st.Respond(wire.Response{Body: wire.EncodeUint(uint64(max(n, 0)))})
}

package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/transfer/replica"
	"github.com/snapferry/snapferry/transfer/serve/jail"
	"github.com/snapferry/snapferry/transfer/wire"
)

// Options configure one serving session.
type Options struct {
	Root       string    // the folder served; must exist
	AppendOnly bool      // refuse removing (except locks this session wrote) and rewriting
	Log        io.Writer // refusals and recoveries, one line each; nil discards
	Program    string    // this program's version, announced in the handshake
	// ReplicaHooks let tests stop the server at known points of a replica update.
	ReplicaHooks replica.Hooks
}

// Serve answers one client on r and w until the client closes its side (nil), ctx ends, or the
// link fails. It never closes r or w.
func Serve(ctx context.Context, r io.Reader, w io.Writer, opts Options) error {
	j, err := jail.New(opts.Root)
	if err != nil {
		return err
	}
	srv := &server{opts: opts, jail: j, be: local.New(j.Root()), sessionLocks: map[string]bool{}}
	srv.logger.w = opts.Log
	// A replica update cut off with its server must not stay torn until someone replicates
	// that set again: finish or undo it before serving anything.
	if err := replica.Recover(j, srv.logf); err != nil {
		srv.logf("recovering interrupted replica updates: %v", err)
	}
	srv.replica = replica.NewReceiver(j, srv.logf, opts.ReplicaHooks)
	sess, hello, err := wire.Accept(r, w, srv.answer, srv.handle)
	if err != nil {
		return err
	}
	srv.logf("session from client %q started (root %s, append-only %v)", hello.Program, j.Root(), opts.AppendOnly)
	defer srv.dropPending() // runs after sess.Wait: every handler has returned
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	err = sess.Wait()
	if rerr := srv.replica.Close(); rerr != nil {
		srv.logf("%v", rerr)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The client vanished mid-frame (killed, link cut). For the server that is the same end
		// of session as a clean EOF; the work it was doing has been canceled and cleaned up.
		srv.logf("client went away mid-frame: %v", err)
		return nil
	}
	return err
}

type server struct {
	opts    Options
	jail    *jail.Jail
	be      *local.Backend
	replica *replica.Receiver
	logger  logger

	// sessionLocks are the lock files this session saved: in append-only mode they are the
	// only files a client may remove, so it can release its own locks but not anyone else's
	// (an administrator's prune lock above all).
	mu           sync.Mutex
	sessionLocks map[string]bool

	pending pendingFiles // streamed uploads waiting for their commit
}

func (s *server) answer(wire.Hello) wire.HelloReply {
	return wire.HelloReply{
		Program:    s.opts.Program,
		Caps:       []string{wire.CapStore, wire.CapStream, wire.CapReplica, wire.CapCleanTemp, wire.CapReplicaMark},
		Root:       s.jail.Root(),
		AppendOnly: s.opts.AppendOnly,
	}
}

func (s *server) logf(format string, args ...any) { s.logger.printf(format, args...) }

// logger serialises log lines from concurrent handlers.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) printf(format string, args ...any) {
	if l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s snapferry serve: %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// hasUpload tells the ops whose request carries a body; for every other op a body is an error.
func hasUpload(op wire.Op) bool {
	return op == wire.OpSave || op == wire.OpSaveStream || op == wire.OpRepWrite || op == wire.OpRepPut
}

func (s *server) handle(ctx context.Context, st *wire.Stream, req wire.Request) {
	if req.Upload != hasUpload(req.Op) {
		st.RespondError(fmt.Errorf("op %s: %w: request body flag %v is wrong for this op", req.Op, wire.ErrMalformed, req.Upload))
		return
	}
	var err error
	switch req.Op {
	case wire.OpSave:
		err = s.save(ctx, st, req.Args)
	case wire.OpLoad:
		err = s.load(ctx, st, req.Args)
	case wire.OpStat:
		err = s.stat(ctx, st, req.Args)
	case wire.OpList:
		err = s.list(ctx, st, req.Args)
	case wire.OpRemove:
		err = s.remove(ctx, st, req.Args)
	case wire.OpCreate:
		err = s.create(ctx, st)
	case wire.OpFreeSpace:
		err = s.freeSpace(ctx, st)
	case wire.OpSaveStream:
		err = s.saveStream(ctx, st, req.Args)
	case wire.OpCommitStream:
		err = s.commitStream(ctx, st, req.Args)
	case wire.OpCleanTemp:
		err = s.cleanTemp(ctx, st, req.Args)
	case wire.OpRepBegin, wire.OpRepHashes, wire.OpRepWrite, wire.OpRepPut, wire.OpRepCommit, wire.OpRepAbort, wire.OpRepMark:
		if s.opts.AppendOnly && req.Op != wire.OpRepHashes && req.Op != wire.OpRepMark {
			s.logf("refused %s (append-only)", req.Op)
			err = fmt.Errorf("%s: %w: the server is append-only and replicas are rewritten in place", req.Op, wire.ErrRefused)
			break
		}
		err = s.replica.Handle(ctx, st, req)
	default:
		s.logf("refused unknown op %s", req.Op)
		err = fmt.Errorf("op %s: %w: this server does not know it (update snapferry on the server)", req.Op, wire.ErrRefused)
	}
	if err != nil {
		st.RespondError(err)
	}
}

package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/transfer/serve/jail"
	"github.com/snapferry/snapferry/transfer/wire"
)

// Options configure one serving session.
type Options struct {
	Root       string    // the folder served; must exist
	AppendOnly bool      // refuse removing (except locks) and rewriting
	Log        io.Writer // refusals and recoveries, one line each; nil discards
	Program    string    // this program's version, announced in the handshake
}

// Serve answers one client on r and w until the client closes its side (nil), ctx ends, or the
// link fails. It never closes r or w.
func Serve(ctx context.Context, r io.Reader, w io.Writer, opts Options) error {
	j, err := jail.New(opts.Root)
	if err != nil {
		return err
	}
	srv := &server{opts: opts, jail: j, be: local.New(j.Root())}
	srv.logger.w = opts.Log
	sess, hello, err := wire.Accept(r, w, srv.answer, srv.handle)
	if err != nil {
		return err
	}
	srv.logf("session from client %q started (root %s, append-only %v)", hello.Program, j.Root(), opts.AppendOnly)
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	err = sess.Wait()
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
	opts   Options
	jail   *jail.Jail
	be     *local.Backend
	logger logger
}

func (s *server) answer(wire.Hello) wire.HelloReply {
	return wire.HelloReply{
		Program:    s.opts.Program,
		Caps:       []string{wire.CapStore},
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

func (s *server) handle(ctx context.Context, st *wire.Stream, req wire.Request) {
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
	default:
		s.logf("refused unknown op %s", req.Op)
		err = fmt.Errorf("op %s: %w: this server does not know it (update snapferry on the server)", req.Op, wire.ErrRefused)
	}
	if err != nil {
		st.RespondError(err)
	}
}

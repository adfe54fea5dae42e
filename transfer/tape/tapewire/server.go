package tapewire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/wire"
)

// ServeOptions configure Serve.
type ServeOptions struct {
	Library tape.Library // usually a *tape.Local on the drive
	Program string       // this program's version, for the handshake
	Log     io.Writer    // one line per session event; nil discards
}

// Serve answers one client on r and w until it goes away, then closes the library (open sets
// are aborted, the catalog copy is written). It never closes r or w.
func Serve(ctx context.Context, r io.Reader, w io.Writer, o ServeOptions) error {
	srv := &server{o: o, open: map[string]tape.SetStream{}}
	sess, hello, err := wire.Accept(r, w, func(wire.Hello) wire.HelloReply {
		return wire.HelloReply{Program: o.Program, Caps: []string{CapTape}}
	}, srv.handle)
	if err != nil {
		return err
	}
	srv.logf("tape session from client %q started", hello.Program)
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	err = sess.Wait()
	if errors.Is(err, io.ErrUnexpectedEOF) {
		srv.logf("client went away mid-frame: %v", err)
		err = nil
	}
	if cerr := srv.closeAll(); cerr != nil {
		srv.logf("ending the tape session: %v", cerr)
		if err == nil {
			err = cerr
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

type server struct {
	o    ServeOptions
	mu   sync.Mutex
	open map[string]tape.SetStream
	logm sync.Mutex
}

func (s *server) logf(format string, args ...any) {
	if s.o.Log == nil {
		return
	}
	s.logm.Lock()
	defer s.logm.Unlock()
	fmt.Fprintf(s.o.Log, "%s snapferry serve: %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// closeAll aborts sets the client left open and ends the library's session.
func (s *server) closeAll() error {
	s.mu.Lock()
	for id, w := range s.open {
		s.logf("save set %s was not finished by the client; it stays incomplete", id)
		w.Abort()
	}
	s.open = map[string]tape.SetStream{}
	s.mu.Unlock()
	return s.o.Library.Close()
}

func (s *server) handle(ctx context.Context, st *wire.Stream, req wire.Request) {
	if req.Upload != (req.Op == OpData) {
		st.RespondError(fmt.Errorf("op %s: %w: request body flag %v is wrong for this op", opName(req.Op), wire.ErrMalformed, req.Upload))
		return
	}
	var err error
	switch req.Op {
	case OpBegin:
		err = s.begin(ctx, st, req.Args)
	case OpData:
		err = s.data(st, req.Args)
	case OpFinish:
		err = s.finish(st, req.Args)
	case OpAbort:
		s.mu.Lock()
		w := s.open[string(req.Args)]
		delete(s.open, string(req.Args))
		s.mu.Unlock()
		if w != nil {
			w.Abort()
		}
		err = st.Respond(wire.Response{})
	case OpRead:
		err = s.read(ctx, st, req.Args)
	case OpCatalog:
		var cat *tape.Catalog
		if cat, err = s.o.Library.Catalog(ctx); err == nil {
			err = respondJSON(st, cat)
		}
	case OpClose:
		if err = s.closeAll(); err == nil {
			err = st.Respond(wire.Response{})
		}
	default:
		err = fmt.Errorf("op %s: %w: this server does not know it (update snapferry on the tape host)", opName(req.Op), wire.ErrRefused)
	}
	if err != nil {
		s.logf("%s: %v", opName(req.Op), err)
		st.RespondError(err)
	}
}

func respondJSON(st *wire.Stream, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return st.Respond(wire.Response{Body: b})
}

func (s *server) begin(ctx context.Context, st *wire.Stream, args []byte) error {
	var a beginArgs
	if err := json.Unmarshal(args, &a); err != nil {
		return fmt.Errorf("tape-begin: %w: %v", wire.ErrMalformed, err)
	}
	if a.Header.Set == "" {
		a.Header.Set = tape.NewSetID()
	}
	w, err := s.o.Library.OpenSet(ctx, a.Pool, a.Header)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.open[a.Header.Set] = w
	s.mu.Unlock()
	s.logf("save set %s of %s from %s started", a.Header.Set, a.Header.Source, a.Header.Host)
	return respondJSON(st, a.Header)
}

func (s *server) lookup(id string) (tape.SetStream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.open[id]
	if w == nil {
		return nil, fmt.Errorf("save set %s is not open on this session", id)
	}
	return w, nil
}

// data copies an upload into the set; the answer comes once it is all on tape (or failed).
func (s *server) data(st *wire.Stream, args []byte) error {
	w, err := s.lookup(string(args))
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, st); err != nil {
		return fmt.Errorf("save set %s: %w", args, err)
	}
	return st.Respond(wire.Response{})
}

func (s *server) finish(st *wire.Stream, args []byte) error {
	var a finishArgs
	if err := json.Unmarshal(args, &a); err != nil {
		return fmt.Errorf("tape-finish: %w: %v", wire.ErrMalformed, err)
	}
	w, err := s.lookup(a.Set)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.open, a.Set)
	s.mu.Unlock()
	e, err := w.Finish(a.Info)
	if err != nil {
		return err
	}
	s.logf("save set %s finished: %d bytes, part 1 on volume %s file %d", e.ID, e.Bytes, e.Parts[0].Volume, e.Parts[0].File)
	return respondJSON(st, e)
}

// read answers with the set's entry, then streams it. A failure after the answer ends the body
// with the error, which the client's Read returns.
func (s *server) read(ctx context.Context, st *wire.Stream, args []byte) error {
	var a readArgs
	if err := json.Unmarshal(args, &a); err != nil {
		return fmt.Errorf("tape-read: %w: %v", wire.ErrMalformed, err)
	}
	cat, err := s.o.Library.Catalog(ctx)
	if err != nil {
		return err
	}
	e, err := cat.Find(a.Ref, a.Source)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(e)
	if err := st.Respond(wire.Response{Streamed: true, Body: b}); err != nil {
		return nil
	}
	if _, err := s.o.Library.ReadSet(ctx, e.ID, "", st); err != nil {
		s.logf("read save set %s: %v", e.ID, err)
		st.CloseWithError(err)
		return nil
	}
	st.CloseWrite()
	return nil
}

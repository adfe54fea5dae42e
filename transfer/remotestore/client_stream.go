package remotestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/wire"
)

var _ store.StreamSaver = (*Client)(nil)

// SaveStream starts a file whose name is not known yet (OpSaveStream): its bytes go to the
// server as they are written, paced by the stream's window, so a pack needs no local spool.
// ctx bounds the upload up to Commit, as it bounds a Save. An open pending file holds one of
// the server's stream slots (Server().MaxStreams) until Commit or Abort.
//
// Against a server without CapStream (an older snapferry), and for lock files (serve takes
// them whole only), the error wraps errors.ErrUnsupported: the caller then uses Save.
func (c *Client) SaveStream(ctx context.Context, k store.Kind) (store.Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, c.wrap("stream save", k, err)
	}
	if !c.server.HasCap(wire.CapStream) {
		return nil, c.wrap("stream save", k, fmt.Errorf("the server (snapferry %s) takes whole files only: %w", c.server.Program, errors.ErrUnsupported))
	}
	if k == store.KindLocks {
		return nil, c.wrap("stream save", k, fmt.Errorf("lock files are saved whole: %w", errors.ErrUnsupported))
	}
	// Refused here rather than by the server: the server only answers once the body ended.
	if err := store.ValidateStreamKind(k); err != nil {
		return nil, c.wrap("stream save", k, err)
	}
	st, err := c.open(ctx, wire.OpSaveStream, wire.EncodeKind(k), true)
	if err != nil {
		return nil, c.wrap("stream save", k, err)
	}
	return &pending{c: c, kind: k, st: st}, nil
}

// pending is a file being uploaded by SaveStream.
type pending struct {
	c    *Client
	kind store.Kind
	st   *wire.Stream // nil once committed or aborted
	err  error        // the first failed write: later writes and Commit return it
}

func (p *pending) Write(b []byte) (int, error) {
	if p.st == nil {
		return 0, p.c.wrap("stream save", p.kind, errors.New("write to a finished pending file"))
	}
	if p.err != nil {
		return 0, p.err
	}
	// Once the server answered (it only does early to refuse: no space, a refused kind), the
	// stream's Write returns that answer, so the error says why.
	n, err := p.st.Write(b)
	if err != nil {
		p.err = p.c.wrap("stream save", p.kind, err)
	}
	return n, p.err
}

// Commit ends the upload, takes the token the server answers with, and names the file with it
// (OpCommitStream): ErrExist when h exists, as for Save.
func (p *pending) Commit(ctx context.Context, h store.Handle) error {
	if p.st == nil {
		return p.c.wrap("save", h, errors.New("pending file already finished"))
	}
	st := p.st
	p.st = nil
	defer st.Close()
	if p.err != nil {
		st.CloseWithError(p.err)
		return p.err
	}
	if err := ctx.Err(); err != nil {
		st.CloseWithError(err)
		return p.c.wrap("save", h, err)
	}
	if err := st.CloseWrite(); err != nil {
		return p.c.wrap("save", h, err)
	}
	resp, err := st.Response()
	if err != nil {
		return p.c.wrap("save", h, err)
	}
	tok, err := wire.DecodeStreamToken(resp.Body)
	if err != nil {
		return p.c.wrap("save", h, err)
	}
	// The upload's slot goes back before the commit takes one: pending files committed at
	// once must not wait for each other's slots.
	st.Close()
	args := wire.EncodeCommitStreamArgs(wire.CommitStreamArgs{Token: tok, Handle: h})
	if _, err := p.c.call(ctx, wire.OpCommitStream, args); err != nil {
		return p.c.wrap("save", h, err)
	}
	return nil
}

// Abort ends the upload with an error, so the server drops its temp file, and gives the
// stream back.
func (p *pending) Abort() {
	if p.st == nil {
		return
	}
	st := p.st
	p.st = nil
	// The error end is what drops the server's file; Close then cancels the request, which
	// would drop it too, and gives the slot back once the server answered. After an answer
	// (a refusal) CloseWithError fails, harmlessly.
	st.CloseWithError(errors.New("upload aborted by the client"))
	st.Close()
}

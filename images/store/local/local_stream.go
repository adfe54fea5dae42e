package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/writeback"
)

// writebackEvery is how many bytes of a streamed file are written between two requests to the
// kernel to start writing them out: a 32 MiB pack is mostly on disk when its Commit fsyncs it,
// so the backup worker that filled it waits for the last stretch only, and the disk writes while
// the next packs fill instead of in bursts at each commit.
const writebackEvery = 8 << 20

var _ store.StreamSaver = (*Backend)(nil)

// SaveStream writes a temp file in the kind's folder (so the final link stays on one file
// system) and names it at Commit, as Save does. A crash leaves a temp file that List never shows
// and Cleanup removes.
func (b *Backend) SaveStream(ctx context.Context, k store.Kind) (store.Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("save %s: %w", k, err)
	}
	if err := store.ValidateStreamKind(k); err != nil {
		return nil, fmt.Errorf("save %s in %s: %w", k, b.root, err)
	}
	p, err := b.newPending(k, filepath.Join(b.root, string(k)))
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", k, err)
	}
	return p, nil
}

// newPending starts a temp file of kind k in dir, making dir on first use (shard folders of
// data/ are made when the first pack lands in them).
func (b *Backend) newPending(k store.Kind, dir string) (*pending, error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if errors.Is(err, fs.ErrNotExist) {
		if mkErr := os.MkdirAll(dir, 0o700); mkErr != nil {
			return nil, fmt.Errorf("create folder %s: %w", dir, mapErr(mkErr))
		}
		f, err = os.CreateTemp(dir, tempPrefix+"*")
	}
	if err != nil {
		return nil, fmt.Errorf("create temp file in %s: %w", dir, mapErr(err))
	}
	return &pending{b: b, kind: k, f: f, wb: writeback.Start(int(f.Fd()), writebackEvery, b.writeOut)}, nil
}

type pending struct {
	b    *Backend
	kind store.Kind
	f    *os.File // nil once committed or aborted
	err  error    // the first write error
	wb   *writeback.Writer
}

func (p *pending) Write(b []byte) (int, error) {
	if p.f == nil {
		return 0, errors.New("write to a finished pending file")
	}
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.f.Write(b)
	if err != nil {
		p.err = fmt.Errorf("write %s: %w", p.f.Name(), mapErr(err))
	}
	p.wb.Wrote(n)
	return n, p.err
}

func (p *pending) Commit(ctx context.Context, h store.Handle) error {
	if p.f == nil {
		return fmt.Errorf("save %s: pending file already finished", h)
	}
	defer p.Abort() // removes the temp file unless it was published
	if h.Kind != p.kind {
		return fmt.Errorf("save %s: pending file was started as %s", h, p.kind)
	}
	if err := store.Validate(h); err != nil {
		return fmt.Errorf("save %s in %s: %w", h, p.b.root, err)
	}
	if p.err != nil {
		return fmt.Errorf("save %s: %w", h, p.err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	p.wb.Stop()
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("save %s: fsync %s: %w", h, p.f.Name(), mapErr(err))
	}
	tmp := p.f.Name()
	f := p.f
	p.f = nil
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save %s: close %s: %w", h, tmp, mapErr(err))
	}
	final := p.b.Path(h)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save %s: create folder %s: %w", h, dir, mapErr(err))
	}
	if err := publish(tmp, final); err != nil { // removes tmp on ErrExist
		_ = os.Remove(tmp)
		return fmt.Errorf("save %s in %s: %w", h, p.b.root, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	return nil
}

func (p *pending) Abort() {
	if p.f == nil {
		return
	}
	p.wb.Stop()
	_ = p.f.Close()
	_ = os.Remove(p.f.Name())
	p.f = nil
}

package guestfs

import (
	"fmt"
	"sync"
)

// guard runs fn and turns a panic into an error naming the volume. It is the last line of
// defence: the file-system libraries index slices with numbers read from the image, and a
// damaged or hostile image must end in an error, not in a crashed backup tool.
func guard(vol string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: the file system is damaged (reader failed: %v)", vol, p)
		}
	}()
	return fn()
}

// guarded serialises calls into one file system (the libraries keep one read position) and
// guards each.
type guarded struct {
	mu  sync.Mutex
	fs  FS
	vol string
}

func (g *guarded) Type() string { return g.fs.Type() }

func (g *guarded) Lstat(name string) (e Entry, err error) {
	name, err = cleanName(name)
	if err != nil {
		return e, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	err = guard(g.vol, func() error { e, err = g.fs.Lstat(name); return err })
	return e, err
}

func (g *guarded) ReadDir(name string) (es []Entry, err error) {
	name, err = cleanName(name)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	err = guard(g.vol, func() error { es, err = g.fs.ReadDir(name); return err })
	return es, err
}

func (g *guarded) Open(name string) (f File, err error) {
	name, err = cleanName(name)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	err = guard(g.vol, func() error { f, err = g.fs.Open(name); return err })
	if err != nil {
		return nil, err
	}
	return &guardedFile{f: f, g: g}, nil
}

type guardedFile struct {
	f File
	g *guarded
}

func (gf *guardedFile) Size() int64 { return gf.f.Size() }

func (gf *guardedFile) ReadAt(p []byte, off int64) (n int, err error) {
	gf.g.mu.Lock()
	defer gf.g.mu.Unlock()
	err = guard(gf.g.vol, func() error { n, err = gf.f.ReadAt(p, off); return err })
	return n, err
}

func (gf *guardedFile) Close() error {
	gf.g.mu.Lock()
	defer gf.g.mu.Unlock()
	return guard(gf.g.vol, gf.f.Close)
}

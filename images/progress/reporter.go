package progress

import "sync/atomic"

// Reporter receives progress from one backup or restore run.
//
// Start opens an item (a disk, a file tree, a restore) with its expected byte total; a negative
// total means unknown (a tree walk does not know its size in advance). Add reports bytes done:
// read, skipped as a hole, or written on restore. File counts one file or directory entry done.
// Done closes the item. An item's calls arrive between its Start and Done; Add and File may come
// from several goroutines at once.
type Reporter interface {
	Start(name string, total int64)
	Add(bytes int64)
	File(n int)
	Done()
}

// Nop discards everything. It is the default when a caller passes no Reporter.
type Nop struct{}

func (Nop) Start(string, int64) {}
func (Nop) Add(int64)           {}
func (Nop) File(int)            {}
func (Nop) Done()               {}

// OrNop returns r, or Nop when r is nil, so sources never have to check for nil.
func OrNop(r Reporter) Reporter {
	if r == nil {
		return Nop{}
	}
	return r
}

// Counter tallies what it is told with atomic counters. Renderers poll it with Snapshot from
// their own goroutine (a ticker), which keeps the hot path free of printing; tests use it to
// check what a run reported.
type Counter struct {
	name  atomic.Pointer[string]
	total atomic.Int64
	bytes atomic.Int64
	files atomic.Int64
	items atomic.Int64
	done  atomic.Int64
}

// State is a consistent-enough copy of a Counter's values for display.
type State struct {
	Name  string // the item most recently started
	Total int64  // its expected bytes, negative when unknown
	Bytes int64  // bytes done over all items
	Files int64  // files done over all items
	Items int    // items started
	Done  int    // items done
}

func (c *Counter) Start(name string, total int64) {
	c.name.Store(&name)
	c.total.Store(total)
	c.items.Add(1)
}

func (c *Counter) Add(n int64) { c.bytes.Add(n) }
func (c *Counter) File(n int)  { c.files.Add(int64(n)) }
func (c *Counter) Done()       { c.done.Add(1) }

// Snapshot reads the counters.
func (c *Counter) Snapshot() State {
	s := State{
		Total: c.total.Load(),
		Bytes: c.bytes.Load(),
		Files: c.files.Load(),
		Items: int(c.items.Load()),
		Done:  int(c.done.Load()),
	}
	if p := c.name.Load(); p != nil {
		s.Name = *p
	}
	return s
}

var (
	_ Reporter = Nop{}
	_ Reporter = (*Counter)(nil)
)

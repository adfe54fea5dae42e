package writeback

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Writer counts bytes written to one file and asks for a write-out of the file every Every bytes.
//
// sync_file_range(SYNC_FILE_RANGE_WRITE) only queues the write-out; it runs in its own goroutine
// anyway, so a congested disk queue never holds up a writer. A kernel without it (ESXi's
// VMkernel may lack it, or a filesystem refuses it) turns the requests off: the fsync still makes
// the file durable, only later.
type Writer struct {
	fd      int
	every   int64
	written atomic.Int64
	kick    chan struct{}
	done    chan struct{}
	request func(fd int) error // SyncWrite; tests count the calls
	stopped sync.Once
}

// Start starts write-out requests for fd every `every` bytes, made with request (SyncWrite
// outside tests). Stop must be called before the file's final fsync and close.
func Start(fd int, every int64, request func(fd int) error) *Writer {
	w := &Writer{fd: fd, every: every, kick: make(chan struct{}, 1), done: make(chan struct{}), request: request}
	go w.run()
	return w
}

// SyncWrite queues the write-out of fd's dirty pages.
func SyncWrite(fd int) error { return unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE) }

func (w *Writer) run() {
	defer close(w.done)
	on := true
	for range w.kick {
		if on && w.request(w.fd) != nil {
			on = false
		}
	}
}

// Wrote counts n bytes written and asks for a write-out every Every bytes. A request while the
// last one is still running is dropped: that one covers these pages too.
func (w *Writer) Wrote(n int) {
	total := w.written.Add(int64(n))
	if total/w.every == (total-int64(n))/w.every {
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Stop waits for a running write-out request; call it before the final fsync and before the
// file is closed. Calling it again does nothing.
func (w *Writer) Stop() {
	w.stopped.Do(func() {
		close(w.kick)
		<-w.done
	})
}

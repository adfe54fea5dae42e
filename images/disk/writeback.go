package disk

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// writebackEvery is how many bytes a restore writes between two requests to the kernel to start
// writing them out.
const writebackEvery = 64 << 20

// writeback has the kernel start writing a restored file out while the restore goes on, so the
// fsync at the end waits for the last stretch only. Left alone, the kernel starts only when
// dirty pages pass dirty_background_ratio (10% of RAM: 2.4 GiB on a 24 GiB host): restoring the
// 1.7 GiB benchmark image kept all of it dirty until the fsync, which then took 1.06 of the
// restore's 3.05 s while the CPUs idled.
//
// sync_file_range(SYNC_FILE_RANGE_WRITE) only queues the write-out; it runs in its own goroutine
// anyway, so a congested disk queue never holds up a worker. A kernel without it (ESXi's
// VMkernel may lack it, or a filesystem refuses it) turns writeback off: the fsync still makes
// the restore durable, only later.
type writeback struct {
	fd      int
	written atomic.Int64
	kick    chan struct{}
	done    chan struct{}
	request func(fd int) error // syncWrite; tests count the calls
	stopped sync.Once
}

// startWriteback starts write-out requests for fd, made with request (syncWrite outside tests).
func startWriteback(fd int, request func(fd int) error) *writeback {
	w := &writeback{fd: fd, kick: make(chan struct{}, 1), done: make(chan struct{}), request: request}
	go w.run()
	return w
}

func syncWrite(fd int) error { return unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE) }

func (w *writeback) run() {
	defer close(w.done)
	on := true
	for range w.kick {
		if on && w.request(w.fd) != nil {
			on = false
		}
	}
}

// wrote counts n bytes written and asks for a write-out every writebackEvery bytes. A request
// while the last one is still running is dropped: that one covers these pages too.
func (w *writeback) wrote(n int) {
	total := w.written.Add(int64(n))
	if total/writebackEvery == (total-int64(n))/writebackEvery {
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// stop waits for a running write-out request; call it before the final fsync and before the
// file is closed. Calling it again does nothing.
func (w *writeback) stop() {
	w.stopped.Do(func() {
		close(w.kick)
		<-w.done
	})
}

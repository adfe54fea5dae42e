package writeback

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/cron/testkit"
)

// every is the stretch the tests use.
const every = 64 << 20

// drained waits until w's run loop has taken the pending request.
func drained(t *testing.T, w *Writer) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, "the write-out request to be taken", func() bool { return len(w.kick) == 0 })
}

func TestWritebackEveryStretch(t *testing.T) {
	var calls atomic.Int64
	w := Start(-1, every, func(int) error { calls.Add(1); return nil })
	w.Wrote(every - 1)
	if len(w.kick) != 0 {
		t.Fatal("write-out requested before a whole stretch was written")
	}
	w.Wrote(1)
	drained(t, w)
	for range 9 {
		w.Wrote(every)
		drained(t, w)
	}
	w.Stop()
	w.Stop() // a second stop, as the deferred one after the explicit one, does nothing
	if got := calls.Load(); got != 10 {
		t.Fatalf("%d write-out requests for 10 stretches", got)
	}
}

func TestWritebackOffWhereUnsupported(t *testing.T) {
	var calls atomic.Int64
	w := Start(-1, every, func(int) error { calls.Add(1); return unix.ENOSYS })
	for range 10 {
		w.Wrote(every)
		drained(t, w)
	}
	w.Stop()
	if got := calls.Load(); got != 1 {
		t.Fatalf("%d calls of a missing system call, want 1 then none", got)
	}
}

// The real system call on a real file (the VFS implements it for every Linux filesystem).
func TestSyncWriteOnAFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "disk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := SyncWrite(int(f.Fd())); err != nil {
		t.Fatalf("sync_file_range on a regular file of this filesystem: %v", err)
	}
}

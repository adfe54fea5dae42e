package repo

import (
	"context"
	"io"

	"github.com/snapferry/snapferry/images/store"
)

// runAhead is the most bytes of the next run a batch load asks for while it reads the current
// one, on a store whose link wants more loads in flight (store.LoadParallelism: an ssh:// store
// with read lanes on a long round trip). Through 25 ms each way the second half of the full-size
// image restore read runs of ~0.9 MB each (compressible blocks, two or three per pack and batch):
// each waited a round trip for its first byte and then arrived in a few ms, so the eight
// workers kept the four sessions at ~25 of their ~38 MB/s (docs/benchmarks.md, "Read lanes
// filled"). Asking for the next short run before reading this one hides that round trip; a
// long run is window, not round trips, and is asked for when it is due. The bytes asked ahead
// wait in the session's buffers at most: runAhead per batch load.
const runAhead = 2 << 20

// openedRun is the result of a ranged Load sent ahead.
type openedRun struct {
	rd  io.ReadCloser
	err error
}

// loadRuns reads blobs (sorted by pack and offset) run by run and delivers them. On a store
// that asks for more loads in flight, the Load of the next run goes out while this one is read
// when it is at most runAhead bytes; elsewhere (a local folder, a LAN) one run at a time.
func (r *Repository) loadRuns(ctx context.Context, t BlobType, blobs []batchBlob, fn func(int, []byte, error) error) error {
	ahead := store.LoadParallelismOf(r.be) > 0
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next chan openedRun // the Load of the run at the head of blobs, sent ahead
	defer func() {
		if next != nil { // a load stopped early: the run sent ahead is not read
			cancel() // first, so that a Load waiting on a stuck link gives up rather than hold us
			if o := <-next; o.rd != nil {
				o.rd.Close()
			}
		}
	}()
	for len(blobs) > 0 {
		n := batchRun(blobs)
		if !ahead {
			rd, err := r.openRun(ctx, blobs[:n])
			if err := r.loadRun(ctx, t, blobs[:n], rd, err, fn); err != nil {
				return err
			}
			blobs = blobs[n:]
			continue
		}
		cur := next
		if cur == nil {
			cur = r.sendRun(ctx, blobs[:n])
		}
		next = nil
		if rest := blobs[n:]; len(rest) > 0 {
			if m := batchRun(rest); runBytes(rest[:m]) <= runAhead {
				next = r.sendRun(ctx, rest[:m])
			}
		}
		o := <-cur
		if err := r.loadRun(ctx, t, blobs[:n], o.rd, o.err, fn); err != nil {
			return err
		}
		blobs = blobs[n:]
	}
	return nil
}

// sendRun sends run's ranged Load without waiting for its answer, which arrives on the channel.
func (r *Repository) sendRun(ctx context.Context, run []batchBlob) chan openedRun {
	ch := make(chan openedRun, 1)
	go func() {
		rd, err := r.openRun(ctx, run)
		ch <- openedRun{rd, err}
	}()
	return ch
}

// runBytes is how many bytes one ranged Load of run reads.
func runBytes(run []batchBlob) int64 {
	start, end := runRange(run)
	return end - start
}

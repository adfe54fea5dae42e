package repo

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
)

// openLoads is a store that counts the pack loads open at once (sent and not closed), and asks
// for advise loads in flight (store.LoadParallelism) as an ssh:// store on a long link does.
// With hold, the j-th body closed waits until pack load j+1 was sent (the last one closes at
// once), or holdMax: a load sent ahead is then seen open beside the current one however the
// goroutines are scheduled, and a reader that sends none is seen to wait.
type openLoads struct {
	store.Backend
	advise int
	hold   bool
	sent   []chan struct{} // sent[k] is closed when pack load k+1 was sent

	mu        sync.Mutex
	open, top int
	loads     int
	closed    int
}

const holdMax = 5 * time.Second

func (s *openLoads) LoadParallelism() int { return s.advise }

func (s *openLoads) Load(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.Backend.Load(ctx, h, offset, length)
	if err != nil || h.Kind != store.KindData {
		return rc, err
	}
	s.mu.Lock()
	s.open++
	s.loads++
	s.top = max(s.top, s.open)
	if s.loads <= len(s.sent) {
		close(s.sent[s.loads-1])
	}
	s.mu.Unlock()
	return &countedBody{ReadCloser: rc, s: s}, nil
}

type countedBody struct {
	io.ReadCloser
	s    *openLoads
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() {
		b.s.mu.Lock()
		b.s.closed++
		j := b.s.closed
		b.s.mu.Unlock()
		if b.s.hold && j < len(b.s.sent) {
			select {
			case <-b.s.sent[j]:
			case <-time.After(holdMax):
			}
		}
		b.s.mu.Lock()
		b.s.open--
		b.s.mu.Unlock()
	})
	return b.ReadCloser.Close()
}

// TestLoadBlobsSendsTheNextShortRunAhead: on a store that asks for more loads in flight, a batch
// of short runs (here one per pack) has the next run's Load out while it reads the current one,
// never more than that, and every blob still arrives once with its bytes; on any other store
// the runs are read one at a time, as before.
func TestLoadBlobsSendsTheNextShortRunAhead(t *testing.T) {
	dir, r, mod := newRepoEncryptedIf(t, false)
	var ids []ID
	var datas [][]byte
	for p := range 4 { // four packs, so four runs
		for i := range 3 {
			d := randBlock(uint64(1000+10*p+i), 3000+100*i)
			ids, datas = append(ids, mustSaveWhole(t, r, d)), append(datas, d)
		}
		mustFlush(t, r)
	}
	for _, c := range []struct {
		name    string
		advise  int
		wantTop int
	}{
		{"local or LAN", 0, 1},
		{"long link", 8, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &openLoads{Backend: local.New(dir), advise: c.advise, hold: c.advise > 0}
			for range 4 {
				s.sent = append(s.sent, make(chan struct{}))
			}
			rb := testOpenOn(t, s, mod)
			got := loadBatch(t, rb, ids)
			for i, g := range got {
				if g.calls != 1 || g.err != nil || !bytes.Equal(g.data, datas[i]) {
					t.Fatalf("position %d: %d calls, err %v, %d bytes, want %d", i, g.calls, g.err, len(g.data), len(datas[i]))
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.loads != 4 || s.top != c.wantTop || s.open != 0 {
				t.Fatalf("%d pack loads, at most %d open at once, %d left open; want 4, %d, 0", s.loads, s.top, s.open, c.wantTop)
			}
		})
	}
}

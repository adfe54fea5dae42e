package remotestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/serve"
	"github.com/snapferry/snapferry/transfer/wire"
	"github.com/snapferry/snapferry/transfer/wire/wiretest"
)

// pipeLanes opens lanes as in-process servers of one folder over OS pipes, and counts the far
// sides started and ended. (transfer/storespec tests the same over a loopback sshd.)
type pipeLanes struct {
	t       *testing.T
	root    string
	started atomic.Int32
	ended   atomic.Int32
	mu      sync.Mutex
	links   map[int]*wiretest.Link
}

func newPipeLanes(t *testing.T, root string) *pipeLanes {
	return &pipeLanes{t: t, root: root, links: map[int]*wiretest.Link{}}
}

func (p *pipeLanes) open(ctx context.Context, n int) (*Client, func() error, error) {
	l := wiretest.Pipes(p.t)
	done := make(chan error, 1)
	go func() {
		done <- serve.Serve(context.Background(), l.ServerR, l.ServerW, serve.Options{Root: p.root})
		l.ServerW.Close()
	}()
	c, err := New(ctx, l.ClientR, l.ClientW, Options{Location: fmt.Sprintf("pipe lane %d", n)})
	if err != nil {
		return nil, nil, err
	}
	p.started.Add(1)
	p.mu.Lock()
	p.links[n] = l
	p.mu.Unlock()
	return c, func() error {
		select {
		case err := <-done:
			p.ended.Add(1)
			return err
		case <-time.After(10 * time.Second):
			return errors.New("serve did not end after its client closed")
		}
	}, nil
}

// kill cuts lane n's far side off, as a far serve killed or a session torn down.
func (p *pipeLanes) kill(n int) {
	p.mu.Lock()
	l := p.links[n]
	p.mu.Unlock()
	l.ServerR.Close()
	l.ServerW.Close()
}

// testPack saves a pack of size bytes in a fresh in-process store and returns the client.
func testPack(t *testing.T, size int) (*Client, string, store.Handle, []byte) {
	root := t.TempDir()
	c := inProcess(t, root, serve.Options{})
	ctx := context.Background()
	if err := c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	pack := make([]byte, size)
	for i := range pack {
		pack[i] = byte(i*7 + i>>11)
	}
	h := store.Handle{Kind: store.KindData, Name: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	if err := c.Save(ctx, h, bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	return c, root, h, pack
}

// loadAll opens one load per range at once (so all are in flight together), then reads and
// checks each.
func loadAll(ctx context.Context, be store.Backend, h store.Handle, pack []byte, ranges [][2]int64) error {
	bodies := make([]io.ReadCloser, len(ranges))
	defer func() {
		for _, b := range bodies {
			if b != nil {
				b.Close()
			}
		}
	}()
	for i, r := range ranges {
		rc, err := be.Load(ctx, h, r[0], r[1])
		if err != nil {
			return err
		}
		bodies[i] = rc
	}
	for i, r := range ranges {
		got, err := io.ReadAll(bodies[i])
		if err != nil {
			return err
		}
		if !bytes.Equal(got, pack[r[0]:r[0]+r[1]]) {
			return fmt.Errorf("range %d+%d: wrong bytes", r[0], r[1])
		}
	}
	return nil
}

// TestLanesSpreadLargeLoads: with four large loads in flight at a time, three lanes open, every
// session serves some of them with the right bytes, and Close ends every lane's far side.
func TestLanesSpreadLargeLoads(t *testing.T) {
	c, root, h, pack := testPack(t, 8<<20)
	p := newPipeLanes(t, root)
	l := NewLaned(c, LaneOptions{Open: p.open, After: 1, MinRoundTrip: -1})
	ctx := context.Background()
	ranges := [][2]int64{{0, 2 << 20}, {2 << 20, 2 << 20}, {4 << 20, 2 << 20}, {6 << 20, 2 << 20}}
	deadline := time.Now().Add(time.Minute)
	for {
		if err := loadAll(ctx, l, h, pack, ranges); err != nil {
			t.Fatal(err)
		}
		stats := l.LaneStats()
		used := 0
		for _, st := range stats {
			if st.Loads > 0 {
				used++
			}
		}
		if len(stats) == 1+DefaultLanes && used == len(stats) {
			t.Logf("sessions: %s", FormatLaneStats(stats))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute of four loads at a time: %s", FormatLaneStats(stats))
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if s, e := p.started.Load(), p.ended.Load(); s != DefaultLanes || e != s {
		t.Fatalf("%d lanes started, %d far sides ended after Close; want %d and %d", s, e, DefaultLanes, DefaultLanes)
	}
	if _, err := c.Stat(ctx, h); err == nil {
		t.Fatal("the primary session still answers after Close")
	}
}

// TestNoLanesForSmallOrFewLoads: loads under LaneLoadMin, a store read one load at a time,
// Max < 0, and a link whose round trip is under MinRoundTrip never start a lane.
func TestNoLanesForSmallOrFewLoads(t *testing.T) {
	c, root, h, pack := testPack(t, 8<<20)
	ctx := context.Background()
	p := newPipeLanes(t, root)
	l := NewLaned(c, LaneOptions{Open: p.open, After: 1, MinRoundTrip: -1})
	var small [][2]int64
	for i := range int64(16) {
		small = append(small, [2]int64{i << 19, 64 << 10})
	}
	if err := loadAll(ctx, l, h, pack, small); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		if err := loadAll(ctx, l, h, pack, [][2]int64{{0, 8 << 20}}); err != nil {
			t.Fatal(err)
		}
	}
	off := NewLaned(c, LaneOptions{Open: p.open, After: 1, Max: -1, MinRoundTrip: -1})
	if err := loadAll(ctx, off, h, pack, [][2]int64{{0, 4 << 20}, {4 << 20, 4 << 20}}); err != nil {
		t.Fatal(err)
	}
	// Pipes answer in far less than an hour: a link that short needs no lanes.
	short := NewLaned(c, LaneOptions{Open: p.open, After: 1, MinRoundTrip: time.Hour})
	if err := loadAll(ctx, short, h, pack, [][2]int64{{0, 4 << 20}, {4 << 20, 4 << 20}, {0, 2 << 20}}); err != nil {
		t.Fatal(err)
	}
	if rtt := c.Session().Stats().MinRoundTrip; rtt <= 0 || rtt >= time.Hour {
		t.Fatalf("the primary session's min round trip is %v after many answers", rtt)
	}
	if n := short.LoadParallelism(); n != 0 {
		t.Fatalf("a link under MinRoundTrip asks for %d loads in flight, want 0 (no advice)", n)
	}
	if n := l.LoadParallelism(); n != 2*(1+DefaultLanes) {
		t.Fatalf("a link that gets lanes asks for %d loads in flight, want %d", n, 2*(1+DefaultLanes))
	}
	if n := off.LoadParallelism(); n != 0 {
		t.Fatalf("lanes turned off, yet %d loads in flight asked for", n)
	}
	for _, x := range []*Laned{l, off, short} {
		x.wg.Wait() // a lane opening in the background would have started by now
	}
	if n := p.started.Load(); n != 0 {
		t.Fatalf("%d lanes opened for small loads, loads one at a time, Max < 0 or a short round trip", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLaneDeathFailsTheLoad: a lane cut off in the middle of a load fails that load with an
// error naming the lane, instead of a short read or a hang.
func TestLaneDeathFailsTheLoad(t *testing.T) {
	c, root, h, pack := testPack(t, 16<<20)
	p := newPipeLanes(t, root)
	l := NewLaned(c, LaneOptions{Open: p.open, After: 1, Max: 1, MinRoundTrip: -1})
	defer l.Close()
	ctx := context.Background()
	defer openOneLane(t, l, h).Close()
	onLane, err := l.Load(ctx, h, 0, 0) // the primary still has one open: this goes to lane 1
	if err != nil {
		t.Fatal(err)
	}
	defer onLane.Close()
	if st := l.LaneStats(); st[1].Loads != 1 {
		t.Fatalf("the third load did not go to lane 1: %s", FormatLaneStats(st))
	}
	buf := make([]byte, 64<<10)
	if _, err := io.ReadFull(onLane, buf); err != nil {
		t.Fatal(err)
	}
	p.kill(1)
	n, err := io.Copy(io.Discard, onLane)
	if err == nil {
		t.Fatalf("a load on a killed lane ended without an error after %d of %d bytes", int(n)+len(buf), len(pack))
	}
	if !strings.Contains(err.Error(), "pipe lane 1") || !errors.Is(err, wire.ErrLinkLost) {
		t.Fatalf("error does not name the lane or the lost link: %v", err)
	}
	t.Logf("the load on the killed lane: %v", err)
}

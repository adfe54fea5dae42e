package remotestore

import (
	"bytes"
	"context"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/transfer/remoterun"
	"github.com/snapferry/snapferry/transfer/sshtest"
)

// overSSH runs this test binary as the serve child through a real sshd, as ssh:// stores do.
func overSSH(t *testing.T, root string) *Client {
	t.Helper()
	conn := sshtest.Start(t, sshtest.Options{}).Dial(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() }) // closing the channel ends serve
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sess.Stderr = os.Stderr
	if err := sess.Start(remoterun.ShellQuote("env", envServeRoot+"="+root, self)); err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), stdout, stdin, Options{Location: "ssh:" + root})
	if err != nil {
		t.Fatal(err)
	}
	// Close half-closes the channel only after the session's writer stopped: x/crypto/ssh sets
	// and reads its EOF flag without a lock, so -race fails this test when Close does not wait.
	t.Cleanup(func() { c.Close() })
	return c
}

// TestManySmallLoadsOverSSH is a tree restore's traffic: workers loading small ranges of a pack
// at once, each read to its length and closed before the server's End arrives. A stream slot
// lost per raced End stalled such restores for good once all were gone; afterwards every slot
// must be free.
func TestManySmallLoadsOverSSH(t *testing.T) {
	const workers, loads = 8, 20000
	c := overSSH(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	pack := make([]byte, 4<<20)
	for i := range pack {
		pack[i] = byte(i*7 + i>>13)
	}
	h := store.Handle{Kind: store.KindData, Name: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	if err := c.Save(ctx, h, bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 4<<10)
			for i := next.Add(1); i <= loads; i = next.Add(1) {
				off, n := (i*4099)%int64(len(pack)-len(buf)), 100+i%int64(len(buf)-100)
				rd, err := c.Load(ctx, h, off, n)
				if err != nil {
					t.Errorf("load %d: %v", i, err)
					return
				}
				_, err = io.ReadFull(rd, buf[:n])
				rd.Close()
				if err != nil {
					t.Errorf("load %d: read: %v", i, err)
					return
				}
				if !bytes.Equal(buf[:n], pack[off:off+n]) {
					t.Errorf("load %d: wrong bytes", i)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d loads by %d workers in %v", loads, workers, time.Since(start).Round(time.Millisecond))
	slots := int(c.Server().MaxStreams)
	for i := range slots {
		octx, ocancel := context.WithTimeout(ctx, 5*time.Second)
		rd, err := c.Load(octx, h, 0, 10)
		ocancel()
		if err != nil {
			t.Fatalf("after %d loads only %d of %d stream slots are free: %v", loads, i, slots, err)
		}
		defer rd.Close()
	}
}

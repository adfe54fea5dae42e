package ratelimit

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapferry/snapferry/cron/clock"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "65536": 65536, "100b": 100, "100B": 100,
		"500k": 500 << 10, "500K": 500 << 10, "500KiB": 500 << 10, "500ki": 500 << 10,
		"10M": 10 << 20, "10m": 10 << 20, "1.5MiB/s": 1572864, "1.5MiB": 1572864, " 2G ": 2 << 30, "1T": 1 << 40,
		"2MB": 2_000_000, "2mb": 2_000_000, "10kB/s": 10_000, "0.5k": 512,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"": "want bytes per second", "fast": "want bytes per second", "-5M": "want bytes per second",
		"10X": `unknown unit "X"`, "10Mbit": "unknown unit", "1.2.3": "want bytes per second",
		"0.5": "below 1 byte", "99999999999T": "too large", "M": "want bytes per second",
	} {
		if _, err := ParseRate(in); err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "rate") {
			t.Errorf("ParseRate(%q) error %v; want one mentioning %q", in, err, msg)
		}
	}
}

// fakeClock advances only when someone sleeps. Sleepers that overlap wake at the latest of
// their wake times, as they would on a real clock.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps int
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps++
	if wake := c.now.Add(d); wake.After(c.now) {
		c.now = wake
	}
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// elapsedWithin checks the fake time a transfer took against the ideal (bytes - burst) / rate.
func elapsedWithin(t *testing.T, what string, got time.Duration, bytes, rate, burst int64) {
	t.Helper()
	ideal := time.Duration(float64(bytes-burst) / float64(rate) * float64(time.Second))
	if got < ideal-ideal/50 || got > ideal+ideal/50 {
		t.Errorf("%s took %s, want %s ±2%%", what, got, ideal)
	}
}

func TestReaderPaces(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(1<<20, clk)
	data := randomBytes(t, 10<<20)
	var out bytes.Buffer
	start := clk.Now()
	n, err := io.Copy(&out, NewReader(context.Background(), bytes.NewReader(data), l))
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("copy: %d bytes, %v; data intact %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	elapsedWithin(t, "10 MiB read at 1 MiB/s", clk.Now().Sub(start), int64(len(data)), 1<<20, int64(l.Burst()))
}

func TestWriterPacesAndChunks(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(500<<10, clk)
	data := randomBytes(t, 3<<20)
	var out chunkRecorder
	start := clk.Now()
	n, err := NewWriter(context.Background(), &out, l).Write(data)
	if err != nil || n != len(data) || !bytes.Equal(out.buf.Bytes(), data) {
		t.Fatalf("write: %d, %v", n, err)
	}
	if out.largest > l.Burst() {
		t.Errorf("a single write of %d bytes; burst is %d", out.largest, l.Burst())
	}
	elapsedWithin(t, "3 MiB written at 500 KiB/s", clk.Now().Sub(start), int64(len(data)), 500<<10, int64(l.Burst()))
}

type chunkRecorder struct {
	buf     bytes.Buffer
	largest int
}

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.largest = max(c.largest, len(p))
	return c.buf.Write(p)
}

// Streams sharing one limiter share the rate: together they take as long as one stream of the
// combined size.
func TestSharedLimiterAcrossStreams(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(2<<20, clk)
	start := clk.Now()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := io.Copy(NewWriter(context.Background(), io.Discard, l), bytes.NewReader(make([]byte, 2<<20))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	elapsedWithin(t, "4 streams of 2 MiB at 2 MiB/s", clk.Now().Sub(start), 8<<20, 2<<20, int64(l.Burst()))
}

// After a long idle time only one burst is free: the bucket does not hoard.
func TestIdleRefillCappedAtBurst(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(1<<20, clk)
	clk.advance(time.Hour)
	start := clk.Now()
	if _, err := NewWriter(context.Background(), io.Discard, l).Write(make([]byte, 3*l.Burst())); err != nil {
		t.Fatal(err)
	}
	elapsedWithin(t, "3 bursts after an idle hour", clk.Now().Sub(start), 3*int64(l.Burst()), 1<<20, int64(l.Burst()))
}

func TestUnlimitedNeverWaits(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(0, clk)
	data := randomBytes(t, 1<<20)
	var out bytes.Buffer
	if _, err := io.Copy(&out, NewReader(context.Background(), bytes.NewReader(data), l)); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("copy: %v", err)
	}
	if clk.sleeps != 0 || l.Rate() != 0 || l.Burst() != 0 {
		t.Errorf("unlimited limiter slept %d times (rate %d, burst %d)", clk.sleeps, l.Rate(), l.Burst())
	}
}

func TestCancelStopsWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	l := NewLimiter(1024, clock.System{}) // a 1 MiB write would take ~17 minutes
	done := make(chan struct{})
	var n int
	var err error
	go func() {
		n, err = NewWriter(ctx, io.Discard, l).Write(make([]byte, 1<<20))
		close(done)
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("write did not stop after cancel")
	}
	if !errors.Is(err, context.Canceled) || n >= 1<<20 {
		t.Errorf("write after cancel: %d bytes, %v", n, err)
	}
}

// The wall clock really paces: 384 KiB at 1 MiB/s with a 128 KiB burst takes about 250ms.
func TestRealClockPaces(t *testing.T) {
	l := NewLimiter(1<<20, nil)
	start := time.Now()
	if _, err := io.Copy(NewWriter(context.Background(), io.Discard, l), bytes.NewReader(make([]byte, 384<<10))); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("took %s, want about 250ms", d)
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10M", "1.5MiB/s", "500k", "65536", "2MB", "0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err == nil && v < 0 {
			t.Fatalf("ParseRate(%q) = %d", s, v)
		}
		if err != nil && !strings.Contains(err.Error(), "rate") {
			t.Fatalf("ParseRate(%q) error %v does not say what was wrong", s, err)
		}
	})
}

// A ReadSeeker (an s3:// request body) is paced like a Reader, and a rewind for a resend pays
// for the bytes again: 2 x 4 MiB at 1 MiB/s.
func TestReadSeekerPacesResends(t *testing.T) {
	clk := newFakeClock()
	l := NewLimiter(1<<20, clk)
	data := randomBytes(t, 4<<20)
	rs := NewReadSeeker(context.Background(), bytes.NewReader(data), l)
	start := clk.Now()
	for try := 0; try < 2; try++ {
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rs)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("try %d: %d bytes, %v", try, len(got), err)
		}
	}
	elapsedWithin(t, "4 MiB sent twice at 1 MiB/s", clk.Now().Sub(start), 2*int64(len(data)), 1<<20, int64(l.Burst()))
}

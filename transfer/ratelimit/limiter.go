package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/snapferry/snapferry/cron/clock"
)

// Burst bounds: a bucket holds about an eighth of a second of traffic, at least minBurst so
// tiny rates still move whole packets, at most maxBurst so one Read or Write never hogs the
// limit shared with other streams.
const (
	minBurst = 4 << 10
	maxBurst = 256 << 10
)

// Limiter is a token bucket of bytes, safe for concurrent use. Callers that want bytes take
// tokens; when the bucket runs dry they go into debt and sleep until the debt is paid, so
// waiting callers are served in the order they asked.
type Limiter struct {
	rate  float64 // bytes per second; 0 = unlimited
	burst int64
	clock clock.Clock

	mu     sync.Mutex
	tokens float64 // may go negative: bytes promised but not yet earned
	last   time.Time
}

// NewLimiter returns a limiter for bytesPerSec (0 or less: unlimited) on clock (nil: the wall
// clock). The bucket starts full.
func NewLimiter(bytesPerSec int64, clk clock.Clock) *Limiter {
	if clk == nil {
		clk = clock.System{}
	}
	l := &Limiter{clock: clk}
	if bytesPerSec <= 0 {
		return l
	}
	l.rate = float64(bytesPerSec)
	l.burst = min(max(bytesPerSec/8, minBurst), maxBurst)
	l.tokens = float64(l.burst)
	l.last = clk.Now()
	return l
}

// Rate is the limit in bytes per second, 0 for none.
func (l *Limiter) Rate() int64 { return int64(l.rate) }

// Burst is the largest chunk a Reader or Writer moves at once (0 when unlimited).
func (l *Limiter) Burst() int { return int(l.burst) }

// WaitN takes n bytes' worth of tokens, sleeping as long as the rate requires. If ctx ends
// first, the tokens stay taken (the bytes were or will be moved anyway) and ctx.Err() returns.
func (l *Limiter) WaitN(ctx context.Context, n int) error {
	if l.rate == 0 || n <= 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := l.clock.Now()
	if elapsed := now.Sub(l.last); elapsed > 0 {
		l.tokens = min(l.tokens+elapsed.Seconds()*l.rate, float64(l.burst))
		l.last = now
	}
	l.tokens -= float64(n)
	debt := l.tokens
	l.mu.Unlock()
	if debt >= 0 {
		return ctx.Err()
	}
	return l.clock.Sleep(ctx, time.Duration(-debt/l.rate*float64(time.Second)))
}

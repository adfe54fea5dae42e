package remoterun

import (
	"context"
	"errors"
	"io"
)

// ErrStdinClosed is the cause (context.Cause) of a WatchStdin context ended by stdin EOF.
var ErrStdinClosed = errors.New("the controlling host closed the job's stdin: cancelled")

// WatchStdin is the remote half of the cancellation contract: it returns a context that ends
// when r (the job's stdin, carried by the SSH session) reaches EOF or fails. Whatever arrives on
// r is discarded. Enable it only for jobs started by Run, never for cron or interactive runs.
func WatchStdin(parent context.Context, r io.Reader) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		_, _ = io.Copy(io.Discard, r)
		cancel(ErrStdinClosed)
	}()
	return ctx, func() { cancel(context.Canceled) }
}

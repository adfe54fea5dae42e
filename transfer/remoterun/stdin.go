package remoterun

import (
	"context"
	"io"
)

// ErrStdinClosed is the cause (context.Cause) of a WatchStdin context ended by stdin EOF. It
// matches context.Canceled: whichever of the two a job's error carries, the job was cancelled
// from the controlling host and exits as interrupted (130).
var ErrStdinClosed error = stdinClosed{}

type stdinClosed struct{}

func (stdinClosed) Error() string        { return "the controlling host closed the job's stdin: cancelled" }
func (stdinClosed) Is(target error) bool { return target == context.Canceled }

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

package mountfs

import (
	"context"
	"errors"
	"io/fs"
	"log"
	"syscall"
	"time"
)

// opTimeout bounds one FUSE operation: a repository that stops answering gives EIO, not a
// process stuck in the kernel.
const opTimeout = 2 * time.Minute

// lookupErrno is errno for a name lookup, where a name the guest file system does not have is
// ENOENT.
func (m *mount) lookupErrno(op string, err error) syscall.Errno {
	if errors.Is(err, fs.ErrNotExist) {
		return syscall.ENOENT
	}
	return m.errno(op, err)
}

// errno maps an error to EIO, logged so the user sees why: a damaged image, a lost connection,
// a pack file gone from the store (whose "not exist" must not look like a missing name).
func (m *mount) errno(op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if m.logf != nil {
		m.logf("mount: %s: %v", op, err)
	} else {
		log.Printf("mount: %s: %v", op, err)
	}
	return syscall.EIO
}

// opCtx is the context of one operation: the mount's, bounded by opTimeout, and ended when the
// kernel gives up on the request.
func (m *mount) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(m.ctx, opTimeout)
	stop := context.AfterFunc(ctx, cancel)
	return c, func() { stop(); cancel() }
}

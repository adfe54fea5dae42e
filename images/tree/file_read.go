package tree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	fastcdc "github.com/jotfs/fastcdc-go"
	"golang.org/x/sys/unix"

	"github.com/snapferry/snapferry/images/disk/pipeline"
	"github.com/snapferry/snapferry/images/repo"
)

// openRead opens a file or directory for backup: never through a symlink that replaced it
// since the lstat, and without touching its atime where the kernel lets us (O_NOATIME needs
// ownership or CAP_FOWNER). Keeping atimes still matters beyond politeness: they are part of
// the nodes, so a backup that changed them would make the next one store new trees.
func openRead(path string, extra int) (int, error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | extra
	fd, err := unix.Open(path, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) { // EINVAL: a kernel or filesystem without O_NOATIME
		fd, err = unix.Open(path, flags, 0)
	}
	if err != nil {
		return -1, err
	}
	return fd, nil
}

// worker reads small files and stores blobs; each has its own read buffer.
type worker struct {
	a   *archiver
	buf []byte
}

func (a *archiver) newWorker() *worker {
	return &worker{a: a, buf: make([]byte, a.chunking.Min)}
}

func (w *worker) do(ctx context.Context, j fileJob) error {
	a := w.a
	if j.file != nil {
		id, err := a.save(ctx, repo.DataBlob, j.buf)
		a.chunkBufs.put(j.buf)
		if err != nil {
			return fmt.Errorf("save chunk %d of %s: %w", j.index, j.file.job.path, err)
		}
		j.file.setChunk(j.index, id)
		return a.chunkDone(ctx, j.file)
	}
	n := a.node(j.dir, j.idx)
	data, err := w.readSmall(j.path, j.size, n.ModTime)
	if err != nil {
		n.Error = err.Error()
		a.fail(j.path, err)
	} else {
		id, err := a.save(ctx, repo.DataBlob, data)
		if err != nil {
			return fmt.Errorf("save %s: %w", j.path, err)
		}
		n.Content = []repo.ID{id}
		n.Size = uint64(len(data))
	}
	a.progress.File(1)
	return a.release(ctx, j.dir)
}

// readSmall reads up to size bytes (the size lstat saw) of a file that fits one chunk. Not
// asking for more saves the read that would only report EOF; a file that grew since the lstat
// is stored as it was at that size (with a warning, see changedWhileRead), one that shrank as
// it is now.
func (w *worker) readSmall(path string, size int64, mtime time.Time) ([]byte, error) {
	fd, err := openRead(path, 0)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	defer unix.Close(fd)
	buf := w.buf[:size]
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, fmt.Errorf("read: %w", err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	w.a.bytesRead.Add(int64(n))
	w.a.progress.Add(int64(n))
	w.a.changedWhileRead(fd, path, size, int64(n), mtime)
	return buf[:n], nil
}

// fileState collects the chunk ids of a large file as workers store them out of order.
// pending counts chunks in flight plus one for the chunker until it reached EOF.
type fileState struct {
	job     fileJob
	pending atomic.Int32
	size    int64 // written by the chunker before its final release
	err     error // likewise

	mu  sync.Mutex
	ids []repo.ID
}

func (f *fileState) setChunk(i int, id repo.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.ids) {
		f.ids = append(f.ids, make([]repo.ID, i+1-len(f.ids))...)
	}
	f.ids[i] = id
}

// chunkDone drops one hold on a large file; the last fills in its node and releases its dir.
func (a *archiver) chunkDone(ctx context.Context, f *fileState) error {
	if f.pending.Add(-1) != 0 {
		return nil
	}
	n := a.node(f.job.dir, f.job.idx)
	if f.err != nil {
		n.Error = f.err.Error()
		a.fail(f.job.path, f.err)
	} else {
		n.Content = f.ids
		n.Size = uint64(f.size)
	}
	a.progress.File(1)
	return a.release(ctx, f.job.dir)
}

// chunkLargeFiles is the chunker goroutine: it reads large files one at a time, cuts them into
// content-defined chunks and hands each chunk, copied into a pooled buffer, to the workers.
// Hashing and compression, the expensive part, run in parallel; FastCDC runs only here (see
// Chunking.chunkerOptions for why).
func (a *archiver) chunkLargeFiles(ctx context.Context) error {
	for j := range a.large {
		if err := a.chunkFile(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

func (a *archiver) chunkFile(ctx context.Context, j fileJob) error {
	f := &fileState{job: j}
	f.pending.Store(1)
	fd, err := openRead(j.path, 0)
	if err != nil {
		f.err = fmt.Errorf("open: %w", err)
		return a.chunkDone(ctx, f)
	}
	file := os.NewFile(uintptr(fd), j.path)
	defer file.Close()
	_ = unix.Fadvise(fd, 0, 0, unix.FADV_SEQUENTIAL)
	ch, err := fastcdc.NewChunker(file, a.chunking.chunkerOptions(j.size))
	if err != nil {
		return fmt.Errorf("chunker for %s: %w", j.path, err)
	}
	for i := 0; ; i++ {
		c, err := ch.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.err = fmt.Errorf("read: %w", err)
			break
		}
		buf, err := a.chunkBufs.get(ctx, len(c.Data))
		if err != nil {
			return err
		}
		copy(buf, c.Data)
		f.size += int64(len(buf))
		a.bytesRead.Add(int64(len(buf)))
		a.progress.Add(int64(len(buf)))
		f.pending.Add(1)
		if err := pipeline.Send(ctx, a.jobs, fileJob{file: f, index: i, buf: buf}); err != nil {
			return err
		}
	}
	if f.err == nil {
		a.changedWhileRead(fd, j.path, j.size, f.size, a.node(j.dir, j.idx).ModTime)
	}
	return a.chunkDone(ctx, f)
}

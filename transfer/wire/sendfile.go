package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A restore over ssh:// moves the repository's packs through `snapferry serve`: read from the
// page cache into the process, copied into a data frame, copied into the pipe to sshd. That was
// 1.8-2 CPU seconds of a 900 MB restore on the store host, beside sshd's own work on the same
// cores. SendFile lets a server stream a byte range of a file as the body instead: when the
// link is a pipe, the session's writer splices the range from the file into a private pipe
// behind the frame's header and splices header and body into the link in one go, so the bytes
// never enter this process and the reader (sshd) sees each frame whole, not a lone header. On
// any other link the writer reads the range into a pooled chunk and writes it as before. The
// bytes on the link are the same either way: this is no protocol change.

// fileChunk is the body of a data frame that is still in a file.
type fileChunk struct {
	f    *os.File
	off  int64
	n    int
	done chan struct{} // closed once the writer is done with f (written, or failed)
}

// SendFile sends n bytes of f from offset off as the body of a server stream, like Write, and
// returns once the writer no longer needs f (every byte written, or the session dead), so the
// caller may close f then. The range must lie within f: a file that shrinks while it is sent
// ends the session (the frame's length is on the link already).
func (st *Stream) SendFile(f *os.File, off, n int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if off < 0 || n < 0 || off+n > fi.Size() {
		return fmt.Errorf("send %s: bytes %d..%d asked of a file of %d: %w", f.Name(), off, off+n, fi.Size(), io.ErrUnexpectedEOF)
	}
	var last *fileChunk
	defer func() {
		if last == nil {
			return
		}
		select {
		case <-last.done:
		case <-st.s.writerDone:
		}
	}()
	for n > 0 {
		k, err := st.takeCredit(int(min(n, ChunkSize)))
		if err != nil {
			return err
		}
		c := &fileChunk{f: f, off: off, n: k, done: make(chan struct{})}
		if err := st.s.send(st.ctx, Frame{Type: FrameData, Stream: st.id, file: c}); err != nil {
			return st.sendErr(err)
		}
		last = c
		off, n = off+int64(k), n-int64(k)
	}
	return nil
}

// fileWriter writes file frames for one session: spliced when the link is a pipe, else read and
// written. It belongs to the session's writer goroutine.
type fileWriter struct {
	link    *os.File     // the link when it is a pipe; nil: copy
	pr, pw  int          // the private pipe a frame is assembled in; -1 until first used
	spliced atomic.Int64 // body bytes that went to the link without entering this process
}

func newFileWriter(w io.Writer) *fileWriter {
	fw := &fileWriter{pr: -1, pw: -1}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			fw.link = f
		}
	}
	return fw
}

// close releases the private pipe.
func (fw *fileWriter) close() {
	if fw.pr >= 0 {
		unix.Close(fw.pr)
		unix.Close(fw.pw)
		fw.pr, fw.pw = -1, -1
	}
}

// errNoSplice says the kernel refused a splice before any byte moved: copy instead.
var errNoSplice = errors.New("splice not supported")

// write writes the data frame f, whose body is f.file, to the link behind bw (flushed first, so
// frames stay in order).
func (fw *fileWriter) write(bw interface {
	Write([]byte) (int, error)
	Flush() error
}, f Frame) error {
	c := f.file
	defer close(c.done)
	if fw.link != nil {
		if err := bw.Flush(); err != nil {
			return err
		}
		err := fw.splice(f.Stream, c)
		if !errors.Is(err, errNoSplice) {
			return err
		}
		fw.close()
		fw.link = nil // this kernel or file system cannot: copy from now on
	}
	buf := getChunk(c.n)
	defer putChunk(buf)
	if _, err := c.f.ReadAt(buf, c.off); err != nil {
		return fmt.Errorf("read %s at %d: %w", c.f.Name(), c.off, err)
	}
	return WriteFrame(bw, Frame{Type: FrameData, Stream: f.Stream, Payload: buf})
}

// privatePipeSize holds a whole frame, so header and body reach the link in one splice.
const privatePipeSize = 1 << 20

// splice assembles header and body of one frame in the private pipe and moves them to the link.
func (fw *fileWriter) splice(stream uint32, c *fileChunk) error {
	if fw.pr < 0 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return errNoSplice
		}
		fw.pr, fw.pw = p[0], p[1]
		if _, err := unix.FcntlInt(uintptr(fw.pw), unix.F_SETPIPE_SZ, privatePipeSize); err != nil {
			return errNoSplice
		}
	}
	var hdr [HeaderSize]byte
	hdr[0] = byte(FrameData)
	binary.BigEndian.PutUint32(hdr[1:5], stream)
	binary.BigEndian.PutUint32(hdr[5:9], uint32(c.n))
	if _, err := unix.Write(fw.pw, hdr[:]); err != nil {
		return fmt.Errorf("frame header into the private pipe: %w", err)
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var moved int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		off := c.off
		for moved < c.n {
			k, err := unix.Splice(int(fd), &off, fw.pw, nil, c.n-moved, unix.SPLICE_F_MOVE)
			if err == unix.EINTR {
				continue
			}
			if err != nil || k == 0 {
				serr = err
				if k == 0 && err == nil {
					serr = io.ErrUnexpectedEOF
				}
				return
			}
			moved += int(k)
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		if moved == 0 && (serr == unix.EINVAL || serr == unix.ENOSYS) {
			return errNoSplice // the header alone sits in the private pipe: dropped with it
		}
		return fmt.Errorf("splice %s at %d: %w", c.f.Name(), c.off+int64(moved), serr)
	}
	link, err := fw.link.SyscallConn()
	if err != nil {
		return err
	}
	left := HeaderSize + c.n
	var lerr error
	if err := link.Write(func(fd uintptr) bool {
		for left > 0 {
			k, err := unix.Splice(fw.pr, nil, int(fd), nil, left, unix.SPLICE_F_MOVE)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN:
				return false // a non-blocking link is full: wait until it drains
			case err != nil:
				lerr = err
				return true
			case k == 0:
				lerr = io.ErrShortWrite
				return true
			}
			left -= int(k)
		}
		return true
	}); err != nil {
		return err
	}
	if lerr != nil {
		return fmt.Errorf("splice a frame to the link: %w", lerr)
	}
	fw.spliced.Add(int64(c.n))
	return nil
}

// SplicedBytes is how many body bytes this session sent with SendFile straight from files to
// a pipe link, never read into the process.
func (s *Session) SplicedBytes() int64 { return s.files.spliced.Load() }

package serve

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is what GrowPipes asks for: Linux's default pipe-max-size, so any user may.
const pipeSize = 1 << 20

// GrowPipes enlarges the pipes serve talks through (sshd starts it with its stdin and stdout on
// pipes of 64 KiB) to 1 MiB, so sshd hands over and takes up to a MiB per write and wake-up
// instead of 64 KiB: fewer system calls and context switches on both sides of an upload or
// restore that moves a gigabyte. Files that are not pipes, and kernels that refuse, are left as
// they are: the size only costs speed.
func GrowPipes(files ...*os.File) {
	for _, f := range files {
		fi, err := f.Stat()
		if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			continue
		}
		// Through the raw conn, not Fd(): Fd would switch a polled pipe to blocking mode.
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
		}
	}
}

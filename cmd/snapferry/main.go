package main

import (
	"io"
	"os"
	"runtime/debug"

	"github.com/snapferry/snapferry/appliance/jobrun"
	"github.com/snapferry/snapferry/cron/exitcode"
	"github.com/snapferry/snapferry/pidmgr"
	"github.com/snapferry/snapferry/transfer/remoterun"
)

// version is stamped by `make build` (-X main.version=...).
var version = "dev"

// defaultMemoryLimit keeps the Go heap well inside the ESXi shell's shared memory pool (about
// 800 MB for every shell process together): the GC works harder near it instead of growing.
// GOMEMLIMIT overrides it, as the Go runtime documents.
const defaultMemoryLimit = 256 << 20

// defaultGCPercent: the heap may grow half its live size before a collection, not all of it.
// A backup's live heap is mostly buffers in flight, so this costs little CPU and keeps the peak
// RSS of an image backup near 50 MiB instead of 62 (measured); GOGC overrides it.
const defaultGCPercent = 50

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	stop, stopMem := startCPUProfile(), startMemProfile()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stopMem()
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit status. It is separate from main
// so tests drive the CLI in-process. Every command returns an error; this is the one place that
// prints it and turns it into an exit status (exit.go).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--version" {
		args = []string{"version"}
	}
	a := &app{stdout: stdout, stderr: stderr}
	// The far side of a --host launch: stdin EOF cancels the job, and the job (and anything it
	// starts) registers as remote.
	if len(args) > 0 && args[0] == remoterun.CancelFlag {
		args = args[1:]
		os.Setenv(jobrun.EnvOrigin, string(pidmgr.TypeRemote))
		a.cancelOnStdinEOF = true
		if len(args) == 0 {
			return exitcode.Usage
		}
	}
	a.argv = args
	root := newRootCmd(a)
	root.SetArgs(args)
	c, err := root.ExecuteC()
	if a.stop != nil {
		a.stop()
	}
	return a.finish(c, err)
}

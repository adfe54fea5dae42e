package main

import (
	"fmt"
	"io"
	"os"
)

// wireTrace is the file named by $SNAPFERRY_WIRE_TRACE, opened for appending on first use, or nil:
// a timestamped line per step of opening an ssh:// store and per request on its link
// (storespec.Options.Trace), for diagnosing where a slow command waits, like
// SNAPFERRY_CPUPROFILE for where it computes. The file stays open until the process exits.
func (a *app) wireTrace() io.Writer {
	if a.wireTraceFile != nil {
		return a.wireTraceFile
	}
	path := os.Getenv("SNAPFERRY_WIRE_TRACE")
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(a.stderr, "warning: SNAPFERRY_WIRE_TRACE: %v\n", err)
		return nil
	}
	a.wireTraceFile = f
	return f
}

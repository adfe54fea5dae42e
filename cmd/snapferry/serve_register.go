package main

import (
	"context"
	"fmt"
	"os"

	"github.com/snapferry/snapferry/pidmgr"
)

// registerServe enters this serve in the pid registry as a remote session, in the background
// (see serve), and returns the function that removes it at exit: it waits for the registration
// to finish first, so an entry is never left behind by a session shorter than its registration.
func registerServe(a *app) func() {
	reg, err := a.registry()
	if err != nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := reg.Begin(a.ctx, pidmgr.BeginOptions{Type: pidmgr.TypeRemote, Argv: os.Args}); err != nil {
			fmt.Fprintf(a.stderr, "warning: %v\n", err)
		}
	}()
	return func() {
		<-done
		_ = reg.Shutdown(context.Background())
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/snapferry/snapferry/pidmgr"
	"github.com/snapferry/snapferry/transfer/serve"
)

// runServe is the far side of ssh:// stores: it speaks the wire protocol on stdin/stdout and
// never leaves --root. Log lines (refusals, recoveries) go to stderr, which the client shows.
func runServe(a *app, args []string) int {
	root := a.flags.String("root", "", "folder to serve (required)")
	appendOnly := a.flags.Bool("append-only", false, "refuse deleting or rewriting anything (ransomware protection)")
	tape := a.flags.String("tape", "", "serve this tape drive (or virtual tape file) instead of a folder")
	tapeFlags := addServeTapeFlags(a.flags) // tape: --changer (serve_tape.go)
	pos, code, ok := a.parse(args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return a.fail(usagef("serve takes no arguments, got %q", pos))
	}
	if *tape != "" {
		return a.serveTape(*tape, tapeFlags) // tape: serve_tape.go
	}
	if *root == "" {
		return a.fail(usagef("serve needs --root=DIR"))
	}
	if fi, err := os.Stat(*root); err != nil || !fi.IsDir() {
		return a.fail(fmt.Errorf("serve: root %s is not a folder; create it first", *root))
	}
	// Registered as remote so a user's kill-idle on the store host never cuts a client's session.
	if reg, err := a.registry(); err == nil {
		if _, err := reg.Begin(a.ctx, pidmgr.BeginOptions{Type: pidmgr.TypeRemote, Argv: os.Args}); err != nil {
			fmt.Fprintf(a.stderr, "warning: %v\n", err)
		}
		defer reg.Shutdown(context.Background())
	}
	// A client that dies closes our stderr too: logging the rollback must not kill us (SIGPIPE)
	// before the rollback runs, or the replica stays half-written until the next serve.
	signal.Ignore(syscall.SIGPIPE)
	err := serve.Serve(a.ctx, os.Stdin, os.Stdout, serve.Options{Root: *root, AppendOnly: *appendOnly, Log: a.stderr, Program: version})
	if err != nil {
		return a.fail(err)
	}
	return exitOK
}

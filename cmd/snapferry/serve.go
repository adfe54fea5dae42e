package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/snapferry/snapferry/transfer/serve"
)

// runServe is the far side of ssh:// stores: it speaks the wire protocol on stdin/stdout and
// never leaves --root. Log lines (refusals, recoveries) go to stderr, which the client shows.
func newServeCmd(a *app) *cobra.Command {
	var root, tape string
	var appendOnly bool
	var tapeFlags *serveTapeFlags
	c := &cobra.Command{
		Use:   "serve --root=DIR [--append-only] | --tape=DEVICE",
		Short: "serve a repository over SSH (the far side of ssh://)",
		Long: "Serve speaks snapferry's wire protocol on stdin and stdout and never leaves --root. A client\n" +
			"using an ssh:// repository starts it over SSH; in authorized_keys it pins a key to one folder\n" +
			"(command=\"snapferry serve --root=/backup --append-only\").",
		Example: "  snapferry serve --root=/volume1/snapferry --append-only",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			if tape != "" {
				return a.serveTape(tape, tapeFlags) // tape: serve_tape.go
			}
			return a.serve(root, appendOnly)
		},
	}
	c.Flags().StringVar(&root, "root", "", "folder to serve (required)")
	c.Flags().BoolVar(&appendOnly, "append-only", false, "refuse deleting or rewriting anything (ransomware protection)")
	c.Flags().StringVar(&tape, "tape", "", "serve this tape drive (or virtual tape file) instead of a folder")
	tapeFlags = addServeTapeFlags(c.Flags()) // tape: --changer (serve_tape.go)
	return c
}

func (a *app) serve(root string, appendOnly bool) error {
	if root == "" {
		return usagef("serve needs --root=DIR")
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return fmt.Errorf("serve: root %s is not a folder; create it first", root)
	}
	// Registered as remote so a user's kill-idle on the store host never cuts a client's session.
	// The registration (a flock, process-table reads, two fsyncs) runs beside the session, not
	// before the handshake: every ssh:// command waited for it, 20-170 ms by the host's load,
	// and up to the registry's 30 s lock wait behind a stuck writer. Being registered a moment
	// after the first request instead of before it is the same as having started a moment later:
	// the registry protects this process from kill-idle, it guards nothing in the repository.
	defer registerServe(a)()
	// A client that dies closes our stderr too: logging the rollback must not kill us (SIGPIPE)
	// before the rollback runs, or the replica stays half-written until the next serve.
	signal.Ignore(syscall.SIGPIPE)
	serve.GrowPipes(os.Stdin, os.Stdout)
	err := serve.Serve(a.ctx, os.Stdin, os.Stdout, serve.Options{Root: root, AppendOnly: appendOnly, Log: a.stderr, Program: version})
	if err != nil {
		return err
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/pidmgr"
	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/tape/tapewire"
)

// serveTapeFlags are serve's options for --tape.
type serveTapeFlags struct {
	changer string
}

func addServeTapeFlags(fs *pflag.FlagSet) *serveTapeFlags {
	sf := &serveTapeFlags{}
	fs.StringVar(&sf.changer, "changer", "", "with --tape: command that loads another volume (gets SNAPFERRY_TAPE_* variables)")
	return sf
}

// serveTape is the far side of tape://host/DEVICE: it serves the drive (and this host's tape
// catalog) over the wire protocol on stdin/stdout. Nobody is at a terminal here, so a tape
// swap needs --changer; without it a full tape ends the save set with an error that says so.
func (a *app) serveTape(device string, sf *serveTapeFlags) int {
	d, err := a.tapeDrive(device, sf.changer, false)
	if err != nil {
		return a.fail(err)
	}
	// Registered as remote so a user's kill-idle on the tape host never cuts a client's session.
	if reg, err := a.registry(); err == nil {
		if _, err := reg.Begin(a.ctx, pidmgr.BeginOptions{Type: pidmgr.TypeRemote, Argv: os.Args}); err != nil {
			fmt.Fprintf(a.stderr, "warning: %v\n", err)
		}
		defer reg.Shutdown(context.Background())
	}
	err = tapewire.Serve(a.ctx, os.Stdin, os.Stdout, tapewire.ServeOptions{Library: &tape.Local{Drive: d, Ctx: a.ctx}, Program: version, Log: a.stderr})
	if err != nil {
		return a.fail(err)
	}
	return exitOK
}

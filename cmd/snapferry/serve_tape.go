package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/cron/executable"
	"github.com/snapferry/snapferry/pidmgr"
	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/tape/tapewire"
)

// serveTapeFlags are serve's options for --tape.
type serveTapeFlags struct {
	changer string
	daemon  bool
}

func addServeTapeFlags(fs *pflag.FlagSet) *serveTapeFlags {
	sf := &serveTapeFlags{}
	fs.StringVar(&sf.changer, "changer", "", "with --tape: command that loads another volume (gets SNAPFERRY_TAPE_* variables)")
	fs.BoolVar(&sf.daemon, "tape-daemon", false, "with --tape: be the drive's daemon (started by serve itself)")
	fs.MarkHidden("tape-daemon")
	return sf
}

// serveTape is the far side of tape://host/DEVICE. Several hosts may back up to one drive at
// once, so serve forwards its client to the drive's daemon (started on demand, see
// transfer/tape/tapewire), which holds the drive and multiplexes every client's save sets onto
// it. Nobody is at a terminal here: a tape swap needs --changer; without it a full tape ends the
// save set with an error that says so.
func (a *app) serveTape(device string, sf *serveTapeFlags) error {
	dir, err := a.tapeHome()
	if err != nil {
		return err
	}
	if device, err = filepath.Abs(device); err != nil {
		return usagef("--tape=%s: %v", device, err)
	}
	// Registered as remote so a user's kill-idle on the tape host never cuts a client's session.
	if reg, err := a.registry(); err == nil {
		if _, err := reg.Begin(a.ctx, pidmgr.BeginOptions{Type: pidmgr.TypeRemote, Argv: os.Args}); err != nil {
			fmt.Fprintf(a.stderr, "warning: %v\n", err)
		}
		defer reg.Shutdown(context.Background())
	}
	sum := sha256.Sum256([]byte(device))
	socket := filepath.Join(dir, "tape", "drive-"+hex.EncodeToString(sum[:6])+".sock")
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return fmt.Errorf("tape state folder: %w", err)
	}
	drive, err := a.tapeDrive(device, sf.changer, false)
	if err != nil {
		return err
	}
	o := tapewire.ServeOptions{Library: &tape.Local{Drive: drive, Ctx: a.ctx}, Program: version, Log: a.stderr}
	switch {
	case sf.daemon:
		err = tapewire.RunDaemon(a.ctx, socket, o.Library, o)
	case len(socket) > 100:
		// Too long for a unix socket address: serve this client alone (no sharing).
		fmt.Fprintf(a.stderr, "warning: state folder path too long for the drive's socket; this session does not share %s\n", device)
		err = tapewire.Serve(a.ctx, os.Stdin, os.Stdout, o)
	default:
		err = tapewire.Forward(a.ctx, os.Stdin, os.Stdout, tapewire.ShareOptions{Socket: socket,
			Start: func() error { return startTapeDaemon(dir, device, sf.changer) }})
	}
	if err != nil {
		return err
	}
	return nil
}

// startTapeDaemon runs `serve --tape=DEVICE --tape-daemon` detached (own session, so the end of
// the SSH session that started it does not end it), logging to STATE/tape/daemon.log.
func startTapeDaemon(dir, device, changer string) error {
	exe, err := executable.Path()
	if err != nil {
		return fmt.Errorf("start the tape daemon: %w", err)
	}
	args := []string{"serve", "--tape=" + device, "--tape-daemon", "--home=" + dir}
	if changer != "" {
		args = append(args, "--changer="+changer)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "tape", "daemon.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("tape daemon log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", exe, err)
	}
	return cmd.Process.Release()
}

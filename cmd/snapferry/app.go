package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/snapferry/snapferry/cron/executable"
	"github.com/snapferry/snapferry/images/disk"
	"github.com/snapferry/snapferry/images/repo"
	"github.com/snapferry/snapferry/transfer/remoterun"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// app carries what every command needs: its output streams, the global options and a context
// that is cancelled on SIGINT/SIGTERM so cleanup (snapshot removal, registry shutdown) still runs.
// One app serves one command line: the command definitions bind their flags to it or to their
// own option structs, and only the command that runs has its flags parsed.
type app struct {
	stdout, stderr io.Writer
	// argv is the command line after the program name (a --host launch forwards it).
	argv []string

	jsonOut bool
	home    string
	ssh     sshOptions
	s3      storespec.S3Options // the --s3-* flags (s3_flags.go)
	// passwordFile is --password-file of the commands that open a repository (secrets.go).
	passwordFile string

	ctx       context.Context
	stop      context.CancelFunc
	gotSignal atomic.Bool

	// bwlimit (bytes per second, 0 = none) slows uploads to stores (--bwlimit).
	bwlimit int64
	// compression is this run's codec for new blobs (--compression; empty: the repository's).
	compression repo.Compression
	// createStore lets an ssh:// or sftp:// store's folder be created (init, replica).
	createStore bool
	// cancelOnStdinEOF is set on the far side of a --host launch: the job stops (and cleans up)
	// when the launching host closes the session's stdin.
	cancelOnStdinEOF bool
	// jobBytes records a running job's bytes in the job history (set by beginJob).
	jobBytes func(read int64)
	// jobWork counts work for the running job's heartbeat (set by beginJob; pidmgr kill-idle).
	jobWork func(n int64)
	// state is the resolved state folder, once stateDir has found it: resolving probes the
	// filesystem, and one command asks several times (registry, history, locks, temp files).
	state string
	// early is an ssh:// store opening in the background (early_store.go), until taken.
	early *storespec.Early
	// prehash holds the cache passes of images started before the repository was open
	// (backup_prehash.go), by path.
	prehash map[string]*disk.Prehash
	// wireTraceFile is $SNAPFERRY_WIRE_TRACE once opened (wire_trace.go).
	wireTraceFile io.Writer
	// storeCopies makes ssh:// stores read index and snapshot files from the store, not from the
	// local metadata cache: check, prune, repair and rebuild-index judge the store's own files.
	storeCopies bool
}

// sshOptions are accepted by every command that may reach another host.
type sshOptions struct {
	Identity         string
	KnownHosts       string
	AcceptNewHostKey bool
	RemotePath       string
}

// addSSHFlags registers the SSH options on commands that reach other hosts.
func (a *app) addSSHFlags(fs *pflag.FlagSet) {
	fs.StringVar(&a.ssh.Identity, "identity", "", "SSH private key file")
	fs.StringVar(&a.ssh.KnownHosts, "known-hosts", "", "known_hosts file (env SNAPFERRY_KNOWN_HOSTS)")
	fs.BoolVar(&a.ssh.AcceptNewHostKey, "accept-new-host-key", false, "trust and record an unknown host key")
	fs.StringVar(&a.ssh.RemotePath, "remote-path", "", "path of snapferry on the far side")
	a.addS3Flags(fs)
}

// start runs after the flags are parsed and before the command: it fills defaults from the
// environment and starts the signal-aware context.
func (a *app) start(name string) {
	if a.ssh.KnownHosts == "" {
		a.ssh.KnownHosts = os.Getenv("SNAPFERRY_KNOWN_HOSTS")
	}
	base := context.Background()
	if a.cancelOnStdinEOF {
		base, _ = remoterun.WatchStdin(base, os.Stdin)
	}
	ctx, stop := context.WithCancel(base)
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
			a.gotSignal.Store(true)
			fmt.Fprintf(a.stderr, "%s: interrupted, cleaning up\n", name)
			stop()
		case <-ctx.Done():
		}
		signal.Stop(sig)
	}()
	a.ctx, a.stop = ctx, stop
}

func (a *app) interrupted() bool { return a.gotSignal.Load() }

// printJSON writes v as indented JSON to stdout.
func (a *app) printJSON(v any) {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// stateDir resolves the state folder: --home, $SNAPFERRY_HOME, a var/ folder beside the binary
// when writable (on ESXi that is a datastore, which survives reboots), else $HOME/.snapferry.
func (a *app) stateDir() (string, error) {
	if a.state != "" {
		return a.state, nil
	}
	dir := a.home
	if dir == "" {
		dir = os.Getenv("SNAPFERRY_HOME")
	}
	if dir == "" {
		if err := vibHomeCheck(); err != nil { // vib_home.go
			return "", err
		}
		dir = besideBinary()
	}
	if dir == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("state folder: set --home or SNAPFERRY_HOME: %w", err)
		}
		dir = filepath.Join(h, ".snapferry")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create state folder %s: %w", dir, err)
	}
	a.state = dir
	return dir, nil
}

// besideBinary returns <dir of executable>/var when that folder exists or can be made, else "".
func besideBinary() string {
	exe, err := executable.Path()
	if err != nil {
		return ""
	}
	dir := filepath.Join(filepath.Dir(exe), "var")
	switch filepath.Dir(exe) {
	case "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin":
		// A packaged install: never litter system folders; use $HOME/.snapferry.
		if _, err := os.Stat(dir); err != nil {
			return ""
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	if f, err := os.CreateTemp(dir, ".probe-*"); err == nil {
		f.Close()
		os.Remove(f.Name())
		return dir
	}
	return ""
}

// warnf prints a warning that does not change the exit status.
func (a *app) warnf(format string, args ...any) {
	fmt.Fprintf(a.stderr, "warning: "+format+"\n", args...)
}

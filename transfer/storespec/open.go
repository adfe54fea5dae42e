package storespec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/snapferry/snapferry/images/store"
	"github.com/snapferry/snapferry/images/store/local"
	"github.com/snapferry/snapferry/transfer/deploy"
	"github.com/snapferry/snapferry/transfer/remoterun"
	"github.com/snapferry/snapferry/transfer/remotestore"
	"github.com/snapferry/snapferry/transfer/sftpstore"
	"github.com/snapferry/snapferry/transfer/sshconn"
	"github.com/snapferry/snapferry/transfer/wire"
)

// Options for Open. The SSH fields map to the CLI's --identity, --known-hosts,
// --accept-new-host-key and --remote-path.
type Options struct {
	Identity         []string
	KnownHosts       string
	AcceptNewHostKey bool
	// RemotePath is a snapferry already installed on the far side (--remote-path): it is run
	// as-is and nothing is uploaded, which is what works with a forced-command key. "": deploy.
	RemotePath string
	Version    string // this binary's version, for deploy and the wire handshake

	// Create makes the remote root folder first (for `init`); serve refuses a missing root.
	// Only with deployment: behind RemotePath may be a forced command that runs serve for any
	// command, so there the folder must exist.
	Create bool
	// AppendOnly asks serve to refuse removals and rewrites.
	AppendOnly bool

	// SSH holds the remaining connection settings (timeouts, ssh config file, home); Host,
	// Port, User and the fields above override it.
	SSH sshconn.Config
	// LocalBinary is the binary deploy uploads ("": this executable).
	LocalBinary string
	// DeployPath is where deploy puts it ("": ~/.snapferry/bin/snapferry-VERSION-SUM).
	DeployPath string
	// ServeLog receives the remote serve's stderr (nil: kept only for error messages).
	ServeLog io.Writer
	// Upload, when set, wraps what this side sends to serve (--bwlimit): it limits every
	// upload on the link, repository packs and replica blocks alike.
	Upload func(io.WriteCloser) io.WriteCloser
	// S3 holds the settings of s3:// stores (the --s3-* flags).
	S3 S3Options
	// MetaCache, if set, is a folder where the index and snapshot files (and small pack ranges)
	// of ssh:// stores are cached (images/store/metacache), one subfolder per store location:
	// a later command over the same link then fetches only files it has not seen, instead of a
	// request each. (s3:// stores take theirs from S3.MetaCache.)
	MetaCache string
	// Lanes tunes the read lanes of ssh:// stores: more SSH sessions, each running the far
	// serve, that large reads spread over (remotestore.Laned). Max, After and MinRoundTrip
	// apply (zero: the defaults; Max < 0: no lanes); Open and Trace are filled in here.
	Lanes remotestore.LaneOptions
	// Trace, when set, receives a timestamped line per step of opening an ssh:// store and per
	// wire request after it (wire.Session.SetTrace): $SNAPFERRY_WIRE_TRACE, for finding where a
	// command waits on the link.
	Trace io.Writer
}

// tracer writes Options.Trace lines in milliseconds since the store was asked for.
type tracer struct {
	w     io.Writer
	start time.Time
}

func (t tracer) printf(format string, args ...any) {
	if t.w != nil {
		fmt.Fprintf(t.w, "%10.3f ms   %s\n", float64(time.Since(t.start).Microseconds())/1000, fmt.Sprintf(format, args...))
	}
}

// Open parses spec and opens its Backend.
func Open(ctx context.Context, spec string, opts Options) (store.Backend, error) {
	s, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	return OpenSpec(ctx, s, opts)
}

// OpenSpec opens the Backend of a parsed spec.
func OpenSpec(ctx context.Context, s Spec, opts Options) (store.Backend, error) {
	switch s.Scheme {
	case Local:
		return local.New(s.Path), nil
	case Tape:
		return nil, fmt.Errorf("%w %q: a tape is not a repository store; use `snapferry tape` or a backup --to=tape:// job", ErrBadSpec, s)
	case S3:
		return openS3(s, opts.S3)
	}
	tr := tracer{w: opts.Trace, start: time.Now()}
	tr.printf("dial %s", s)
	conn, err := Dial(ctx, s, opts)
	if err != nil {
		return nil, err
	}
	tr.printf("ssh connected and authenticated (%d round trips)", conn.HandshakeRoundTrips)
	var be store.Backend
	var ws *wire.Session
	closeFn := func() error { return nil }
	if s.Scheme == SFTP {
		be, err = sftpstore.New(conn.Client, servePath(s.Path), s.String(), sftpstore.Options{})
	} else {
		var sess *sshconn.Command
		var client *remotestore.Client
		var lanes remotestore.LaneOpener
		client, sess, lanes, err = openServe(ctx, conn, s, opts, tr)
		if err == nil {
			be, ws = cached(withLanes(client, lanes, opts, tr), s, opts.MetaCache), client.Session()
		}
		closeFn = func() error { return waitSession(sess, sessionCloseWait) }
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &linked{Backend: be, conn: conn, closeSession: closeFn, tr: tr, wire: ws}, nil
}

// sessionCloseWait bounds how long closing a store waits for the far serve to end.
const sessionCloseWait = 10 * time.Second

// Dial connects to the host of a remote spec with the SSH options.
func Dial(ctx context.Context, s Spec, opts Options) (*sshconn.Client, error) {
	if !s.Remote() {
		return nil, fmt.Errorf("%w %q: not a remote store", ErrBadSpec, s)
	}
	cfg := opts.SSH
	cfg.Host, cfg.Port, cfg.User = s.Host, s.Port, s.User
	if len(opts.Identity) > 0 {
		cfg.Identity = opts.Identity
	}
	if opts.KnownHosts != "" {
		cfg.KnownHosts = opts.KnownHosts
	}
	cfg.AcceptNewHostKey = cfg.AcceptNewHostKey || opts.AcceptNewHostKey
	conn, err := sshconn.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", s, err)
	}
	return conn, nil
}

// servePath is the root as the far side should get it: "~/x" becomes a path relative to the
// login directory, where remote commands and SFTP sessions start.
func servePath(p string) string {
	if p == "~" {
		return "."
	}
	return strings.TrimPrefix(p, "~/")
}

func openServe(ctx context.Context, conn *sshconn.Client, s Spec, opts Options, tr tracer) (*remotestore.Client, *sshconn.Command, remotestore.LaneOpener, error) {
	root := servePath(s.Path)
	if opts.Create && opts.RemotePath == "" {
		var out strings.Builder
		res, err := remoterun.Run(ctx, conn.Client, remoterun.ShellQuote("mkdir", "-p", "--", root),
			remoterun.Options{Stderr: &out})
		if err == nil && res.ExitStatus != 0 {
			err = errors.New(strings.TrimSpace(out.String()))
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("open store %s: create folder %s: %w", s, root, err)
		}
	}
	dopts := deploy.Options{Version: opts.Version, RemotePath: opts.DeployPath, LocalBinary: opts.LocalBinary}
	if opts.RemotePath == "" && opts.DeployPath == "" {
		// Run the binary where deploy puts it before asking the host whether it is there: after
		// the first run it is, and the SFTP check's ~5 round trips are saved. Whatever goes wrong
		// (not there yet, another failure) is left to the checked path below.
		if guess, err := deploy.Expected(dopts); err == nil {
			// Below $HOME, where SFTP's relative paths (deploy's) land: the login shell's folder
			// may be another one.
			cmd := `"$HOME"/` + serveCommand(guess, root, opts)
			client, sess, err := startServe(ctx, conn, cmd, opts, s.String(), tr, true)
			if err == nil {
				tr.printf("wire handshake done (server %s; the binary deploy put there)", client.Server().Program)
				return client, sess, laneOpener(conn, s, cmd, opts, tr), nil
			}
			tr.printf("no deployed binary answered at %s: checking over SFTP (%v)", guess, err)
		}
	}
	binary, err := deploy.Locate(ctx, conn.Client, opts.RemotePath, dopts)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open store %s: %w", s, err)
	}
	tr.printf("far binary located: %s", binary)
	cmd := serveCommand(binary, root, opts)
	client, sess, err := startServe(ctx, conn, cmd, opts, s.String(), tr, true)
	if err != nil {
		return nil, nil, nil, err
	}
	tr.printf("wire handshake done (server %s)", client.Server().Program)
	return client, sess, laneOpener(conn, s, cmd, opts, tr), nil
}

// serveCommand is the far command line of serve at root.
func serveCommand(binary, root string, opts Options) string {
	args := []string{binary, "serve", "--root=" + root}
	if opts.AppendOnly {
		args = append(args, "--append-only")
	}
	return remoterun.ShellQuote(args...)
}

// waitSession gives serve time to exit after the wire session closed its stdin, then cuts the
// session (closing the connection afterwards ends a stuck serve anyway).
func waitSession(sess *sshconn.Command, limit time.Duration) error {
	select {
	case <-sess.Done():
	case <-time.After(limit):
	}
	_ = sess.Close()
	return nil
}

// tailBuffer keeps the last max bytes written, for error messages from the remote side.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

package tapewire

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/snapferry/snapferry/transfer/deploy"
	"github.com/snapferry/snapferry/transfer/remoterun"
	"github.com/snapferry/snapferry/transfer/storespec"
)

// DialOptions configure Dial.
type DialOptions struct {
	// Store carries the SSH settings, the deploy settings and this program's version, as for
	// ssh:// stores; ServeLog receives the far side's log lines.
	Store storespec.Options
	// Home is the state folder on the tape host (its --home; "" leaves serve's default), where
	// its tape catalog lives.
	Home string
	// Changer is the command the tape host runs to load another volume (serve's --changer).
	Changer string
}

// Dial connects to the tape host of a tape://[user@]host[:port]/DEVICE spec, makes sure
// snapferry is there, runs `snapferry serve --tape=DEVICE` in an SSH session and returns a
// Client speaking to it. Closing the client ends the session and the connection.
func Dial(ctx context.Context, raw string, o DialOptions) (*Client, error) {
	s, err := storespec.Parse(raw)
	if err != nil {
		return nil, err
	}
	if s.Scheme != storespec.Tape || !s.Remote() {
		return nil, fmt.Errorf("%w %q: want tape://[user@]host[:port]/DEVICE", storespec.ErrBadSpec, raw)
	}
	conn, err := storespec.Dial(ctx, s, o.Store)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Client, error) {
		conn.Close()
		return nil, fmt.Errorf("open tape %s: %w", s, err)
	}
	binary, err := deploy.Locate(ctx, conn.Client, o.Store.RemotePath, deploy.Options{
		Version: o.Store.Version, RemotePath: o.Store.DeployPath, LocalBinary: o.Store.LocalBinary})
	if err != nil {
		return fail(err)
	}
	sess, err := conn.NewSession()
	if err != nil {
		return fail(conn.Explain(err))
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return fail(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	head := &headBuffer{}
	sess.Stderr = head
	if o.Store.ServeLog != nil {
		sess.Stderr = io.MultiWriter(head, o.Store.ServeLog)
	}
	args := []string{binary, "serve", "--tape=" + s.Path}
	if o.Home != "" {
		args = append(args, "--home="+o.Home)
	}
	if o.Changer != "" {
		args = append(args, "--changer="+o.Changer)
	}
	cmd := remoterun.ShellQuote(args...)
	if err := sess.Start(cmd); err != nil {
		return fail(fmt.Errorf("start %s: %w", cmd, err))
	}
	finish := func() error {
		done := make(chan struct{})
		go func() { sess.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // the catalog copy is written before serve exits
		}
		sess.Close()
		return conn.Close()
	}
	c, err := New(ctx, stdout, stdin, s.String(), o.Store.Version, finish)
	if err != nil {
		finish()
		if msg := head.String(); msg != "" {
			return nil, fmt.Errorf("open tape %s: %w; the remote %s said: %s", s, err, cmd, msg)
		}
		return nil, fmt.Errorf("open tape %s: %w", s, conn.Explain(err))
	}
	return c, nil
}

// headBuffer keeps the first 4 KiB the far side writes to stderr: when serve fails to start,
// its first lines say why (a missing device, an unknown flag of an older snapferry).
type headBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := 4096 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.TrimSpace(string(h.b))
}

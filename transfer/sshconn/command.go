package sshconn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Command is a remote command started by StartCommand: its stdin, stdout and stderr are the
// session channel's streams.
type Command struct {
	ch     ssh.Channel
	Stdin  io.WriteCloser // closing it sends EOF (the channel stays open for the output)
	Stdout io.Reader

	done   chan struct{} // closed once the channel's requests ended (the channel closed)
	copied chan struct{} // closed once stderr was copied to its end
	mu     sync.Mutex
	status *int   // exit status, if the far side sent one
	signal string // exit signal, if it sent one instead
}

// StartCommand opens a session channel and runs cmd in it like ssh.Session.Start, except that
// the exec request does not wait for the server's answer: the caller may write to Stdin at once,
// and its first bytes travel right behind the request. That saves the round trip
// ssh.Session.Start waits for before anything can be sent (the wire handshake of `snapferry
// serve` then goes out with the exec). SSH servers handle a channel's messages in order, so the
// command has started by the time the data after the request is delivered (OpenSSH and dropbear
// start it while handling the request). A refused exec shows as a channel that closes (or output
// that never comes): callers that wait for an answer bound the wait. stderr (nil: discarded)
// receives the command's standard error.
func (c *Client) StartCommand(cmd string, stderr io.Writer) (*Command, error) {
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		return nil, fmt.Errorf("ssh session: %w", err)
	}
	payload := ssh.Marshal(struct{ Command string }{cmd})
	if _, err := ch.SendRequest("exec", false, payload); err != nil {
		ch.Close()
		return nil, fmt.Errorf("ssh exec: %w", err)
	}
	x := &Command{ch: ch, Stdin: closeWriter{ch}, Stdout: ch, done: make(chan struct{}), copied: make(chan struct{})}
	go x.serveRequests(reqs)
	if stderr == nil {
		stderr = io.Discard
	}
	go func() {
		defer close(x.copied)
		_, _ = io.Copy(stderr, ch.Stderr())
	}()
	return x, nil
}

// closeWriter sends EOF on Close: the far command sees its stdin end while its output still
// flows back.
type closeWriter struct{ ch ssh.Channel }

func (w closeWriter) Write(p []byte) (int, error) { return w.ch.Write(p) }
func (w closeWriter) Close() error                { return w.ch.CloseWrite() }

// serveRequests records the exit status the server sends and refuses every other request
// that wants an answer, until the channel closes.
func (x *Command) serveRequests(reqs <-chan *ssh.Request) {
	defer close(x.done)
	for r := range reqs {
		switch r.Type {
		case "exit-status":
			if len(r.Payload) >= 4 {
				st := int(binary.BigEndian.Uint32(r.Payload))
				x.mu.Lock()
				x.status = &st
				x.mu.Unlock()
			}
		case "exit-signal":
			var sig struct {
				Signal string
				Rest   []byte `ssh:"rest"`
			}
			if ssh.Unmarshal(r.Payload, &sig) == nil {
				x.mu.Lock()
				x.signal = sig.Signal
				x.mu.Unlock()
			}
		}
		if r.WantReply {
			_ = r.Reply(false, nil)
		}
	}
}

// ErrNoExitStatus is what Wait returns when the channel closed without an exit status.
var ErrNoExitStatus = errors.New("remote command ended without an exit status")

// Done is closed when the channel has closed (the command ended or the link went away).
func (x *Command) Done() <-chan struct{} { return x.done }

// Wait waits for the channel to close and stderr to be copied, and returns nil for exit status
// 0, else an error naming the status or signal.
func (x *Command) Wait() error {
	<-x.done
	<-x.copied
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case x.status != nil && *x.status == 0:
		return nil
	case x.status != nil:
		return fmt.Errorf("remote command exited with status %d", *x.status)
	case x.signal != "":
		return fmt.Errorf("remote command killed by signal %s", x.signal)
	}
	return ErrNoExitStatus
}

// Close closes the channel; the far command loses its stdin and output.
func (x *Command) Close() error {
	err := x.ch.Close()
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

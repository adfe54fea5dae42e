package sshconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Ciphers in order of preference: AES-GCM runs on AES-NI everywhere snapferry does, and
// chacha20-poly1305 is the fast choice where AES is in software.
var preferredCiphers = []string{
	ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305,
	ssh.CipherAES128CTR, ssh.CipherAES256CTR,
}

// Client is an open SSH connection. It embeds *ssh.Client for sessions, SFTP and forwarding.
type Client struct {
	*ssh.Client
	Target string // user@host:port actually dialled
	// HandshakeRoundTrips is how many times the SSH handshake (version exchange, key exchange,
	// authentication) waited for the server's answer: on a link with a round trip of R the
	// connection took at least that many times R after the TCP connection (see turnConn).
	HandshakeRoundTrips int

	conn      net.Conn
	done      chan struct{} // closed when the connection has ended
	closeOnce sync.Once
	mu        sync.Mutex
	dead      error // why the keepalive gave up, if it did
}

// Dial connects, verifies the host key, authenticates and starts keepalives. ctx bounds the
// dial and handshake only; the connection lives until Close or until the link dies.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	t, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	addr := t.addr()
	signers, err := loadSigners(t)
	if err != nil {
		return nil, err
	}
	defer signers.close()
	hk := &hostKeyChecker{file: t.knownHosts, accept: cfg.AcceptNewHostKey}
	algos, err := hk.knownAlgorithms(addr)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Op: "read known_hosts", Host: addr, Err: err}
	}
	handshakeTimeout := orDuration(cfg.HandshakeTimeout, DefaultHandshakeTimeout)
	sc := &ssh.ClientConfig{
		User:              t.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signers.signers...)},
		HostKeyCallback:   hk.check,
		HostKeyAlgorithms: algos,
		Timeout:           handshakeTimeout,
		ClientVersion:     "SSH-2.0-snapferry",
	}
	sc.Ciphers = preferredCiphers

	dialer := net.Dialer{Timeout: orDuration(cfg.DialTimeout, DefaultDialTimeout), KeepAlive: 30 * time.Second}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &Error{Kind: KindNetwork, Op: "dial", Host: addr, Err: err}
	}
	// The handshake has no context of its own: a deadline bounds it, and cancelling ctx closes
	// the socket under it.
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	counted := &turnConn{Conn: conn}
	cc, chans, reqs, err := ssh.NewClientConn(counted, addr, sc)
	handshakeTurns := counted.stop()
	cancelled := !stop()
	if err != nil {
		conn.Close()
		if cancelled {
			return nil, &Error{Kind: KindNetwork, Op: "handshake", Host: addr, Err: ctx.Err()}
		}
		return nil, classifyHandshake(t, addr, signers, err)
	}
	if cancelled {
		cc.Close()
		return nil, &Error{Kind: KindNetwork, Op: "handshake", Host: addr, Err: ctx.Err()}
	}
	_ = conn.SetDeadline(time.Time{})
	c := &Client{
		Client:              ssh.NewClient(cc, chans, reqs),
		Target:              t.user + "@" + addr,
		HandshakeRoundTrips: handshakeTurns,
		conn:                conn,
		done:                make(chan struct{}),
	}
	go func() { _ = c.Client.Wait(); c.closeOnce.Do(func() { close(c.done) }) }()
	if interval := orDuration(cfg.KeepaliveInterval, DefaultKeepaliveInterval); interval > 0 {
		max := cfg.KeepaliveMax
		if max <= 0 {
			max = DefaultKeepaliveMax
		}
		go c.keepalive(interval, max)
	}
	return c, nil
}

func orDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func classifyHandshake(t target, addr string, signers *signerSet, err error) error {
	var hke *HostKeyError
	if errors.As(err, &hke) {
		return &Error{Kind: KindHostKey, Op: "verify host key", Host: addr, Err: hke}
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return &Error{Kind: KindAuth, Op: "authenticate", Host: addr, Err: fmt.Errorf(
			"%s refused every key for user %s (tried %s); add the public key to ~%s/.ssh/authorized_keys there: %w",
			t.alias, t.user, strings.Join(signers.sources, ", "), t.user, err)}
	}
	var own *Error
	if errors.As(err, &own) {
		return own // from the host key callback: already classified
	}
	return &Error{Kind: KindNetwork, Op: "handshake", Host: addr, Err: err}
}

// keepalive sends keepalive@openssh.com every interval and closes the connection once max
// requests in a row went unanswered. sshd answers them (with a failure reply, which counts).
func (c *Client) keepalive(interval time.Duration, max int) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	answered := make(chan struct{}, 1)
	waiting, missed := false, 0
	for {
		select {
		case <-c.done:
			return
		case <-answered:
			waiting, missed = false, 0
			continue
		case <-tick.C:
		}
		if waiting {
			missed++
			if missed >= max {
				c.fail(fmt.Errorf("no answer from the host for %s (%d keepalives); the link is dead",
					interval*time.Duration(missed), missed))
				return
			}
			continue
		}
		waiting = true
		go func() {
			if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err == nil {
				select {
				case answered <- struct{}{}:
				default:
				}
			}
		}()
	}
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.dead == nil {
		c.dead = &Error{Kind: KindNetwork, Op: "keepalive", Host: c.conn.RemoteAddr().String(), Err: err}
	}
	c.mu.Unlock()
	// Closing the socket (not just the ssh.Client) unblocks every reader and writer at once.
	c.conn.Close()
}

// Done is closed when the connection has ended, for any reason.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection was declared dead by the keepalive, or nil. Callers whose
// session failed with a bare EOF use it to say what really happened.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// Explain returns err, with the keepalive's verdict added (both stay in the chain) when the
// connection died under it: "connection lost" alone does not tell the user the link went silent.
func (c *Client) Explain(err error) error {
	if err == nil {
		return nil
	}
	if dead := c.Err(); dead != nil {
		return fmt.Errorf("%w (because %w)", err, dead)
	}
	return err
}

// Close ends the connection.
func (c *Client) Close() error {
	return c.Client.Close()
}

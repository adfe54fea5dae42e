package sshconn

import (
	"net"
	"sync"
	"sync/atomic"
)

// turnConn counts the round trips of the SSH handshake: bytes from the server that arrive after
// the client wrote since the previous ones are the answer it waited for (x/crypto/ssh runs the
// handshake one message exchange at a time). Counting stops after the handshake: later, the
// channel window adjustments that answer every read would make the count meaningless, and the
// wire trace counts the requests.
type turnConn struct {
	net.Conn
	stopped atomic.Bool
	mu      sync.Mutex
	wrote   bool // written since the last bytes came in
	n       int
}

func (c *turnConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.stopped.Load() {
		c.mu.Lock()
		if c.wrote {
			c.n++
			c.wrote = false
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *turnConn) Write(p []byte) (int, error) {
	if !c.stopped.Load() {
		c.mu.Lock()
		c.wrote = true
		c.mu.Unlock()
	}
	return c.Conn.Write(p)
}

// stop ends the count and returns it.
func (c *turnConn) stop() int {
	c.stopped.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

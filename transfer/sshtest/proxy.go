package sshtest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections from its own loopback address to a target. Freeze makes it
// swallow bytes without closing anything: to both ends the link looks alive at the TCP level but
// nothing arrives, like a cable pulled somewhere between two routers.
type Proxy struct {
	Addr string

	target string
	ln     net.Listener
	frozen chan struct{} // closed by Freeze
	done   chan struct{} // closed by Close
	once   sync.Once
	fmu    sync.Once
	mu     sync.Mutex
	conns  []net.Conn
}

// NewProxy listens on 127.0.0.1 and forwards to target until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshtest: proxy listen: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln,
		frozen: make(chan struct{}), done: make(chan struct{})}
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pump(up, c)
		go p.pump(c, up)
	}
}

// pump copies src to dst until either fails or the proxy freezes; once frozen it holds both
// connections open and idle until Close.
func (p *Proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			<-p.done
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
			}
			return
		}
	}
}

// Freeze stops all forwarding, for connections open now and later ones.
func (p *Proxy) Freeze() { p.fmu.Do(func() { close(p.frozen) }) }

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.once.Do(func() {
		close(p.done)
		p.ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
}

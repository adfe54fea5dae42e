package sshtest

import (
	"context"
	"testing"
	"time"

	"github.com/snapferry/snapferry/transfer/sshconn"
)

// ConnConfig returns an sshconn.Config that reaches this server with its client key and
// known_hosts file, ignoring the tester's own ~/.ssh and agent.
func (s *Server) ConnConfig() sshconn.Config {
	return sshconn.Config{
		Host:       s.Host,
		Port:       s.Port,
		User:       s.User,
		Identity:   []string{s.ClientKey},
		KnownHosts: s.KnownHosts,
		NoAgent:    true,
		SSHConfig:  "none",
	}
}

// Dial connects to the server with ConnConfig and closes the connection when the test ends.
func (s *Server) Dial(t testing.TB) *sshconn.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sshconn.Dial(ctx, s.ConnConfig())
	if err != nil {
		t.Fatalf("sshtest: dial %s: %v", s.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

package sshtest

import "fmt"

// Flags are the snapferry options that log in to this server as the test user and trust its
// host key, followed by extra (for example "--remote-path", bin): what every end-to-end test
// that runs the binary against the server passes.
func (s *Server) Flags(extra ...string) []string {
	return append([]string{"--identity", s.ClientKey, "--known-hosts", s.KnownHosts}, extra...)
}

// Spec is the store spec of path on this server: scheme://USER@127.0.0.1:PORT/path (scheme ssh
// or sftp). An absolute path gives two slashes after the port, which specs accept as one.
func (s *Server) Spec(scheme, path string) string {
	return fmt.Sprintf("%s://%s@%s/%s", scheme, s.User, s.Addr, path)
}

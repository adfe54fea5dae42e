// Package sshtest starts a real OpenSSH sshd on 127.0.0.1 for tests of anything that talks SSH
// (sshconn, sftpstore, deploy, remoterun, storespec, and other packages' end-to-end tests).
//
// Each Server gets a throwaway host key and client key, its own authorized_keys and sshd_config
// in a temp dir, and a known_hosts file that trusts exactly its host key. sshd runs in the
// foreground (-D) as a child of the test and is killed by Close or by t.Cleanup.
//
// sshd is an OpenSSH tool that may be missing on a developer box: then Start skips the test,
// unless the environment variable CI is set, where a missing sshd is a broken CI image and the
// test fails (the project's rule for tests that need an outside tool).
//
// Proxy is a TCP forwarder the test controls; Freeze stops it forwarding without closing the
// connections, which is how a dead network link looks to the client (no RST, no FIN).
package sshtest

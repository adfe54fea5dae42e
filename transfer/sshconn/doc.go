// Package sshconn opens SSH client connections the way OpenSSH users expect, with
// golang.org/x/crypto/ssh, for a binary that runs unattended (cron, ESXi shell).
//
// Contracts:
//   - Authentication: key files (ed25519, ecdsa, rsa, without passphrase: nothing can be typed
//     at 3 a.m.) from --identity, else ~/.ssh/config IdentityFile, else ~/.ssh/id_{ed25519,
//     ecdsa,rsa}; plus every key of the agent at $SSH_AUTH_SOCK. Encrypted key files are refused
//     with a hint to load them into ssh-agent.
//   - Host keys: OpenSSH known_hosts (plain and hashed entries, [host]:port, @revoked) from
//     Config.KnownHosts, else $SNAPFERRY_KNOWN_HOSTS, else ~/.ssh/known_hosts. An unknown host is
//     refused with its SHA256 fingerprint and the flag --accept-new-host-key, which appends it.
//     A changed key is always refused, flag or not. The client offers only the host key types
//     already known for a host, so a host with both an RSA and an ed25519 key is not mistaken
//     for a changed one.
//   - ~/.ssh/config Host aliases supply HostName, Port, User and IdentityFile. Explicit
//     Config fields win over the file. /etc/ssh/ssh_config is not read: distributions put
//     interactive defaults there that do not fit an unattended client.
//   - Liveness: dial and handshake have timeouts, and keepalive@openssh.com requests run every
//     KeepaliveInterval; after KeepaliveMax unanswered ones the connection is closed, so a dead
//     link fails every pending operation within seconds instead of hanging on TCP for hours.
//   - Ciphers: AES-GCM first (hardware AES on every x86 ESXi host), chacha20-poly1305 next.
//   - Round trips: StartCommand sends a command's exec without waiting for its answer, so its
//     input can follow at once; Client.HandshakeRoundTrips says how many round trips the
//     handshake waited for (the wire trace prints it).
//   - Errors are *Error with a Kind (network, auth, host key, config) so callers can choose
//     an exit code and decide whether to retry (only network errors are worth retrying).
package sshconn

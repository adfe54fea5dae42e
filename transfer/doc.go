// Package transfer groups everything that moves bytes between hosts; it holds no code itself.
//
//   - sshconn: SSH client connections (keys, agent, known_hosts, ~/.ssh/config, keepalives).
//   - sshtest: a real loopback OpenSSH sshd for tests.
//   - sftpstore: a store.Backend on an SFTP-only host.
//   - deploy: puts this very binary on the far side when it is missing or another version.
//   - remoterun: runs a command over SSH with live output, exit status and remote cancellation.
//   - storespec: parses store specs (/path, ssh://, sftp://, tape://) and opens the Backend.
//   - wire, serve, remotestore, replica: the protocol spoken with `snapferry serve` and its ends.
package transfer

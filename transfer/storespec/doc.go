// Package storespec turns the store specs users write (see shared cli.md, "Stores") into a
// store.Backend:
//
//	/path/to/repo                       local folder            images/store/local
//	ssh://[user@]host[:port]/path       `snapferry serve` there  transfer/remotestore over SSH
//	sftp://[user@]host[:port]/path      SFTP-only host           transfer/sftpstore
//	tape://[user@]host[:port]/dev/nst0  tape on a tape host      (not a Backend: the tape package)
//	tape:///dev/nst0                    tape on this host        (not a Backend: the tape package)
//
// A path of "/~/rest" (ssh://host/~/repo) is relative to the remote login directory. The host
// may be a ~/.ssh/config alias. Parse errors wrap ErrBadSpec, which the CLI maps to exit 2.
//
// For ssh:// Open connects, makes sure this binary is on the far side (transfer/deploy) unless
// Options.RemotePath names an installed one, runs `<remote binary> serve --root=PATH` in an SSH
// session and speaks the wire protocol on that
// session's stdin/stdout. Closing the Backend closes the session (EOF ends serve) and the
// connection.
package storespec

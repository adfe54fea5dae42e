// Package wire is the framed, versioned protocol snapferry speaks between a client and
// `snapferry serve` over any byte pipe (an SSH session's stdin/stdout, an os.Pipe in tests).
//
// A connection starts with a handshake (magic bytes, then Hello and HelloReply frames carrying
// the protocol version range, program versions, capabilities, the server's root, its append-only
// flag and the flow-control parameters). After that both sides exchange frames that each carry a
// stream id, so many requests are in flight at once and the link never waits on a round trip.
// A request may stream an upload after it and its response may stream a download; streamed data
// is cut into chunks and bounded by a per-stream window the receiver widens as it consumes, so
// memory stays flat however large the files are. A server may stream a file range as a body
// with Stream.SendFile: on a pipe link the bytes are spliced from the page cache into the link
// and never enter the process (sendfile.go); the bytes on the link are the same. On the reading
// side a data frame's payload is read from the link straight into the chunk the stream hands
// out, past the session's read buffer (frame.go, readFrameDirect).
//
// The package knows nothing of stores or replicas beyond the op numbers and the error classes
// that let a client map a failure back to store.ErrNotExist, store.ErrExist or store.ErrNoSpace.
// docs/wire-protocol.md is the normative description; keep it in step with this code.
package wire

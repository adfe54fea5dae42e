// Package remotestore is the client side of an ssh:// store: a store.Backend (and
// store.SpaceReporter) that speaks the wire protocol to `snapferry serve` over any reader/writer
// pair, typically an SSH session's stdout and stdin.
//
// A Client is safe for concurrent use; every call is its own wire stream, so many calls are in
// flight at once over the one link. When the link is cut, pending and later calls fail promptly
// with an error that wraps wire.ErrLinkLost and names the store.
package remotestore

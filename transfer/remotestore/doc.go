// Package remotestore is the client side of an ssh:// store: a store.Backend (and
// store.SpaceReporter and store.StreamSaver) that speaks the wire protocol to `snapferry serve`
// over any reader/writer pair, typically an SSH session's stdout and stdin. As a StreamSaver it
// sends a pack's bytes while they are produced and names the file at commit, so the host keeps no
// spool file; a server without the "stream" capability gets whole files through Save.
//
// A Client is safe for concurrent use; every call is its own wire stream, so many calls are in
// flight at once over the one link. When the link is cut, pending and later calls fail promptly
// with an error that wraps wire.ErrLinkLost and names the store.
package remotestore

// Package tapewire carries tape.Library over the wire protocol (transfer/wire), so a host backs up
// to a drive on a tape host: the client runs `snapferry serve --tape=DEVICE` there in an SSH
// session (deploying itself when needed, as ssh:// stores do) and Client speaks to it; Serve
// is that far side.
//
// Ops (capability "tape"; numbers in ops.go, docs/wire-protocol.md lists them):
//
//	tape-begin    args JSON {pool, header}      result JSON SetHeader (with the set id)
//	tape-data     args set id, upload: stream   result empty, once the stream is on tape
//	tape-finish   args JSON {set, info}         result JSON SetEntry (placement on the volumes)
//	tape-abort    args set id                   result empty
//	tape-read     args JSON {ref, source}       result JSON SetEntry, download: the set's stream
//	tape-catalog  no args                       result JSON Catalog
//	tape-close    no args                       result empty, after the catalog copy is on tape
//
// Several sets may be open at once on one link (each is a stream of the same tape file:
// multiplexing). When the client goes away without tape-close, open sets are aborted and the
// session still ends with its catalog copy.
//
// Several hosts may write to one drive at once (share.go): every `serve --tape` Forwards its
// client over a unix socket to the drive's daemon (RunDaemon, started on demand), which holds the
// drive and serves all clients with one shared write session, and exits when the last leaves.
package tapewire

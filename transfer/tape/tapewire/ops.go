package tapewire

import (
	"github.com/snapferry/snapferry/transfer/tape"
	"github.com/snapferry/snapferry/transfer/wire"
)

// CapTape is announced by a server that serves a tape drive.
const CapTape = "tape"

// Tape ops. The numbers are part of the wire protocol and must not collide with transfer/wire's.
const (
	OpBegin   wire.Op = 40
	OpData    wire.Op = 41
	OpFinish  wire.Op = 42
	OpAbort   wire.Op = 43
	OpRead    wire.Op = 44
	OpCatalog wire.Op = 45
	OpClose   wire.Op = 46
)

type beginArgs struct {
	Pool   string         `json:"pool"`
	Header tape.SetHeader `json:"header"`
}

type finishArgs struct {
	Set  string       `json:"set"`
	Info tape.SetInfo `json:"info"`
}

type readArgs struct {
	Ref    string `json:"ref"`
	Source string `json:"source,omitempty"`
}

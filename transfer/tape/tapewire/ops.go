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

// opName names a tape op in messages (wire.Op.String knows only transfer/wire's own ops).
func opName(op wire.Op) string {
	switch op {
	case OpBegin:
		return "tape-begin"
	case OpData:
		return "tape-data"
	case OpFinish:
		return "tape-finish"
	case OpAbort:
		return "tape-abort"
	case OpRead:
		return "tape-read"
	case OpCatalog:
		return "tape-catalog"
	case OpClose:
		return "tape-close"
	}
	return op.String()
}

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

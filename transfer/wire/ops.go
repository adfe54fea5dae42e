package wire

import "fmt"

// Op names a request. The numbers are part of the protocol; new ops get new numbers and a
// capability so an older peer is never sent one it does not know.
type Op uint8

// Store ops (capability CapStore; the streamed saves also CapStream) and replica ops
// (capability CapReplica).
const (
	OpSave         Op = 1  // args Handle; upload: file body; result: empty
	OpLoad         Op = 2  // args LoadArgs; download: file bytes
	OpStat         Op = 3  // args Handle; result: FileInfo
	OpList         Op = 4  // args Kind; download: ListBatch entries
	OpRemove       Op = 5  // args Handle; result: empty
	OpCreate       Op = 6  // no args; result: empty
	OpFreeSpace    Op = 7  // no args; result: uvarint bytes free
	OpSaveStream   Op = 8  // args Kind; upload: a file not named yet; result after the body: token
	OpCommitStream Op = 9  // args CommitStreamArgs: names the token's file; result: empty
	OpCleanTemp    Op = 10 // args uvarint Unix nanoseconds (0: count only); result: TempReport
	OpRepBegin     Op = 20 // replica: start (or resume after rollback) an update of a set
	OpRepHashes    Op = 21 // replica: stream the block hashes of one replica file
	OpRepWrite     Op = 22 // replica: upload changed blocks of one file, in place behind the journal
	OpRepPut       Op = 23 // replica: replace one small file atomically
	OpRepCommit    Op = 24 // replica: make the update durable and drop the journal
	OpRepAbort     Op = 25 // replica: roll the update back now
	OpRepMark      Op = 26 // replica: the mark (size, mtime, hash seed) of one replica file (CapReplicaMark)
)

// Capabilities a server announces in its HelloReply.
const (
	CapStore   = "store"
	CapReplica = "replica"
	// CapStream: OpSaveStream and OpCommitStream are served. A new capability rather than a
	// new protocol version, so old clients and servers keep talking to new ones.
	CapStream = "stream"
	// CapCleanTemp: OpCleanTemp is served (temp files of killed uploads, listed and removed
	// over the link).
	CapCleanTemp = "clean-temp"
	// CapReplicaMark: OpRepMark is served and OpRepWrite answers with the file's mark, so a
	// client that knows which blocks changed since its last update can check that the far copy
	// is still the one that update left, and send only those blocks.
	CapReplicaMark = "replica-mark"
)

func (o Op) String() string {
	switch o {
	case OpSave:
		return "save"
	case OpLoad:
		return "load"
	case OpStat:
		return "stat"
	case OpList:
		return "list"
	case OpRemove:
		return "remove"
	case OpCreate:
		return "create"
	case OpFreeSpace:
		return "free-space"
	case OpSaveStream:
		return "save-stream"
	case OpCommitStream:
		return "commit-stream"
	case OpCleanTemp:
		return "clean-temp"
	case OpRepBegin:
		return "replica-begin"
	case OpRepHashes:
		return "replica-hashes"
	case OpRepWrite:
		return "replica-write"
	case OpRepPut:
		return "replica-put"
	case OpRepCommit:
		return "replica-commit"
	case OpRepAbort:
		return "replica-abort"
	case OpRepMark:
		return "replica-mark"
	}
	return fmt.Sprintf("op-%d", uint8(o))
}

package nbd

// Magic numbers, options, replies, commands and flags of the NBD protocol (proto.md).
const (
	magicNBD          uint64 = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt          uint64 = 0x49484156454F5054 // "IHAVEOPT"
	magicOptReply     uint64 = 0x3e889045565a9
	magicRequest      uint32 = 0x25609513
	magicSimple       uint32 = 0x67446698
	magicStructured   uint32 = 0x668e33ef
	flagFixedNewstyle uint16 = 1 << 0
	flagNoZeroes      uint16 = 1 << 1

	optExportName     uint32 = 1
	optAbort          uint32 = 2
	optInfo           uint32 = 6
	optGo             uint32 = 7
	optStructured     uint32 = 8
	optListMeta       uint32 = 9
	optSetMetaContext uint32 = 10

	repAck         uint32 = 1
	repInfo        uint32 = 3
	repMetaContext uint32 = 4
	repErrBit      uint32 = 1 << 31
	repErrUnsup    uint32 = repErrBit | 1
	repErrPolicy   uint32 = repErrBit | 2
	repErrInvalid  uint32 = repErrBit | 3
	repErrUnknown  uint32 = repErrBit | 6

	infoExport    uint16 = 0
	infoBlockSize uint16 = 3

	cmdRead        uint16 = 0
	cmdWrite       uint16 = 1
	cmdDisc        uint16 = 2
	cmdFlush       uint16 = 3
	cmdTrim        uint16 = 4
	cmdBlockStatus uint16 = 7

	cmdFlagReqOne uint16 = 1 << 3

	chunkNone        uint16 = 0
	chunkOffsetData  uint16 = 1
	chunkOffsetHole  uint16 = 2
	chunkBlockStatus uint16 = 5
	chunkErrBit      uint16 = 1 << 15
	chunkError       uint16 = chunkErrBit | 1
	chunkErrorOffset uint16 = chunkErrBit | 2
	replyFlagDone    uint16 = 1

	// Transmission flags of NBD_INFO_EXPORT.
	TransHasFlags uint16 = 1 << 0
	TransReadOnly uint16 = 1 << 1
	TransFlush    uint16 = 1 << 2

	// NBD error values (errno-like) carried in replies.
	errPerm     uint32 = 1
	errIO       uint32 = 5
	errNoMem    uint32 = 12
	errInvalid  uint32 = 22
	errNoSpace  uint32 = 28
	errOverflow uint32 = 75
	errNotSup   uint32 = 95
	errShutdown uint32 = 108
)

// Block status flags of the base:allocation context; the qemu:dirty-bitmap contexts set
// StateDirty on extents changed since the bitmap was created.
const (
	StateHole  uint32 = 1 << 0
	StateZero  uint32 = 1 << 1
	StateDirty uint32 = 1 << 0
)

// ContextAllocation is the standard metadata context that tells holes and zeros apart from data.
const ContextAllocation = "base:allocation"

// DirtyBitmapContext is the QEMU metadata context exporting a dirty bitmap.
func DirtyBitmapContext(bitmap string) string { return "qemu:dirty-bitmap:" + bitmap }

// Limits on what a peer may announce, so a hostile or broken peer cannot make us allocate much.
const (
	maxOptReplyLen = 64 << 10 // option replies carry names and small structs
	maxStringLen   = 4096     // NBD strings are at most 4096 bytes
	maxChunkLen    = 64 << 20 // one structured reply chunk (reads are at most MaxRequest)
	MaxRequest     = 32 << 20 // the largest read the client sends in one request
)

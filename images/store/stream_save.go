package store

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// StreamSaver is implemented by backends that can take a file's bytes while they are produced,
// before the file's name is known: a pack is named by the hash of its bytes, so without this the
// repository first spools every pack to a local temp file and then reads it back for Save. On an
// ESXi host that spool sits on a datastore, next to the running VMs.
type StreamSaver interface {
	// SaveStream starts a file of kind k. Nothing is visible under any name until Commit.
	// A wrapper whose inner store cannot stream returns an error matching
	// errors.ErrUnsupported; the caller then spools and uses Save.
	SaveStream(ctx context.Context, k Kind) (Pending, error)
}

// Pending is a file being written by SaveStream. It is used by one goroutine at a time.
type Pending interface {
	io.Writer
	// Commit makes the bytes written so far the file h (of the kind given to SaveStream),
	// atomically and durably, with Save's semantics: ErrExist if h exists, and the pending
	// bytes are dropped then. The Pending is finished after Commit, whatever it returns.
	Commit(ctx context.Context, h Handle) error
	// Abort drops the bytes written so far. It is safe after Commit and more than once.
	Abort()
}

// StartStream starts a streamed save of kind k in be, or fails with an error matching
// errors.ErrUnsupported when be takes whole files only: the one check every wrapper and the
// repository make before streaming.
func StartStream(ctx context.Context, be Backend, k Kind) (Pending, error) {
	ss, ok := be.(StreamSaver)
	if !ok {
		return nil, fmt.Errorf("stream save %s on %s: this store takes whole files only: %w", k, be.Location(), errors.ErrUnsupported)
	}
	return ss.SaveStream(ctx, k)
}

// ValidateStreamKind refuses kinds that cannot be streamed: unknown ones, and the config, which
// is written once and whole.
func ValidateStreamKind(k Kind) error {
	if k == KindConfig {
		return fmt.Errorf("the config is saved whole, not streamed")
	}
	return Validate(Handle{Kind: k, Name: "pending"})
}

package tape

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/snapferry/snapferry/images/repo"
)

// FetchSet reads a save set (ref: a set or snapshot id prefix, or latest narrowed by source)
// from lib into the repository dst while it streams off the tape, and commits its snapshot
// there once the whole stream was read and its checksum matched the set's trailer. A restore
// from tape is then an ordinary restore from dst.
func FetchSet(ctx context.Context, lib Library, ref, source string, dst *repo.Repository) (repo.ID, SetEntry, error) {
	pr, pw := io.Pipe()
	read := make(chan error, 1)
	var e SetEntry
	go func() {
		var err error
		e, err = lib.ReadSet(ctx, ref, source, pw)
		pw.CloseWithError(err)
		read <- err
	}()
	sn, uerr := Unpack(ctx, pr, dst)
	if uerr == nil {
		_, uerr = io.Copy(io.Discard, pr) // the trailer is checked once the whole stream is read
	}
	pr.CloseWithError(errors.New("restore stopped reading"))
	rerr := <-read
	// The reader's error is the cause when Unpack only saw it come through the pipe; otherwise
	// Unpack's is (a reader whose consumer failed only knows the pipe was closed).
	if rerr != nil && (uerr == nil || errors.Is(uerr, rerr)) {
		return repo.ID{}, e, rerr
	}
	if uerr != nil {
		return repo.ID{}, e, fmt.Errorf("restore save set %s: %w", ref, uerr)
	}
	id, err := dst.SaveSnapshot(ctx, sn)
	if err != nil {
		return repo.ID{}, e, fmt.Errorf("restore save set %s: %w", e.ID, err)
	}
	return id, e, nil
}

package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/store"
)

// Helpers for the content-addressed files (index files, snapshots): name = BLAKE3 of the bytes.

// listIDs lists the files of a kind whose names are ids; other names are an error (they are not
// ours, and silently skipping them would hide damage).
func listIDs(ctx context.Context, be store.Backend, k store.Kind) ([]ID, error) {
	var ids []ID
	err := be.List(ctx, k, func(fi store.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return fmt.Errorf("list %s: unexpected file %q: %w", k, fi.Name, ErrCorrupt)
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", k, be.Location(), err)
	}
	return ids, nil
}

// loadFile reads a whole content-addressed file and checks that its bytes hash to its name.
func loadFile(ctx context.Context, be store.Backend, h store.Handle) ([]byte, error) {
	rd, err := be.Load(ctx, h, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	defer rd.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, rd); err != nil {
		return nil, fmt.Errorf("read %s: %w", h, err)
	}
	if ID(blake3.Sum256(buf.Bytes())).String() != h.Name {
		return nil, fmt.Errorf("%s: content does not match its name: %w", h, ErrCorrupt)
	}
	return buf.Bytes(), nil
}

// saveFile stores b under the hash of its bytes; an existing identical file is fine.
func saveFile(ctx context.Context, be store.Backend, k store.Kind, b []byte) (ID, error) {
	id := ID(blake3.Sum256(b))
	err := be.Save(ctx, store.Handle{Kind: k, Name: id.String()}, bytes.NewReader(b))
	if err != nil && !isExist(err) {
		return id, fmt.Errorf("save %s/%s to %s: %w", k, id.Short(), be.Location(), err)
	}
	return id, nil
}

func isExist(err error) bool { return errors.Is(err, store.ErrExist) }

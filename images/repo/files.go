package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"lukechampine.com/blake3"

	"github.com/snapferry/snapferry/images/store"
)

// Helpers for the content-addressed files (index files, snapshots, locks, keys): name = BLAKE3
// of the stored bytes. In an encrypted repository the stored bytes are one envelope around the
// content (keys are sealed on their own and pass a nil cryptor), so the name still lets readers
// and check verify a file without the key, and the envelope's tag proves the content.

// idFile is a listed file whose name is an id.
type idFile struct {
	ID      ID
	Size    int64
	ModTime time.Time
}

// listFiles lists the files of a kind whose names are ids. Other names are skipped: snapferry
// never writes them, and failing on one would let anybody who can add a file (an append-only
// client, a stray copy) lock every user out. Check reports them (StrayFiles).
func listFiles(ctx context.Context, be store.Backend, k store.Kind) ([]idFile, error) {
	var files []idFile
	err := be.List(ctx, k, func(fi store.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil
		}
		files = append(files, idFile{ID: id, Size: fi.Size, ModTime: fi.ModTime})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", k, be.Location(), err)
	}
	return files, nil
}

// StrayFiles lists the files whose names snapferry never writes (not an id), as KIND/NAME.
// Readers skip them; check reports them; they are left for the store host's administrator.
func (r *Repository) StrayFiles(ctx context.Context) ([]string, error) {
	var out []string
	for _, k := range []store.Kind{store.KindKeys, store.KindData, store.KindIndex, store.KindSnapshots, store.KindLocks} {
		err := r.be.List(ctx, k, func(fi store.FileInfo) error {
			if _, err := ParseID(fi.Name); err != nil {
				out = append(out, string(k)+"/"+fi.Name)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s in %s: %w", k, r.be.Location(), err)
		}
	}
	slices.Sort(out)
	return out, nil
}

// listIDs is listFiles without sizes.
func listIDs(ctx context.Context, be store.Backend, k store.Kind) ([]ID, error) {
	files, err := listFiles(ctx, be, k)
	ids := make([]ID, len(files))
	for i, f := range files {
		ids[i] = f.ID
	}
	return ids, err
}

// loadFile reads a whole content-addressed file, checks that its bytes hash to its name and
// opens its envelope (c nil: none).
func loadFile(ctx context.Context, be store.Backend, h store.Handle, c *cryptor) ([]byte, error) {
	return loadFileSized(ctx, be, h, c, 0)
}

// maxSizedLoad caps the size a listing may make loadFileSized allocate up front (a store can
// report any size); bigger files grow the buffer as they are read.
const maxSizedLoad = 64 << 20

// loadFileSized is loadFile for a file the listing said is size bytes long: the buffer is
// allocated once at that size instead of doubling from 512 bytes (which left ~1x the file in
// garbage per file: index files are read several at once while the index is built).
func loadFileSized(ctx context.Context, be store.Backend, h store.Handle, c *cryptor, size int64) ([]byte, error) {
	rd, err := be.Load(ctx, h, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	defer rd.Close()
	var buf bytes.Buffer
	if size > 0 && size < maxSizedLoad {
		buf.Grow(int(size) + bytes.MinRead) // ReadFrom wants MinRead free bytes before it reads
	}
	if _, err := io.Copy(&buf, rd); err != nil {
		return nil, fmt.Errorf("read %s: %w", h, err)
	}
	if ID(blake3.Sum256(buf.Bytes())).String() != h.Name {
		return nil, fmt.Errorf("%s: content does not match its name: %w", h, ErrCorrupt)
	}
	if c == nil {
		return buf.Bytes(), nil
	}
	plain, err := c.open(nil, buf.Bytes(), fileAD(h.Kind))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	return plain, nil
}

// saveFile stores b (sealed by c unless nil) under the hash of the stored bytes; an existing
// identical file is fine.
func saveFile(ctx context.Context, be store.Backend, k store.Kind, b []byte, c *cryptor) (ID, error) {
	if c != nil {
		b = c.seal(nil, b, fileAD(k))
	}
	id := ID(blake3.Sum256(b))
	err := be.Save(ctx, store.Handle{Kind: k, Name: id.String()}, bytes.NewReader(b))
	if err != nil && !isExist(err) {
		return id, fmt.Errorf("save %s/%s to %s: %w", k, id.Short(), be.Location(), err)
	}
	return id, nil
}

func isExist(err error) bool { return errors.Is(err, store.ErrExist) }

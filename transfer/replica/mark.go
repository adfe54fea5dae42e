package replica

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/snapferry/snapferry/transfer/wire"
)

// markOf answers OpRepMark: the replica file's mark as it is now. The seed is that of the
// file's sidecar when the sidecar describes the file as it is (its size and mtime), else 0: a
// file changed outside an update has no valid hashes, and its mark matches no update's.
func markOf(st *wire.Stream, t *tx, p string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st.Respond(wire.Response{Body: Mark{}.encode()})
	case err != nil:
		return fmt.Errorf("stat replica %s: %w", p, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("replica %s is not a regular file (%s)", p, fi.Mode().Type())
	}
	m := Mark{Exists: true, Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	if h, ok := readSidecarHead(sidecarPath(p)); ok && h.size == m.Size && h.mtime == m.Mtime {
		m.Seed = h.seed
	}
	return st.Respond(wire.Response{Body: m.encode()})
}

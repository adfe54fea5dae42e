package sim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DatastoreOptions shape a simulated datastore.
type DatastoreOptions struct {
	Type     string // VMFS-6 (default), VMFS-5, NFS: VMFS-6 gets seSparse deltas, the others vmfsSparse
	Capacity int64  // bytes; default 1 TiB (free space is capacity minus the allocated bytes)
	Reserved int64  // bytes taken by things outside the simulation (lowers free space)
	UUID     string // default derived from the name
}

// AddDatastore creates a datastore: a folder named by a UUID derived from the name and a symlink
// with the name, as /vmfs/volumes has.
func (h *Host) AddDatastore(name string, opt DatastoreOptions) error {
	if name == "" || strings.ContainsAny(name, "/]") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("add datastore %q: a name must be non-empty, without '/' or ']', not starting with '.'", name)
	}
	if opt.Type == "" {
		opt.Type = "VMFS-6"
	}
	if opt.Capacity <= 0 {
		opt.Capacity = 1 << 40
	}
	uuid := opt.UUID
	if uuid == "" {
		uuid = datastoreUUID(name, opt.Type)
	}
	return h.do(func(s *session) error {
		for _, d := range s.st.Datastores {
			if d.Name == name {
				return fmt.Errorf("add datastore %q: exists", name)
			}
		}
		if err := os.MkdirAll(filepath.Join(h.Root, uuid), 0o755); err != nil {
			return fmt.Errorf("add datastore %q: %w", name, err)
		}
		if err := os.Symlink(uuid, filepath.Join(h.Root, name)); err != nil {
			return fmt.Errorf("add datastore %q: %w", name, err)
		}
		s.st.Datastores = append(s.st.Datastores, datastoreState{Name: name, UUID: uuid, Type: opt.Type, Capacity: opt.Capacity, Reserved: opt.Reserved})
		return nil
	})
}

// datastoreUUID derives a stable UUID in the shape hosts use: 8-8-4-12 hex digits for VMFS,
// 8-8 for NFS.
func datastoreUUID(name, typ string) string {
	sum := sha256.Sum256([]byte(name))
	x := hex.EncodeToString(sum[:])
	if strings.HasPrefix(typ, "NFS") {
		return x[0:8] + "-" + x[8:16]
	}
	return x[0:8] + "-" + x[8:16] + "-" + x[16:20] + "-" + x[20:32]
}

// used sums the bytes allocated under a datastore's folder.
func (h *Host) used(d *datastoreState) (int64, error) {
	var n int64
	err := filepath.WalkDir(filepath.Join(h.Root, d.UUID), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && info.Mode().IsRegular() {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("datastore %s usage: %w", d.Name, err)
	}
	return n, nil
}

// free is the datastore's free space: zero under the datastore-full fault.
func (s *session) free(d *datastoreState) (int64, error) {
	if s.faults.full(d.Name) {
		return 0, nil
	}
	u, err := s.h.used(d)
	if err != nil {
		return 0, err
	}
	return max(d.Capacity-d.Reserved-u, 0), nil
}

// datastoreNamed finds a datastore by name or UUID.
func (s *session) datastoreNamed(name string) (*datastoreState, error) {
	for i := range s.st.Datastores {
		if d := &s.st.Datastores[i]; d.Name == name || d.UUID == name {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no datastore %q", name)
}

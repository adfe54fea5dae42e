package sim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// Host is one simulated ESXi host rooted at a folder laid out like /vmfs/volumes.
type Host struct {
	Root string // the folder standing in for /vmfs/volumes
	meta string // Root/.esxisim
	// Now is the host clock (task due times, snapshot creation times); time.Now when nil.
	Now func() time.Time
	// Getenv reads ESXISIM_FAULTS; os.Getenv when nil.
	Getenv func(string) string
}

// VMFSPrefix is where datastores live on a real host; paths the simulator writes into .vmx,
// descriptors and the inventory use it, and it maps to Host.Root.
const VMFSPrefix = "/vmfs/volumes/"

// NewHost makes (or reopens) a simulated host in root: the bookkeeping folder, an empty inventory
// and a default configuration (ESXi 6.5.0, newer snapshot.remove syntax).
func NewHost(root string) (*Host, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("new simulated host %s: %w", root, err)
	}
	h := &Host{Root: abs, meta: filepath.Join(abs, ".esxisim")}
	if _, err := os.Stat(h.statePath()); err == nil {
		return h, nil
	}
	if err := os.MkdirAll(h.meta, 0o755); err != nil {
		return nil, fmt.Errorf("new simulated host %s: %w", root, err)
	}
	if err := checkSparse(h.meta); err != nil {
		return nil, fmt.Errorf("new simulated host %s: %w", root, err)
	}
	if err := h.saveInventory(&inventory{}); err != nil {
		return nil, err
	}
	if err := h.saveState(newState()); err != nil {
		return nil, err
	}
	return h, nil
}

// Open opens an existing simulated host.
func Open(root string) (*Host, error) {
	if root == "" {
		return nil, errors.New("open simulated host: no root folder (set SNAPFERRY_VMFS_ROOT or ESXISIM_ROOT)")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open simulated host %s: %w", root, err)
	}
	h := &Host{Root: abs, meta: filepath.Join(abs, ".esxisim")}
	if _, err := os.Stat(h.statePath()); err != nil {
		return nil, fmt.Errorf("open simulated host %s: %w (create it with `esxisim init %s`)", root, err, root)
	}
	return h, nil
}

func (h *Host) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Host) getenv(k string) string {
	if h.Getenv != nil {
		return h.Getenv(k)
	}
	return os.Getenv(k)
}

// session is one command's view of the host, taken under the host lock.
type session struct {
	h      *Host
	st     *state
	inv    *inventory
	faults Faults
}

// do runs fn under the host lock with the state loaded, after completing the tasks that are due,
// and saves the state afterwards (also when fn fails: completed tasks must stick).
func (h *Host) do(fn func(s *session) error) error {
	fl := flock.New(filepath.Join(h.meta, "lock"))
	if err := fl.Lock(); err != nil {
		return fmt.Errorf("lock simulated host %s: %w", h.Root, err)
	}
	defer func() { _ = fl.Unlock() }()
	st, err := h.loadState()
	if err != nil {
		return err
	}
	inv, err := h.loadInventory()
	if err != nil {
		return err
	}
	faults, err := h.loadFaults()
	if err != nil {
		return err
	}
	s := &session{h: h, st: st, inv: inv, faults: faults}
	ferr := s.completeDueTasks()
	if ferr == nil {
		ferr = fn(s)
	}
	if err := h.saveState(st); err != nil && ferr == nil {
		ferr = err
	}
	if err := h.saveInventory(inv); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
}

// local maps a host path (/vmfs/volumes/DS/...) to the file under Root. DS may be a datastore
// name (the symlink) or its UUID (the folder).
func (h *Host) local(hostPath string) (string, error) {
	if !strings.HasPrefix(hostPath, VMFSPrefix) {
		return "", fmt.Errorf("path %q is not under %s", hostPath, VMFSPrefix)
	}
	rel := path.Clean(strings.TrimPrefix(hostPath, VMFSPrefix))
	if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || strings.HasPrefix(rel, ".esxisim") {
		return "", fmt.Errorf("path %q leaves the datastores", hostPath)
	}
	return filepath.Join(h.Root, filepath.FromSlash(rel)), nil
}

// hostPathOf maps a file under Root back to its /vmfs/volumes path (by datastore name).
func (h *Host) hostPathOf(local string) (string, error) {
	rel, err := filepath.Rel(h.Root, local)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("file %s is not on a simulated datastore", local)
	}
	return VMFSPrefix + filepath.ToSlash(rel), nil
}

// resolveFile resolves a .vmx fileName or a descriptor's parentFileNameHint: absolute host paths
// map under Root, anything else is relative to dir (a local folder).
func (h *Host) resolveFile(dir, name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return h.local(name)
	}
	if name == "" || strings.Contains(name, "..") {
		return "", fmt.Errorf("file name %q: want a name in the VM folder or an absolute /vmfs/volumes path", name)
	}
	return filepath.Join(dir, filepath.FromSlash(name)), nil
}

// datastoreOf returns the datastore a local path lies on.
func (s *session) datastoreOf(local string) (*datastoreState, error) {
	rel, err := filepath.Rel(s.h.Root, local)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("file %s is not on a simulated datastore", local)
	}
	first := strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]
	for i := range s.st.Datastores {
		if d := &s.st.Datastores[i]; d.Name == first || d.UUID == first {
			return d, nil
		}
	}
	return nil, fmt.Errorf("file %s: no datastore %q", local, first)
}

// exists reports whether a path exists (following symlinks).
func exists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

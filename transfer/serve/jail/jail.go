package jail

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrOutside is wrapped by every refusal; it matches fs.ErrPermission so callers and the wire
// error classes treat it as "refused".
var ErrOutside = fmt.Errorf("path refused: %w", fs.ErrPermission)

// PrivatePrefix starts the names of server-private files (replica journals and hash sidecars).
// Clients cannot name them.
const PrivatePrefix = ".snapferry-"

// MaxPath bounds a client-supplied relative path.
const MaxPath = 1024

// Jail resolves client paths below one root folder.
type Jail struct {
	root string // as given, cleaned and absolute
	real string // with symlinks resolved
}

// New opens a jail at root, which must be an existing folder.
func New(root string) (*Jail, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("serve root %s: %w", root, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("serve root %s: %w (create the folder first)", root, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("serve root %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("serve root %s is not a folder", root)
	}
	return &Jail{root: abs, real: real}, nil
}

// Root is the root folder as given (absolute).
func (j *Jail) Root() string { return j.root }

// CheckName checks one path component a client sent.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrOutside)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q names a folder, not a file below the root", ErrOutside, name)
	case strings.ContainsAny(name, "\x00\n\r"):
		return fmt.Errorf("%w: name %q contains NUL or a line break", ErrOutside, name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("%w: name %q contains a path separator", ErrOutside, name)
	case strings.HasPrefix(name, PrivatePrefix):
		return fmt.Errorf("%w: name %q is reserved for the server", ErrOutside, name)
	case len(name) > 255:
		return fmt.Errorf("%w: name of %d bytes is too long", ErrOutside, len(name))
	}
	return nil
}

// CheckRel checks a client-supplied relative path ("vm1/vm1-flat.vmdk").
func CheckRel(rel string) error {
	if len(rel) > MaxPath {
		return fmt.Errorf("%w: path of %d bytes is too long", ErrOutside, len(rel))
	}
	if strings.HasPrefix(rel, "/") {
		return fmt.Errorf("%w: absolute path %q; name files relative to the served root", ErrOutside, rel)
	}
	for _, c := range strings.Split(rel, "/") {
		if err := CheckName(c); err != nil {
			return fmt.Errorf("path %q: %w", rel, err)
		}
	}
	return nil
}

// Resolve checks rel and returns its absolute path below the root.
func (j *Jail) Resolve(rel string) (string, error) {
	if err := CheckRel(rel); err != nil {
		return "", err
	}
	p := filepath.Join(j.root, filepath.FromSlash(rel))
	return p, j.checkLinks(p)
}

// Within checks an absolute path that server code built (a store handle's file, a private
// file) for lexical and symlink escapes.
func (j *Jail) Within(p string) error {
	p = filepath.Clean(p)
	if !within(p, j.root) {
		return fmt.Errorf("%w: %s is outside %s", ErrOutside, p, j.root)
	}
	return j.checkLinks(p)
}

// checkLinks resolves the deepest existing ancestor of p (p itself when it exists) and
// requires it to stay below the real root.
func (j *Jail) checkLinks(p string) error {
	for q := p; ; q = filepath.Dir(q) {
		if q == j.root {
			return nil
		}
		if _, err := os.Lstat(q); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("check %s: %w", q, err)
		}
		real, err := filepath.EvalSymlinks(q)
		if err != nil {
			// A dangling symlink: a create would follow it to wherever it points.
			return fmt.Errorf("%w: %s is a link that cannot be resolved: %v", ErrOutside, q, err)
		}
		if !within(real, j.real) {
			return fmt.Errorf("%w: %s leads outside the served root (to %s)", ErrOutside, q, real)
		}
		return nil
	}
}

func within(p, root string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}
